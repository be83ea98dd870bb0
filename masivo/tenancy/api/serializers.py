import zoneinfo

from django.utils import timezone
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from masivo.tenancy.api.strict import StrictCharField
from masivo.tenancy.models import ApiKey, Invitation, Member, Organization, Workspace
from masivo.tenancy.roles import Role


class OrganizationOut(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug"]


class WorkspaceOut(serializers.ModelSerializer):
    organization = OrganizationOut()

    class Meta:
        model = Workspace
        fields = ["id", "name", "timezone", "organization", "created_at"]


class WorkspaceUpdateIn(serializers.Serializer):
    name = StrictCharField(max_length=200, required=False)
    timezone = serializers.ChoiceField(
        sorted(zoneinfo.available_timezones()),
        required=False,
        help_text="an IANA time zone",
        error_messages={"invalid_choice": "'{input}' is not an IANA time zone"},
    )


class ApiKeyOut(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "kind",
            "name",
            "role",
            "prefix",
            "is_active",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]


class ApiKeyCreatedOut(ApiKeyOut):
    token = serializers.CharField(help_text="The full key. Shown only in this response.")

    class Meta(ApiKeyOut.Meta):
        fields = [*ApiKeyOut.Meta.fields, "token"]


class ApiKeyCreateIn(serializers.Serializer):
    """Validates the body; the schema documents it as one of the two shapes below."""

    name = StrictCharField(max_length=100)
    kind = serializers.ChoiceField(choices=ApiKey.Kind.choices, default=ApiKey.Kind.SECRET)
    role = serializers.ChoiceField(
        choices=[Role.ADMIN, Role.MARKETER, Role.VIEWER],
        required=False,
        help_text="Required for secret keys; ignored for write keys.",
    )

    def validate(self, attrs):
        if attrs["kind"] == ApiKey.Kind.SECRET and not attrs.get("role"):
            raise serializers.ValidationError({"role": ["a secret key needs a role"]})
        return attrs


# The two shapes of ApiKeyCreateIn, for the schema only. The choices are spelled like the
# model's, so that the schema's enums stay ApiKeyKindEnum and KeyRoleEnum.
KEY_ROLES = [(Role.ADMIN, "Admin"), (Role.MARKETER, "Marketer"), (Role.VIEWER, "Viewer")]


@extend_schema_field({"type": "string", "enum": [ApiKey.Kind.SECRET.value]})
class _SecretKind(serializers.CharField):
    pass


@extend_schema_field({"type": "string", "enum": [ApiKey.Kind.WRITE.value]})
class _WriteKind(serializers.CharField):
    pass


class SecretKeyCreateIn(serializers.Serializer):
    name = StrictCharField(max_length=100)
    kind = _SecretKind(required=False, help_text="secret (the default)")
    role = serializers.ChoiceField(choices=KEY_ROLES)


class WriteKeyCreateIn(serializers.Serializer):
    name = StrictCharField(max_length=100)
    kind = _WriteKind()
    role = serializers.ChoiceField(
        choices=KEY_ROLES, required=False, help_text="ignored: a write key has no role"
    )


API_KEY_CREATE_SCHEMA = PolymorphicProxySerializer(
    component_name="ApiKeyCreate",
    serializers=[SecretKeyCreateIn, WriteKeyCreateIn],
    resource_type_field_name=None,
)


class MemberOut(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    name = serializers.CharField(source="user.get_full_name")

    class Meta:
        model = Member
        fields = ["id", "email", "name", "role", "created_at"]


class InvitationOut(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    invited_by = serializers.SerializerMethodField(
        help_text="The email of the member who invited; null when an API key did."
    )

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
        ]

    @extend_schema_field(
        serializers.ChoiceField(choices=["pending", "expired", "accepted", "revoked"])
    )
    def get_status(self, invitation) -> str:
        if invitation.revoked_at is not None:
            return "revoked"
        if invitation.accepted_at is not None:
            return "accepted"
        return "expired" if invitation.expires_at <= timezone.now() else "pending"

    def get_invited_by(self, invitation) -> str | None:
        return invitation.invited_by.email if invitation.invited_by else None


class ServiceErrorOut(serializers.Serializer):
    """The error shape, for statuses the shared error responses do not cover."""

    detail = serializers.CharField()
    code = serializers.CharField()


class InvitationCreateIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)


class MemberUpdateIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
