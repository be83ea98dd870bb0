"""Audience forms: the create/edit form (its rules as JSON text), list members, list uploads,
"Why?" lookups.

They check shapes only; audiences.services owns every rule about audiences.
"""

import json
import re

from django import forms

from audiences.models import Audience, ListUpload
from audiences.services import DESCRIPTION_MAX_LENGTH, LIST_MEMBERS_CHANGE_MAX, NAME_MAX_LENGTH
from audiences.views.display import rules_json


def parsed_rules(text: str):
    """The rules document in a form's text; ValidationError (with the position) if not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise forms.ValidationError(
            f"This is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})."
        ) from error


class AudienceForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX_LENGTH)
    description = forms.CharField(
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: what the audience is for.",
    )
    kind = forms.ChoiceField(
        choices=Audience.Kind.choices,
        initial=Audience.Kind.RULES,
        widget=forms.RadioSelect,
        label="Members come from",
    )
    schedule = forms.ChoiceField(
        choices=Audience.Schedule.choices,
        initial=Audience.Schedule.DAILY,
        label="Recalculate",
        help_text="Also whenever the rules change, and at least hourly for time-based rules.",
    )
    is_realtime = forms.BooleanField(
        required=False,
        label="Real time",
        help_text="Update membership as events and profile changes arrive.",
    )
    rules = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"class": "textarea-code", "rows": 14, "spellcheck": "false"}),
        label="Rules as JSON",
    )

    def __init__(self, *args, audience: Audience | None = None, **kwargs):
        self.audience = audience
        if audience is not None and "data" not in kwargs and not args:
            kwargs["initial"] = {
                "name": audience.name,
                "description": audience.description,
                "schedule": audience.schedule,
                "is_realtime": audience.is_realtime,
                "rules": rules_json(audience.rules) if audience.rules is not None else "",
            }
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [
            (Audience.Kind.RULES, "Rules on profiles and events"),
            (Audience.Kind.LIST, "An uploaded list of customers"),
        ]
        if audience is not None:
            del self.fields["kind"]

    @property
    def audience_kind(self) -> str:
        if self.audience is not None:
            return self.audience.kind
        return self.data.get("kind") or self.fields["kind"].initial

    def clean_rules(self):
        text = self.cleaned_data["rules"].strip()
        if self.audience_kind != Audience.Kind.RULES:
            return None
        if not text:
            raise forms.ValidationError("A rules audience needs rules: add a condition.")
        return parsed_rules(text)

    def changes(self) -> dict:
        """What the user changed on the edit page, as audience_update takes it.

        Only changed values: sending the rules unchanged would hide a schedule change from the
        service (it then leaves the next run as it was).
        """
        data = self.cleaned_data
        audience = self.audience
        changed = {
            name: data[name]
            for name in ("name", "description", "schedule", "is_realtime")
            if data[name] != getattr(audience, name)
        }
        if audience.kind == Audience.Kind.RULES and data["rules"] != audience.rules:
            changed["rules"] = data["rules"]
        return changed


def _customer_ids(text: str) -> list[int]:
    tokens = [token for token in re.split(r"[\s,;]+", text) if token]
    bad = [token for token in tokens if not token.isdigit()]
    if bad:
        raise forms.ValidationError(f"“{bad[0][:40]}” is not a customer id (a whole number).")
    if len(tokens) > LIST_MEMBERS_CHANGE_MAX:
        raise forms.ValidationError(f"At most {LIST_MEMBERS_CHANGE_MAX:,} ids at a time.")
    return sorted({int(token) for token in tokens})


def _references(text: str) -> list[str]:
    """External ids or emails, in the order given, without repeats."""
    tokens = [token for token in re.split(r"[\s,;]+", text) if token]
    if len(tokens) > LIST_MEMBERS_CHANGE_MAX:
        raise forms.ValidationError(f"At most {LIST_MEMBERS_CHANGE_MAX:,} values at a time.")
    return list(dict.fromkeys(tokens))


class ListMembersForm(forms.Form):
    ACTIONS = [("add", "Add"), ("remove", "Remove")]
    IDENTIFIERS = [("id", "Customer id"), ("external_id", "External id"), ("email", "Email")]

    identifier = forms.ChoiceField(
        label="Identified by", choices=IDENTIFIERS, initial="id", required=False
    )
    customer_ids = forms.CharField(
        label="Customers",
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "1204, 1311 · crm-7 · ana@example.com"}
        ),
        help_text="Customer ids, external ids or emails (say which), separated by commas, "
        "spaces or new lines.",
    )
    action = forms.ChoiceField(choices=ACTIONS)

    def clean_identifier(self) -> str:
        return self.cleaned_data["identifier"] or "id"

    def clean_customer_ids(self) -> list:
        """Whole numbers for customer ids; otherwise the values, for the view to look up."""
        identifier = self.cleaned_data.get("identifier", "id")
        if identifier == "id":
            ids = _customer_ids(self.cleaned_data["customer_ids"])
        else:
            ids = _references(self.cleaned_data["customer_ids"])
        if not ids:
            raise forms.ValidationError(
                f"Give at least one {dict(self.IDENTIFIERS)[identifier].lower()}."
            )
        return ids


class WhyForm(forms.Form):
    customer = forms.CharField(
        max_length=254,
        label="Customer id or email",
        widget=forms.TextInput(attrs={"placeholder": "Customer id or email"}),
    )


class ListUploadForm(forms.Form):
    """Shapes only: audiences.lists decides what a file and its options may be."""

    file = forms.FileField(
        label="CSV file",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
        help_text="UTF-8, one identifier per row. A first row naming the identifier is a header.",
        error_messages={"required": "Choose a CSV file to upload."},
    )
    identifier = forms.ChoiceField(
        label="The file holds",
        choices=ListUpload.Identifier.choices,
        initial=ListUpload.Identifier.EMAIL,
    )
    create_missing = forms.BooleanField(
        label="Create missing customers",
        required=False,
        help_text="For external ids and emails: a value that matches no one becomes a customer.",
    )
