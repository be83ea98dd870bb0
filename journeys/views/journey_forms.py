"""The journey's own forms in the builder: the entry (trigger, who may enter, re-entry,
holdout) and goal, adding an exit rule, a new journey, publishing. Shapes, and the rule
language's parse of entry conditions and filters; the graph's validation and the services
decide the rest."""

from __future__ import annotations

from django import forms

from audiences.rules.ast import InvalidRules, parse_rules
from journeys.views.forms import JSONListField, JSONObjectField, audience_choices
from profiles.models import ConsentPurpose

MAX_EXITS = 20  # journeys.graph.GRAPH_SCHEMA's exits.maxItems
MAX_FILTERS = 20

TRIGGERS = [
    ("event", "An event"),
    ("audience_entered", "Entering an audience"),
    ("audience_exited", "Leaving an audience"),
    ("date_anniversary", "A date in the profile, every year"),
    ("api", "Only the API"),
]


def rules_errors(document, *, prefix: str = "$.") -> list[str]:
    """The rule language parser's problems with a document, each as `path: message` (the path
    without `prefix`), as journeys.graph reports them when publishing."""
    try:
        parse_rules(document)
    except InvalidRules as error:
        return [f"{path.removeprefix(prefix)}: {message}" if path.startswith(prefix) else message
                for path, message in error.errors]  # fmt: skip
    return []


def filters_errors(event: str, where: list) -> list[str]:
    """Event filters are the rule language's: parsed as the event condition they are."""
    document = {"version": 1, "root": {"event": {"name": event or "?", "where": where}}}
    return rules_errors(document, prefix="$.root.event.")


class EntryForm(forms.Form):
    """The trigger, who may enter (an audience, anonymous customers, entry conditions), who
    may enter again, and the goal."""

    trigger_type = forms.ChoiceField(choices=TRIGGERS, label="Starts with")
    trigger_event = forms.CharField(max_length=200, required=False, label="Trigger event")
    trigger_where = JSONListField(label="Trigger event filters (JSON list)")
    entry_key = forms.CharField(
        max_length=200, required=False, label="Entry key (an event property, like cart.id)"
    )
    trigger_audience = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, label="Trigger audience"
    )
    trigger_field = forms.CharField(
        max_length=200, required=False, label="Date field (birth_date or traits.<name>)"
    )
    reentry = forms.ChoiceField(
        choices=[
            ("once", "Once"),
            ("after_days", "Again after some days"),
            ("always", "Every time"),
        ],
        label="Enter again",
    )
    reentry_days = forms.IntegerField(
        min_value=1, max_value=3650, required=False, label="Days before entering again"
    )
    holdout_percent = forms.IntegerField(
        min_value=0, max_value=50, required=False, label="Holdout (% sent nothing)"
    )
    audience_id = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, label="Who may enter"
    )
    allow_anonymous = forms.BooleanField(
        required=False, label="Anonymous customers (never identified) may enter"
    )
    entry_rules = JSONObjectField(
        label="Entry conditions (rule JSON; blank: none)",
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        help_text='Checked when a customer would enter, like {"version": 1, "root": {"profile": '
        '{"field": "country", "op": "eq", "value": "MX"}}}',
    )
    goal_event = forms.CharField(max_length=200, required=False, label="Goal event")
    goal_within_days = forms.IntegerField(
        min_value=1, max_value=365, required=False, label="Goal within (days)"
    )
    goal_match_entry_key = forms.BooleanField(
        required=False, label="Goal only with the same entry key"
    )

    def __init__(self, *args, graph: dict, **kwargs):
        kwargs.setdefault("initial", self.initial_from(graph))
        kwargs.setdefault("prefix", "entry")
        super().__init__(*args, **kwargs)
        self.graph = graph
        audiences = audience_choices()
        self.fields["trigger_audience"].choices = audiences
        self.fields["audience_id"].choices = [("", "All customers"), *audiences[1:]]

    def clean_entry_rules(self):
        rules = self.cleaned_data["entry_rules"]
        if rules:
            errors = rules_errors(rules)
            if errors:
                raise forms.ValidationError(errors)
        return rules

    @staticmethod
    def initial_from(graph: dict) -> dict:
        trigger = graph.get("trigger") or {}
        goal = graph.get("goal") or {}
        reentry = graph.get("reentry") or {}
        return {
            "trigger_type": trigger.get("type", "event"),
            "trigger_event": trigger.get("event", ""),
            "trigger_where": trigger.get("where", []),
            "entry_key": trigger.get("entry_key", ""),
            "trigger_audience": trigger.get("audience_id"),
            "trigger_field": trigger.get("field", ""),
            "audience_id": graph.get("audience_id"),
            "allow_anonymous": graph.get("allow_anonymous", False),
            "entry_rules": graph.get("entry_rules") or {},
            "reentry": reentry.get("mode", "once"),
            "reentry_days": reentry.get("days"),
            "holdout_percent": graph.get("holdout_percent", 0),
            "goal_event": goal.get("event", ""),
            "goal_within_days": goal.get("within_days"),
            "goal_match_entry_key": goal.get("match_entry_key", False),
        }

    def graph_values(self) -> dict:
        data = self.cleaned_data
        graph = dict(self.graph)
        kind = data["trigger_type"]
        trigger = {"type": kind}
        if kind == "event":
            trigger |= {"event": data["trigger_event"].strip()}
            if data["trigger_where"]:
                trigger["where"] = data["trigger_where"]
            if data["entry_key"].strip():
                trigger["entry_key"] = data["entry_key"].strip()
        elif kind in ("audience_entered", "audience_exited"):
            trigger["audience_id"] = data["trigger_audience"]
        elif kind == "date_anniversary":
            trigger["field"] = data["trigger_field"].strip()
        graph["trigger"] = {key: value for key, value in trigger.items() if value not in ("", None)}
        graph["reentry"] = {"mode": data["reentry"]} | (
            {"days": data["reentry_days"]} if data["reentry_days"] else {}
        )
        graph["holdout_percent"] = data.get("holdout_percent") or 0
        for key in ("audience_id", "allow_anonymous", "entry_rules"):
            if data[key]:
                graph[key] = data[key]
            else:
                graph.pop(key, None)
        if data["goal_event"].strip():
            graph["goal"] = {"event": data["goal_event"].strip()}
            if data["goal_within_days"]:
                graph["goal"]["within_days"] = data["goal_within_days"]
            if data["goal_match_entry_key"]:
                graph["goal"]["match_entry_key"] = True
        else:
            graph.pop("goal", None)
        return graph


