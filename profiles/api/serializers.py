from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField
from profiles import normalize
from profiles.consent import (
    CONSENT_STRING,
    CONSENT_STRING_VERSION,
    MAX_CONSENT_STRING_LENGTH,
    MAX_CONSENT_STRING_VERSION_LENGTH,
    MAX_VENDORS,
    VENDOR_KEY_RULE,
    VENDORS,
)
from profiles.models import (
    ConsentChange,
    ConsentPurpose,
    ConsentStatus,
    Customer,
    Device,
    Event,
    ProfileSettings,
)

PROFILE_FIELD_NAMES = [
    "external_id", "email", "phone", "first_name", "last_name", "gender", "birth_date",
    "country", "city", "timezone", "locale", "tier", "status",
]  # fmt: skip
METRIC_FIELD_NAMES = [
    "purchase_count", "purchase_total", "last_purchase_at", "purchases_30d_count",
    "purchases_30d_total", "purchases_month_count", "purchases_month_total",
]  # fmt: skip


class MetricsOut(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = METRIC_FIELD_NAMES


class VendorDecisionOut(serializers.Serializer):
    status = serializers.ChoiceField(ConsentStatus.choices)
    at = serializers.CharField(help_text="when it was recorded (ISO 8601)")
    source = serializers.CharField()


class VendorDecisionsOut(serializers.DictField):
    """A customer's `consent_vendors` as stored: vendor key → its decision."""

    child = VendorDecisionOut()


class CustomerOut(serializers.ModelSerializer):
    metrics = MetricsOut(source="*", read_only=True)
    consent_vendors = VendorDecisionsOut(
        read_only=True,
        help_text="vendor (destination key) → {status, at, source}; only recorded decisions",
    )
    consent_string_version = serializers.SerializerMethodField(
        help_text="the version of the stored consent string (e.g. tcf2.2); null without one"
    )
    has_consent_string = serializers.SerializerMethodField(
        help_text="whether a consent string is stored (GET /customers/{id}/consent has it)"
    )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_consent_string_version(self, customer) -> str | None:
        return customer.consent_string_version or None

    def get_has_consent_string(self, customer) -> bool:
        return bool(customer.consent_string)

    class Meta:
        model = Customer
        fields = [
            "id",
            *PROFILE_FIELD_NAMES,
            "is_anonymous",
            "tags",
            "traits",
            "consent",
            "consent_vendors",
            "consent_string_version",
            "has_consent_string",
            "metrics",
            "created_at",
            "updated_at",
            "last_seen_at",
        ]


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "maxLength": normalize.MAX_TAG_VALUE_LENGTH},
            {"type": "number"},
            {"type": "boolean"},
        ]
    }
)
class TagValueField(serializers.JSONField):
    """Documents a tag's value; the service checks it (normalize.clean_tags)."""


# The form of `format: phone` ("+" and the country code, digits, spaces, dots or hyphens); if the
# number exists is libphonenumber's to say.
PHONE_PATTERN = r"^\+[0-9][0-9 .-]{3,24}$"


@extend_schema_field(
    {
        "type": "string",
        "format": "phone",
        "pattern": PHONE_PATTERN,
        "nullable": True,
        "description": "a valid phone number in international form (+ and the country code); "
        "stored as E.164",
    }
)
class PhoneField(serializers.CharField):
    """Documents a phone: `format: phone` is a number libphonenumber finds valid (the service
    checks it, profiles.normalize.clean_phone); tests/test_schemathesis.py generates such."""


@extend_schema_field(
    {
        "nullable": True,
        "description": "YYYY-MM-DD; null or empty clears it",
        "oneOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0}],
    }
)
class BlankableDateField(serializers.DateField):
    """Documents a date the service also takes as "" (clear it), like the other profile fields."""


