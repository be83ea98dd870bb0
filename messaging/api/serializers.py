"""Channel connections in the API. Input serializers check shapes and types (and say them in the
schema); the services check meaning. Output never carries a credential: only that it is set
and its last characters."""

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField
from messaging.channels import PROVIDERS
from messaging.models import ChannelConnection

NO_SPACES = r"^\S+$"
E164 = r"^\+[1-9][0-9]{6,14}$"


class CredentialOut(serializers.Serializer):
    is_set = serializers.BooleanField()
    last4 = serializers.CharField(help_text="the secret's last 4 characters; empty when short")


class ConnectionOut(serializers.ModelSerializer):
    channels = serializers.SerializerMethodField()
    settings = serializers.DictField(help_text="the provider's public settings")
    credentials = serializers.SerializerMethodField(
        help_text="each credential: set or not, and its last characters; never the value"
    )

    class Meta:
        model = ChannelConnection
        fields = [
            "id", "provider", "channels", "settings", "credentials", "last_tested_at",
            "last_test_ok", "last_test_detail", "created_at", "updated_at",
        ]  # fmt: skip

    def get_channels(self, connection) -> list[str]:
        return list(PROVIDERS[connection.provider].channels)

    @extend_schema_field(serializers.DictField(child=CredentialOut()))
    def get_credentials(self, connection) -> dict:
        hints = connection.credential_hints
        return {
            name: {"is_set": name in hints, "last4": hints.get(name, "")}
            for name in PROVIDERS[connection.provider].credential_names
        }


class ConnectionTestOut(serializers.Serializer):
    is_ok = serializers.BooleanField()
    detail = serializers.CharField(help_text="what the provider said, for people")
    tested_at = serializers.DateTimeField()


class StrictRegexField(serializers.RegexField):
    """A RegexField that takes only JSON strings (like StrictCharField): the pattern is in the
    schema, and the service cleans further."""

    default_error_messages = {"not_a_string": "must be a string"}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


def _text(max_length: int, *, pattern: str | None = None, required: bool = False, **kwargs):
    if pattern:
        return StrictRegexField(
            pattern, max_length=max_length, required=required, allow_blank=not required, **kwargs
        )
    return StrictCharField(
        max_length=max_length, required=required, allow_blank=not required, **kwargs
    )


class SendGridFields(RefusesUnknownFields):
    api_key = _text(200, pattern=NO_SPACES, required=True, help_text="a key with Mail Send")
    from_email = serializers.EmailField(max_length=254, required=True)
    from_name = _text(200)
    reply_to = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    event_webhook_public_key = _text(
        500, help_text="the signed Event Webhook's verification key (base64 DER, ECDSA P-256)"
    )


class TwilioFields(RefusesUnknownFields):
    account_sid = _text(34, pattern=r"^AC[0-9a-f]{32}$", required=True)
    auth_token = _text(100, pattern=NO_SPACES, required=True)
    whatsapp_from = _text(16, pattern=E164, help_text="E.164; this or messaging_service_sid")
    messaging_service_sid = _text(34, pattern=r"^MG[0-9a-f]{32}$")
    sms_from = _text(16, pattern=E164, help_text="E.164, when SMS comes from another number")


class FcmFields(RefusesUnknownFields):
    service_account = serializers.DictField(
        required=True, help_text="the service account's JSON key file, as an object"
    )
    project_id = _text(30, pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")


class SendGridConnectionIn(SendGridFields):
    provider = serializers.ChoiceField(["sendgrid"])


class TwilioConnectionIn(TwilioFields):
    provider = serializers.ChoiceField(["twilio"])


class FcmConnectionIn(FcmFields):
    provider = serializers.ChoiceField(["fcm"])


CREATE_SERIALIZERS = {
    "sendgrid": SendGridConnectionIn,
    "twilio": TwilioConnectionIn,
    "fcm": FcmConnectionIn,
}


def _partial(serializer_class, name: str):
    """The same fields, none required: an update names only what changes."""
    fields = {
        field_name: field.__class__(*field._args, **{**field._kwargs, "required": False})
        for field_name, field in serializer_class().fields.items()
    }
    return type(name, (RefusesUnknownFields,), fields)


UPDATE_SERIALIZERS = {
    "sendgrid": _partial(SendGridFields, "SendGridConnectionUpdateIn"),
    "twilio": _partial(TwilioFields, "TwilioConnectionUpdateIn"),
    "fcm": _partial(FcmFields, "FcmConnectionUpdateIn"),
}

CONNECTION_CREATE_SCHEMA = PolymorphicProxySerializer(
    component_name="ConnectionCreateIn",
    serializers=CREATE_SERIALIZERS,
    resource_type_field_name="provider",
)


class ConnectionUpdateIn(
    _partial(SendGridFields, "_SendGrid"),
    _partial(TwilioFields, "_Twilio"),
    _partial(FcmFields, "_Fcm"),
):
    """For the schema: any of the connection's provider's fields; another provider's is a 400."""
