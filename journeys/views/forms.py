"""The builder's step forms: one per step type (each reads its step and writes it back), and
adding a step; journeys.views.journey_forms has the journey's own. They check shapes; the
graph's validation (journeys.graph) and the services decide the rest, shown on the cards."""

from __future__ import annotations

import json

from django import forms

from journeys.graph import CHANNELS
from messaging.models import Template

UNITS = [("minutes", "minutes"), ("hours", "hours"), ("days", "days"), ("weeks", "weeks")]
UNIT_MINUTES = {"minutes": 1, "hours": 60, "days": 1440, "weeks": 10080}
CHANNEL_NAMES = {
    "email": "Email",
    "push": "Push",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "in_app": "In-app",
}
CHANNEL_CHOICES = [(channel, CHANNEL_NAMES.get(channel, channel)) for channel in CHANNELS]
WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


def duration_parts(spec: dict | None) -> tuple[int | None, str]:
    """A duration as (amount, unit) for the form: one unit as it is, several in minutes."""
    spec = spec or {}
    if len(spec) == 1:
        unit, amount = next(iter(spec.items()))
        return amount, unit
    if not spec:
        return None, "days"
    return sum(UNIT_MINUTES[unit] * amount for unit, amount in spec.items()), "minutes"


def duration_words(spec: dict | None) -> str:
    parts = [
        f"{amount} {unit[:-1] if amount == 1 else unit}" for unit, amount in (spec or {}).items()
    ]
    return ", ".join(parts) or "—"


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2) if value not in (None, [], {}) else ""