class CustomerIn(RefusesUnknownFields):
    """Documents the body; validation and normalization happen in the service (shared with
    imports and the tracking API). Unknown fields are refused."""

    external_id = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=255
    )
    email = serializers.EmailField(
        required=False, allow_null=True, allow_blank=True, help_text="lower-cased"
    )
    phone = PhoneField(required=False, allow_null=True, allow_blank=True)
    first_name = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=100
    )
    last_name = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=100
    )
    gender = serializers.ChoiceField(
        Customer.Gender.choices, required=False, allow_null=True, allow_blank=True
    )
    birth_date = BlankableDateField(required=False, allow_null=True)
    country = serializers.ChoiceField(
        sorted(normalize._countries()),
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="ISO 3166-1 alpha-2",
    )
    city = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=100)
    timezone = serializers.ChoiceField(
        sorted(normalize._timezones()),
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="IANA name",
    )
    locale = serializers.RegexField(
        normalize._LOCALE.pattern,
        max_length=normalize.MAX_LOCALE_LENGTH,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="e.g. es-MX",
    )
    tier = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=50)
    status = serializers.ChoiceField(
        Customer.Status.choices,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="null or empty: active",
    )
    traits = serializers.DictField(
        required=False, allow_null=True, help_text="merged into existing traits"
    )
    tags = serializers.DictField(
        child=TagValueField(),
        required=False,
        allow_null=True,
        help_text="key (1 to 255 characters) → string, number or boolean",
    )


class TagsIn(serializers.Serializer):
    tags = serializers.DictField(
        child=TagValueField(),
        help_text="key (1 to 255 characters) → string, number or boolean; merged",
    )


class IdentifyIn(serializers.Serializer):
    external_id = serializers.CharField(required=False, max_length=255)
    email = serializers.EmailField(required=False)


class ConsentChangeOut(serializers.ModelSerializer):
    purpose = serializers.ChoiceField(ConsentPurpose.choices)

    class Meta:
        model = ConsentChange
        fields = ["purpose", "status", "source", "changed_at"]


class VendorConsentChangeOut(serializers.ModelSerializer):
    class Meta:
        model = ConsentChange
        fields = ["vendor", "status", "source", "changed_at"]


class ConsentStringChangeOut(serializers.ModelSerializer):
    consent_string_version = serializers.SerializerMethodField(
        help_text="the new string's version; null: the string was cleared"
    )

    class Meta:
        model = ConsentChange
        fields = ["consent_string_version", "source", "changed_at"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_consent_string_version(self, change) -> str | None:
        return change.consent_string_version or None


class ConsentOut(serializers.Serializer):
    regime = serializers.CharField()
    purposes = serializers.DictField(
        help_text="purpose → {status: granted|denied|null, at, source, may_contact}"
    )
    history = ConsentChangeOut(many=True, help_text="the purposes' last 100 changes")
    vendor_consent_required = serializers.BooleanField(
        help_text="true: a vendor without a recorded decision may not receive the customer; "
        "false: only a recorded denial stops it"
    )
    vendors = VendorDecisionsOut(
        help_text="vendor (destination key) → {status, at, source}; only recorded decisions"
    )
    vendor_history = VendorConsentChangeOut(many=True, help_text="the last 100 vendor changes")
    consent_string = serializers.CharField(
        allow_null=True, help_text="the stored consent string as given (never decoded); or null"
    )
    consent_string_version = serializers.CharField(allow_null=True)
    consent_string_history = ConsentStringChangeOut(
        many=True, help_text="the last 100 changes of the string (its value is not kept)"
    )


CONSENT_DECISION_SCHEMA = {
    "oneOf": [
        {"type": "string", "enum": ConsentStatus.values},
        {"type": "boolean", "description": "true: granted, false: denied"},
    ],
    "nullable": True,
}


@extend_schema_field(CONSENT_DECISION_SCHEMA)
class ConsentDecisionField(serializers.JSONField):
    """Documents one decision; `clean_consent_changes` checks it. null clears the purpose."""


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": CONSENT_DECISION_SCHEMA,
        "maxProperties": MAX_VENDORS,
        "description": f"vendor (destination key) → granted | denied | null; {VENDOR_KEY_RULE}",
    }
)
class VendorDecisionsIn(serializers.DictField):
    """Documents the vendor decisions; `clean_vendor_changes` checks them."""


