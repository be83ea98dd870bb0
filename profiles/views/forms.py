"""Forms of the customer pages. They check shapes only; profiles' selectors and services own
the rules."""

from __future__ import annotations

import json
from datetime import datetime, time

from django import forms
from django.utils import timezone

from profiles.imports import MAX_IMPORT_BYTES
from profiles.models import ConsentPurpose, ConsentStatus, Customer

NOT_RECORDED = ""


class CustomerFilterForm(forms.Form):
    """The list's search box and filters, read from the query string."""

    search = forms.CharField(
        required=False,
        max_length=255,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Email, name or phone prefix, or exact external id",
                "autocomplete": "off",
                "aria-label": "Search customers",
            }
        ),
    )
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Customer.Status.choices]
    )
    country = forms.RegexField(
        required=False,
        regex=r"^[A-Za-z]{2}$",
        max_length=2,
        error_messages={"invalid": "Two letters, like MX."},
        widget=forms.TextInput(attrs={"placeholder": "Country, e.g. MX", "autocomplete": "off"}),
    )
    identity = forms.ChoiceField(
        required=False,
        label="Known or anonymous",
        choices=[("", "Known and anonymous"), ("known", "Known only"), ("anonymous", "Anonymous")],
    )
    updated_since = forms.DateField(
        required=False, label="Updated since", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean_search(self) -> str:
        return self.cleaned_data["search"].strip()

    def clean_country(self) -> str:
        return self.cleaned_data["country"].upper()

    def updated_since_time(self) -> datetime | None:
        """The start of the chosen day in the current (the workspace's) time zone."""
        day = self.cleaned_data.get("updated_since")
        return timezone.make_aware(datetime.combine(day, time.min)) if day else None

    def field_filters(self) -> dict:
        """Equality filters on Customer that the selector does not take."""
        data = self.cleaned_data
        filters = {}
        if data.get("status"):
            filters["status"] = data["status"]
        if data.get("country"):
            filters["country"] = data["country"]
        if data.get("identity"):
            filters["is_anonymous"] = data["identity"] == "anonymous"
        return filters

    def is_filtered(self) -> bool:
        return any(self.cleaned_data.get(name) for name in self.fields)


STATUS_CHOICES = [
    (ConsentStatus.GRANTED, "Granted"),
    (ConsentStatus.DENIED, "Denied"),
    (NOT_RECORDED, "Not recorded"),
]


class ConsentForm(forms.Form):
    """One select per purpose, plus the status the page showed (`was_<purpose>`).

    Only purposes whose select differs from what was shown are changed, so a stale page never
    undoes a decision recorded since it was loaded for a purpose the user did not touch.
    """

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        for purpose, label in ConsentPurpose.choices:
            current = (customer.consent.get(purpose) or {}).get("status") or NOT_RECORDED
            self.fields[purpose] = forms.ChoiceField(
                label=label, choices=STATUS_CHOICES, required=False, initial=current
            )
            self.fields[f"was_{purpose}"] = forms.ChoiceField(
                choices=STATUS_CHOICES, required=False, initial=current, widget=forms.HiddenInput
            )

    def changes(self) -> dict[str, str | None]:
        """purpose → granted | denied | None (clear), for what the user changed."""
        data = self.cleaned_data
        return {
            purpose: data[purpose] or None
            for purpose in ConsentPurpose.values
            if data[purpose] != data[f"was_{purpose}"]
        }


class CustomerImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
        help_text="UTF-8 with a header row, up to 2 GB.",
        error_messages={"required": "Choose a CSV file to upload."},
    )
    match_by = forms.ChoiceField(
        label="Match customers by",
        required=False,
        choices=[
            ("", "External id if a column maps to it, else email"),
            ("external_id", "External id"),
            ("email", "Email"),
        ],
        help_text="Rows update the customer with this id, or create one.",
    )
    mapping = forms.CharField(
        label="Column mapping (optional)",
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "class": "textarea-code",
                "spellcheck": "false",
                "placeholder": '{"id": "external_id", "Plan": "traits.plan", '
                '"Newsletter": "consent.email_marketing"}',
            }
        ),
        help_text=(
            "JSON of CSV column → target. Without it, a column named like a profile field "
            "(email, first_name, country…) maps to it and any other becomes a trait."
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError("The file is larger than 2 GB.")
        return upload

    def clean_mapping(self) -> dict | None:
        text = self.cleaned_data["mapping"].strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(
                'The mapping must be JSON, like {"Email": "email"}.'
            ) from error