class JSONListField(forms.JSONField):
    """A JSON list (event filters, names); empty is an empty list."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}))
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if value in (None, ""):
            return []
        if not isinstance(value, list):
            raise forms.ValidationError("Enter a JSON list, like [] or [{...}].")
        return value

    def prepare_value(self, value):
        return value if isinstance(value, str) else _json_text(value)


class JSONObjectField(JSONListField):
    def to_python(self, value):
        value = forms.JSONField.to_python(self, value)
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Enter a JSON object, like {} or {"name": ...}.')
        return value


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


class StepForm(forms.Form):
    """A step's fields; `step_values()` is the step as the graph holds it (keeping the fields
    the form does not show, such as where each path leads)."""

    label = forms.CharField(max_length=200, required=False, label="Label")

    def __init__(self, *args, step: dict, step_id: str, **kwargs):
        kwargs.setdefault("prefix", step_id)
        kwargs.setdefault("initial", self.initial_from(step))
        super().__init__(*args, **kwargs)
        self.step = step
        self.step_id = step_id

    @classmethod
    def initial_from(cls, step: dict) -> dict:
        return {"label": step.get("label", "")}

    def step_values(self) -> dict:
        step = dict(self.step)
        label = self.cleaned_data["label"].strip()
        if label:
            step["label"] = label
        else:
            step.pop("label", None)
        return self._apply(step)

    def _apply(self, step: dict) -> dict:
        return step


class _DurationMixin:
    def _duration(self, prefix: str) -> dict:
        return {self.cleaned_data[f"{prefix}_unit"]: self.cleaned_data[f"{prefix}_amount"]}


def _amount(label: str) -> forms.IntegerField:
    return forms.IntegerField(min_value=0, max_value=525600, label=label)


class SendForm(StepForm):
    channel = forms.ChoiceField(choices=CHANNEL_CHOICES, label="Channel")
    template_id = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, label="Template"
    )
    kind = forms.ChoiceField(
        choices=[("marketing", "Marketing"), ("transactional", "Transactional")], label="Kind"
    )
    quiet_hours = forms.ChoiceField(
        choices=[("defer", "Hold until quiet hours end"), ("skip", "Skip the message")],
        label="In quiet hours",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        channel = self.step.get("channel", "email")
        if self.is_bound:
            channel = self.data.get(self.add_prefix("channel"), channel)
        self.fields["template_id"].choices = template_choices(channel)
        self.fields["template_id"].help_text = "Only the templates of the chosen channel."

    @classmethod
    def initial_from(cls, step):
        return super().initial_from(step) | {
            "channel": step.get("channel", "email"),
            "template_id": step.get("template_id"),
            "kind": step.get("kind", "marketing"),
            "quiet_hours": step.get("quiet_hours", "defer"),
        }

    def _apply(self, step):
        data = self.cleaned_data
        step |= {
            "channel": data["channel"],
            "kind": data["kind"],
            "quiet_hours": data["quiet_hours"],
        }
        if data["template_id"]:
            step["template_id"] = data["template_id"]
        else:
            step.pop("template_id", None)
        return step


def template_choices(channel: str) -> list[tuple]:
    templates = Template.objects.filter(channel=channel, is_archived=False).order_by("name")
    return [("", "Choose a template"), *((t.id, t.name) for t in templates)]


class DelayForm(StepForm, _DurationMixin):
    mode = forms.ChoiceField(
        choices=[
            ("duration", "For a time"),
            ("until", "Until a time of day"),
            ("until_date", "Until a date in the profile"),
        ],
        label="Wait",
    )
    wait_amount = forms.IntegerField(
        min_value=0, max_value=525600, required=False, label="How long"
    )
    wait_unit = forms.ChoiceField(choices=UNITS, label="Unit")
    time = forms.RegexField(
        regex=r"^([01]\d|2[0-3]):[0-5]\d$",
        required=False,
        label="Time of day (customer's zone, HH:MM)",
    )
    weekdays = forms.TypedMultipleChoiceField(
        coerce=int,
        choices=WEEKDAYS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="On these days (none: any day)",
    )
    date_field = forms.CharField(
        max_length=200, required=False, label="Date field (birth_date or traits.<name>)"
    )
    offset_days = forms.IntegerField(
        min_value=-365, max_value=365, required=False, label="Days before (-) or after (+) the date"
    )

    @classmethod
    def initial_from(cls, step):
        amount, unit = duration_parts(step.get("duration"))
        mode = next((m for m in ("until", "until_date") if m in step), "duration")
        until = step.get("until") or {}
        until_date = step.get("until_date") or {}
        return super().initial_from(step) | {
            "mode": mode,
            "wait_amount": amount,
            "wait_unit": unit,
            "time": until.get("time") or until_date.get("time", ""),
            "weekdays": until.get("weekdays", []),
            "date_field": until_date.get("field", ""),
            "offset_days": until_date.get("offset_days"),
        }

    def clean(self):
        data = super().clean()
        mode = data.get("mode")
        if mode == "duration" and data.get("wait_amount") is None:
            self.add_error("wait_amount", "Say how long to wait.")
        if mode == "until" and not data.get("time"):
            self.add_error("time", "Say the time of day.")
        if mode == "until_date" and not data.get("date_field"):
            self.add_error("date_field", "Name the date field.")
        return data

    def _apply(self, step):
        data = self.cleaned_data
        for key in ("duration", "until", "until_date"):
            step.pop(key, None)
        if data["mode"] == "duration":
            step["duration"] = self._duration("wait")
        elif data["mode"] == "until":
            step["until"] = {"time": data["time"]} | (
                {"weekdays": data["weekdays"]} if data["weekdays"] else {}
            )
        else:
            step["until_date"] = {"field": data["date_field"].strip()}
            if data.get("offset_days") is not None:
                step["until_date"]["offset_days"] = data["offset_days"]
            if data.get("time"):
                step["until_date"]["time"] = data["time"]
        return step


class WaitEventForm(StepForm, _DurationMixin):
    event = forms.CharField(max_length=200, required=False, label="Event name")
    where = JSONListField(label="Event filters (JSON list of {property, op, value})")
    match_entry_key = forms.BooleanField(
        required=False, label="Only an event with the trigger's entry key"
    )
    timeout_amount = _amount("Wait at most")
    timeout_unit = forms.ChoiceField(choices=UNITS, label="Unit")

    @classmethod
    def initial_from(cls, step):
        amount, unit = duration_parts(step.get("timeout"))
        return super().initial_from(step) | {
            "event": step.get("event", ""),
            "where": step.get("where", []),
            "match_entry_key": step.get("match_entry_key", False),
            "timeout_amount": amount,
            "timeout_unit": unit,
        }

    def _apply(self, step):
        data = self.cleaned_data
        step |= {"timeout": self._duration("timeout")}
        for key, value in (
            ("event", data["event"].strip()),
            ("where", data["where"]),
            ("match_entry_key", data["match_entry_key"]),
        ):
            if value:
                step[key] = value
            else:
                step.pop(key, None)
        return step


class WaitAudienceForm(StepForm, _DurationMixin):
    audience_id = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, label="Audience"
    )
    member = forms.ChoiceField(
        choices=[("in", "Until they are in it"), ("out", "Until they leave it")], label="Wait"
    )
    timeout_amount = _amount("Wait at most")
    timeout_unit = forms.ChoiceField(choices=UNITS, label="Unit")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["audience_id"].choices = audience_choices()

    @classmethod
    def initial_from(cls, step):
        amount, unit = duration_parts(step.get("timeout"))
        return super().initial_from(step) | {
            "audience_id": step.get("audience_id"),
            "member": "in" if step.get("member", True) else "out",
            "timeout_amount": amount,
            "timeout_unit": unit,
        }

    def _apply(self, step):
        data = self.cleaned_data
        step |= {"member": data["member"] == "in", "timeout": self._duration("timeout")}
        if data["audience_id"]:
            step["audience_id"] = data["audience_id"]
        else:
            step.pop("audience_id", None)
        return step


def audience_choices() -> list[tuple]:
    from audiences.models import Audience

    return [
        ("", "Choose an audience"),
        *Audience.objects.order_by("name").values_list("id", "name"),
    ]


class BranchForm(StepForm):
    """Each condition's label and rule (the audience rule language's JSON, evaluated for the
    customer when they reach the step); the first that holds wins, else the last column."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for index, condition in enumerate(self.step.get("conditions", [])):
            self.fields[f"condition_{index}_label"] = forms.CharField(
                max_length=200,
                required=False,
                label=f"Condition {index + 1}: label",
                initial=condition.get("label", ""),
            )
            self.fields[f"condition_{index}_rules"] = JSONObjectField(
                label=f"Condition {index + 1}: rule (JSON)",
                initial=condition.get("rules", {}),
                widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
                help_text='Like {"version": 1, "root": {"profile": {"field": "tier", '
                '"op": "eq", "value": "gold"}}}',
            )

    def _apply(self, step):
        conditions = []
        for index, condition in enumerate(step.get("conditions", [])):
            condition = dict(condition)
            condition["rules"] = self.cleaned_data[f"condition_{index}_rules"]
            label = self.cleaned_data[f"condition_{index}_label"].strip()
            if label:
                condition["label"] = label
            else:
                condition.pop("label", None)
            conditions.append(condition)
        step["conditions"] = conditions
        return step