EXIT_KINDS = [
    ("event", "An event happens"),
    ("audience_exited", "They leave an audience"),
    ("consent_withdrawn", "They withdraw consent"),
]


class ExitForm(forms.Form):
    """A new exit rule; the fields of its kind are required, the others ignored."""

    kind = forms.ChoiceField(choices=EXIT_KINDS, label="Exit when")
    event = forms.CharField(max_length=200, required=False, label="Event name (an event exit)")
    where = JSONListField(label="Event filters (JSON list of {property, op, value})")
    audience_id = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, label="Audience (leaving it)"
    )
    purpose = forms.ChoiceField(
        choices=[("", "Choose a purpose"), *ConsentPurpose.choices],
        required=False,
        label="Consent purpose (withdrawn)",
    )

    def __init__(self, *args, exits: list, **kwargs):
        kwargs.setdefault("prefix", "exit")
        super().__init__(*args, **kwargs)
        self.exits = exits
        self.fields["audience_id"].choices = audience_choices()

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if len(self.exits) >= MAX_EXITS:
            raise forms.ValidationError(f"A journey has at most {MAX_EXITS} exits.")
        if kind == "event":
            event = (data.get("event") or "").strip()
            if not event:
                self.add_error("event", "Name the event.")
            elif len(data.get("where") or []) > MAX_FILTERS:
                self.add_error("where", f"At most {MAX_FILTERS} filters.")
            elif data.get("where"):
                for error in filters_errors(event, data["where"]):
                    self.add_error("where", error)
        for name, field, message in (
            ("audience_exited", "audience_id", "Choose the audience."),
            ("consent_withdrawn", "purpose", "Choose the purpose."),
        ):
            if kind == name and not data.get(field) and field not in self.errors:
                self.add_error(field, message)
        return data

    def exit_values(self) -> dict:
        data = self.cleaned_data
        kind = data["kind"]
        if kind == "event":
            rule = {"type": "event", "event": data["event"].strip()}
            return rule | ({"where": data["where"]} if data["where"] else {})
        if kind == "audience_exited":
            return {"type": kind, "audience_id": data["audience_id"]}
        return {"type": kind, "purpose": data["purpose"]}


class NewJourneyForm(forms.Form):
    name = forms.CharField(max_length=200, label="Name")
    description = forms.CharField(
        required=False, label="Description", widget=forms.Textarea(attrs={"rows": 2})
    )
    trigger_event = forms.CharField(
        max_length=200, required=False, label="Trigger event (blank: enrolled through the API)"
    )

    def graph(self) -> dict:
        event = self.cleaned_data["trigger_event"].strip()
        trigger = {"type": "event", "event": event} if event else {"type": "api"}
        return {
            "trigger": trigger,
            "reentry": {"mode": "once"},
            "start": "end",
            "steps": {"end": {"type": "exit", "label": "End"}},
        }


class PublishForm(forms.Form):
    note = forms.CharField(max_length=500, required=False, label="Version note")
    move_waiting = forms.BooleanField(
        required=False, label="Move waiting customers to this version (where their step stays)"
    )
