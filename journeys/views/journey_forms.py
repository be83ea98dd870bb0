"""The journey's own forms in the builder: the entry (trigger, re-entry, holdout) and goal, a
new journey, publishing. Shapes only; the graph's validation and the services decide."""

from __future__ import annotations

from django import forms

from journeys.views.forms import JSONListField, audience_choices

TRIGGERS = [
    ("event", "An event"),
    ("audience_entered", "Entering an audience"),
    ("audience_exited", "Leaving an audience"),
    ("date_anniversary", "A date in the profile, every year"),
    ("api", "Only the API"),
]


class EntryForm(forms.Form):
    """The trigger, who may enter again, and the goal."""

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
        self.fields["trigger_audience"].choices = audience_choices()

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
        if data["goal_event"].strip():
            graph["goal"] = {"event": data["goal_event"].strip()}
            if data["goal_within_days"]:
                graph["goal"]["within_days"] = data["goal_within_days"]
            if data["goal_match_entry_key"]:
                graph["goal"]["match_entry_key"] = True
        else:
            graph.pop("goal", None)
        return graph


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