class SplitForm(StepForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for index, path in enumerate(self.step.get("paths", [])):
            self.fields[f"path_{index}_name"] = forms.CharField(
                max_length=40,
                required=False,
                label=f"Path {index + 1}: name",
                initial=path.get("name", ""),
            )
            self.fields[f"path_{index}_percent"] = forms.IntegerField(
                min_value=1,
                max_value=100,
                label=f"Path {index + 1}: percent",
                initial=path.get("percent"),
            )

    def _apply(self, step):
        paths = []
        for index, path in enumerate(step.get("paths", [])):
            path = dict(path)
            path["percent"] = self.cleaned_data[f"path_{index}_percent"]
            name = self.cleaned_data[f"path_{index}_name"].strip()
            if name:
                path["name"] = name
            else:
                path.pop("name", None)
            paths.append(path)
        step["paths"] = paths
        return step


class UpdateProfileForm(StepForm):
    set_traits = JSONObjectField(label="Set traits (JSON object)")
    remove_traits = forms.CharField(required=False, label="Remove traits (comma-separated)")
    set_tags = JSONObjectField(label="Set tags (JSON object)")
    remove_tags = forms.CharField(required=False, label="Remove tags (comma-separated)")

    @classmethod
    def initial_from(cls, step):
        return super().initial_from(step) | {
            "set_traits": step.get("set_traits", {}),
            "set_tags": step.get("set_tags", {}),
            "remove_traits": ", ".join(step.get("remove_traits", [])),
            "remove_tags": ", ".join(step.get("remove_tags", [])),
        }

    def _apply(self, step):
        data = self.cleaned_data
        values = {
            "set_traits": data["set_traits"],
            "set_tags": data["set_tags"],
            "remove_traits": _names(data["remove_traits"]),
            "remove_tags": _names(data["remove_tags"]),
        }
        for key, value in values.items():
            if value:
                step[key] = value
            else:
                step.pop(key, None)
        return step


class WebhookForm(StepForm):
    destination_id = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, label="Webhook endpoint",
        help_text="A signed POST of topic journey.webhook (Destinations → Webhooks).",
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from destinations.models import Destination

        endpoints = Destination.objects.filter(kind="webhook").order_by("name")
        self.fields["destination_id"].choices = [
            ("", "Choose an endpoint"), *((e.id, e.name) for e in endpoints)]  # fmt: skip

    @classmethod
    def initial_from(cls, step):
        return super().initial_from(step) | {"destination_id": step.get("destination_id")}

    def _apply(self, step):
        if self.cleaned_data["destination_id"]:
            step["destination_id"] = self.cleaned_data["destination_id"]
        else:
            step.pop("destination_id", None)
        return step


STEP_FORMS = {
    "webhook": WebhookForm,
    "send": SendForm,
    "delay": DelayForm,
    "wait_event": WaitEventForm,
    "wait_audience": WaitAudienceForm,
    "branch": BranchForm,
    "split": SplitForm,
    "update_profile": UpdateProfileForm,
    "exit": StepForm,
}


def step_form(step_id: str, step: dict, data=None) -> StepForm:
    return STEP_FORMS.get(step.get("type"), StepForm)(data, step=step, step_id=step_id)


class AddStepForm(forms.Form):
    source = forms.CharField(max_length=64, required=False, widget=forms.HiddenInput)
    edge = forms.CharField(max_length=40, widget=forms.HiddenInput)
    choice = forms.ChoiceField(label="Step type")

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["choice"].choices = choices
