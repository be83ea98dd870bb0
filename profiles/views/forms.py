"""Forms of the customer pages. They check shapes only; profiles' selectors and services own
the rules."""

from __future__ import annotations

import json
from datetime import datetime, time

from django import forms
from django.utils import timezone

from profiles.fields import PROFILE_FIELDS
from profiles.imports import MAX_IMPORT_BYTES
from profiles.models import ConsentPurpose, ConsentStatus, Customer, ProfileSettings

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
            "(email, first_name, country…) maps to it and any other becomes a trait. A column "
            "the mapping leaves out maps to the field it is named like, or is ignored."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # What a column may be named like, for the header pre-fill (import-mapping.js).
        targets = [*PROFILE_FIELDS, *(f"consent.{purpose}" for purpose in ConsentPurpose.values)]
        self.fields["mapping"].widget.attrs["data-mapping-targets"] = json.dumps(targets)

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


# The profile fields the edit form offers, in the page's order (external id and email too: a
# marketer may fix a typo; the service refuses one that another customer or an erasure holds).
EDITABLE_FIELDS = (
    "external_id", "email", "phone", "first_name", "last_name", "gender", "birth_date",
    "country", "city", "timezone", "locale", "tier", "status",
)  # fmt: skip


def _json_text(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2) if value else ""


class CustomerEditForm(forms.Form):
    """The profile's fields as text, tags and traits as JSON objects.

    Only what the user changed is sent to the services (`changed_data`), so a field the user did
    not touch is never rewritten from a stale page. Values are checked by the services.
    """

    external_id = forms.CharField(label="External id", required=False, max_length=255)
    email = forms.CharField(required=False, max_length=254)
    phone = forms.CharField(required=False, max_length=40, help_text="With the country code.")
    first_name = forms.CharField(label="First name", required=False, max_length=100)
    last_name = forms.CharField(label="Last name", required=False, max_length=100)
    gender = forms.ChoiceField(required=False, choices=[("", "—"), *Customer.Gender.choices])
    birth_date = forms.CharField(
        label="Birth date", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    country = forms.CharField(required=False, max_length=2, help_text="Two letters, like MX.")
    city = forms.CharField(required=False, max_length=100)
    timezone = forms.CharField(
        label="Time zone", required=False, max_length=64, help_text="Like America/Mexico_City."
    )
    locale = forms.CharField(required=False, max_length=35, help_text="Like es-MX.")
    tier = forms.CharField(required=False, max_length=50)
    status = forms.ChoiceField(choices=Customer.Status.choices)
    tags = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "textarea-code", "spellcheck": "false"}),
        help_text='A JSON object of key → string, number or boolean, like {"vip": true}. '
        "A key you remove is deleted.",
    )
    traits = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "textarea-code", "spellcheck": "false"}),
        help_text="A JSON object. Keys you add or change are saved; to clear a trait, set it "
        "to null.",
    )

    def __init__(self, *args, customer: Customer, **kwargs):
        initial = {name: getattr(customer, name) or "" for name in EDITABLE_FIELDS}
        initial["birth_date"] = customer.birth_date.isoformat() if customer.birth_date else ""
        initial["tags"] = _json_text(customer.tags)
        initial["traits"] = _json_text(customer.traits)
        super().__init__(*args, initial=initial, **kwargs)
        self.customer = customer

    def _json_object(self, name: str) -> dict:
        text = self.cleaned_data[name].strip()
        try:
            value = json.loads(text) if text else {}
        except ValueError as error:
            raise forms.ValidationError('Must be JSON, like {"key": "value"}.') from error
        if not isinstance(value, dict):
            raise forms.ValidationError('Must be a JSON object, like {"key": "value"}.')
        return value

    def clean_tags(self) -> dict:
        return self._json_object("tags")

    def clean_traits(self) -> dict:
        traits = self._json_object("traits")
        kept = sorted(set(self.customer.traits) - set(traits))
        if kept:
            # customer_update merges traits: a missing key would silently stay.
            raise forms.ValidationError(
                f"Traits cannot be removed here; set {kept[0]} to null to clear it."
            )
        return traits

    def profile_changes(self) -> dict:
        """What to send to customer_update: the changed fields and traits."""
        data = {
            name: self.cleaned_data[name] for name in EDITABLE_FIELDS if name in self.changed_data
        }
        traits = self.cleaned_data["traits"]
        changed_traits = {
            key: value
            for key, value in traits.items()
            if self.customer.traits.get(key, ...) != value
        }
        if changed_traits:
            data["traits"] = changed_traits
        return data

    def tag_changes(self) -> tuple[dict, list[str]]:
        """(tags to set, keys to delete) against the customer's tags."""
        tags = self.cleaned_data["tags"]
        changed = {
            key: value for key, value in tags.items() if self.customer.tags.get(key, ...) != value
        }
        return changed, sorted(set(self.customer.tags) - set(tags))


class ProfileSettingsForm(forms.Form):
    """The workspace's profile settings (profiles.services.settings.EDITABLE)."""

    consent_regime = forms.ChoiceField(
        label="Consent regime",
        choices=ProfileSettings.ConsentRegime.choices,
        help_text="Whether customers with no recorded decision may be contacted.",
    )
    vendor_consent_required = forms.BooleanField(
        label="Vendor consent required",
        required=False,
        help_text="On: a destination may receive a customer only after they granted its vendor "
        "(strict, as TCF-style consent expects). Off: only a recorded denial stops it.",
    )
    purchase_event_names = forms.CharField(
        label="Purchase events",
        help_text="Event names that count as purchases, separated by commas.",
    )
    purchase_value_properties = forms.CharField(
        label="Purchase value properties",
        help_text="The first of these event properties that holds a number is the purchase value.",
    )
    device_token_ttl_days = forms.IntegerField(
        label="Device token lifetime (days)",
        min_value=1,
        max_value=3650,
        help_text="A push token not refreshed for this long expires.",
    )
    event_retention_days = forms.IntegerField(
        label="Event retention (days)",
        required=False,
        min_value=1,
        max_value=36500,
        help_text="Events older than this are deleted, and audiences no longer see them. "
        "Empty keeps every event.",
    )

    @staticmethod
    def initial_for(settings: ProfileSettings) -> dict:
        return {
            "consent_regime": settings.consent_regime,
            "vendor_consent_required": settings.vendor_consent_required,
            "purchase_event_names": ", ".join(settings.purchase_event_names),
            "purchase_value_properties": ", ".join(settings.purchase_value_properties),
            "device_token_ttl_days": settings.device_token_ttl_days,
            "event_retention_days": settings.event_retention_days,
        }

    @staticmethod
    def _names(text: str) -> list[str]:
        names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
        if not names:
            raise forms.ValidationError("Give at least one name.")
        return names

    def clean_purchase_event_names(self) -> list[str]:
        return self._names(self.cleaned_data["purchase_event_names"])

    def clean_purchase_value_properties(self) -> list[str]:
        return self._names(self.cleaned_data["purchase_value_properties"])