class ConsentPurposesIn(RefusesUnknownFields):
    """Documents the decisions; `consent_update` checks them (`clean_consent_input`)."""

    def get_fields(self):
        fields = {
            purpose: ConsentDecisionField(required=False, allow_null=True)
            for purpose in ConsentPurpose.values
        }
        fields[VENDORS] = VendorDecisionsIn(required=False)
        fields[CONSENT_STRING] = serializers.CharField(
            required=False,
            allow_null=True,
            allow_blank=True,
            max_length=MAX_CONSENT_STRING_LENGTH,
            help_text="the raw consent string a CMP gave (e.g. an IAB TCF string), stored as "
            "given; null or empty clears it and its version",
        )
        fields[CONSENT_STRING_VERSION] = serializers.CharField(
            required=False,
            allow_null=True,
            max_length=MAX_CONSENT_STRING_VERSION_LENGTH,
            help_text="required with a consent_string, refused without one (e.g. tcf2.2)",
        )
        return fields


class ConsentIn(serializers.Serializer):
    consent = ConsentPurposesIn(
        help_text="purpose → granted | denied | null, and optionally vendors and consent_string"
    )
    source = serializers.CharField(required=False, default="api", max_length=100)


class DeviceOut(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = Device
        fields = [
            "id", "token", "platform", "model", "os_version", "push_enabled", "is_active",
            "created_at", "updated_at", "expires_at",
        ]  # fmt: skip


class DeviceInfoIn(serializers.Serializer):
    platform = serializers.ChoiceField(Device.Platform.choices)
    model = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=100)
    osVersion = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=50
    )


class DeviceIn(serializers.Serializer):
    device_token = serializers.CharField(max_length=4096)
    device_info = DeviceInfoIn()
    customer_token = serializers.CharField(
        required=False, help_text="required with a write key; from POST /customers/{id}/token"
    )


class CustomerTokenOut(serializers.Serializer):
    customer_token = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="seconds")


class EventOut(serializers.ModelSerializer):
    customer_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = Event
        fields = [
            "id", "type", "name", "properties", "occurred_at", "received_at", "message_id",
            "customer_id", "user_id", "anonymous_id", "context", "source",
        ]  # fmt: skip


class EventIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    customer_id = serializers.IntegerField(required=False)
    external_id = serializers.CharField(required=False, help_text="the customer's own id")
    anonymous_id = serializers.CharField(required=False)
    properties = serializers.DictField(required=False)
    context = serializers.DictField(required=False)
    occurred_at = serializers.DateTimeField(required=False)
    message_id = serializers.CharField(required=False, help_text="dedupe key; generated if absent")


class EventsIn(serializers.Serializer):
    events = EventIn(many=True, help_text="1 to 1,000 events")


class IngestOut(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.ListField(child=serializers.DictField())
    warnings = serializers.ListField(child=serializers.CharField())


class IngestRejectedOut(IngestOut):
    """The answer when every event of the request was rejected (a 400)."""

    detail = serializers.CharField()
    code = serializers.CharField()


class ProfileSettingsOut(serializers.ModelSerializer):
    class Meta:
        model = ProfileSettings
        fields = [
            "consent_regime", "vendor_consent_required", "purchase_event_names",
            "purchase_value_properties", "device_token_ttl_days", "max_identities_per_customer",
            "event_retention_days",
        ]  # fmt: skip


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false only: DRF's BooleanField also reads 0, "yes" or "on", which the
    schema (`type: boolean`) does not allow."""

    default_error_messages = {"invalid": "must be true or false"}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class ProfileSettingsIn(serializers.Serializer):
    consent_regime = serializers.ChoiceField(ProfileSettings.ConsentRegime.choices, required=False)
    vendor_consent_required = StrictBooleanField(
        required=False,
        help_text="true: a destination whose vendor has no recorded decision may not receive a "
        "customer (strict, as TCF-style consent expects); false (the default): only a recorded "
        "denial stops it",
    )
    purchase_event_names = serializers.ListField(
        child=StrictCharField(max_length=200), required=False, max_length=20
    )
    purchase_value_properties = serializers.ListField(
        child=StrictCharField(max_length=255), required=False, max_length=10
    )
    device_token_ttl_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
    max_identities_per_customer = serializers.IntegerField(
        min_value=1, max_value=100000, required=False
    )
    event_retention_days = serializers.IntegerField(
        min_value=1,
        max_value=36500,
        required=False,
        allow_null=True,
        help_text="Events older than this many days (by occurred_at) are deleted; null keeps all.",
    )
