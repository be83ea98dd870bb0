"""Input and output shapes of the destinations API. Names start with Destination… or
AudienceSync… so that no schema component collides with another app's."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers

from destinations.models import AudienceSync, Destination, SyncRecord, SyncRun
from destinations.services import FORWARD_TYPES, MAX_FORWARD_NAMES
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField

MAX_ID = 2**63 - 1


def validated(serializer_class, data, *, partial: bool = False) -> dict:
    """The serializer's clean data, or a 400 whose field names are dotted paths
    (`identifiers.0`, `config.ad_account_id`), as the services name them."""
    serializer = serializer_class(data=data, partial=partial)
    if not serializer.is_valid():
        raise exceptions.ValidationError(_dotted(serializer.errors))
    return dict(serializer.validated_data)


def _dotted(errors, prefix: str = "") -> dict:
    flat = {}
    items = errors.items() if isinstance(errors, dict) else enumerate(errors)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _dotted(value, f"{name}.")
        elif isinstance(value, list) and value and not isinstance(value[0], str):
            flat |= _dotted(dict(enumerate(value)), f"{name}.")  # a list of nested errors
        else:
            flat[name] = value
    return flat


# Destinations -----------------------------------------------------------------------------------


class DestinationCreateIn(RefusesUnknownFields):
    kind = StrictCharField(help_text="one of GET /destinations/kinds")
    name = StrictCharField(max_length=200)
    key = StrictCharField(
        max_length=64,
        required=False,
        help_text="the name in vendor consent (consent.vendors.<key>); by default the kind",
    )
    config = serializers.DictField(
        required=False, help_text="the kind's config fields (shown again)"
    )
    credentials = serializers.DictField(
        required=False, help_text="the kind's credentials (encrypted; never shown again)"
    )


class DestinationUpdateIn(RefusesUnknownFields):
    name = StrictCharField(max_length=200, required=False)
    config = serializers.DictField(required=False, help_text="merged into the stored config")
    credentials = serializers.DictField(
        required=False, help_text="merged into the stored credentials (one not given is kept)"
    )
    rate_limit_per_second = serializers.IntegerField(
        min_value=1, max_value=100_000, required=False, allow_null=True,
        help_text="requests a second at most; null: the kind's default",
    )  # fmt: skip


class DestinationDisableIn(RefusesUnknownFields):
    reason = StrictCharField(max_length=2000, required=False, allow_blank=True)


class DestinationOut(serializers.ModelSerializer):
    credential_hints = serializers.DictField(
        child=serializers.CharField(), help_text="the last characters of each credential"
    )
    sync_count = serializers.IntegerField(help_text="audience syncs to this destination")

    class Meta:
        model = Destination
        fields = [
            "id", "kind", "name", "key", "status", "disabled_reason", "config",
            "credential_hints", "rate_limit_per_second", "last_tested_at", "last_test_ok",
            "last_test_detail", "sync_count", "created_by", "created_at", "updated_at",
        ]  # fmt: skip


class DestinationTestOut(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField(help_text="what the platform said")
    tested_at = serializers.DateTimeField()


class DestinationForwardingIn(RefusesUnknownFields):
    enabled = serializers.BooleanField()
    types = serializers.ListField(
        child=StrictCharField(), required=False, allow_empty=True, max_length=len(FORWARD_TYPES),
        help_text=f"any of {', '.join(FORWARD_TYPES)} the kind takes; by default all of them",
    )  # fmt: skip
    event_names = serializers.ListField(
        child=StrictCharField(allow_blank=True), required=False, max_length=MAX_FORWARD_NAMES,
        help_text="events forwarded (empty: every event)",
    )  # fmt: skip
    traits = serializers.ListField(
        child=StrictCharField(allow_blank=True), required=False, max_length=MAX_FORWARD_NAMES,
        help_text="traits sent with profiles (empty: none; profile fields always go)",
    )  # fmt: skip


class DestinationForwardingOut(serializers.Serializer):
    enabled = serializers.BooleanField()
    types = serializers.ListField(child=serializers.CharField())
    event_names = serializers.ListField(child=serializers.CharField())
    traits = serializers.ListField(child=serializers.CharField())
    since = serializers.DateTimeField(
        allow_null=True, help_text="forwarding covers what happened from then"
    )
    offered_types = serializers.ListField(
        child=serializers.CharField(), help_text="what this kind takes"
    )
    oldest_pending_at = serializers.DateTimeField(
        allow_null=True, help_text="the oldest batch not yet sent (read-only)"
    )
    oldest_pending_age_seconds = serializers.IntegerField(allow_null=True)
    pending_batches = serializers.IntegerField()
    dead_batches = serializers.IntegerField(help_text="batches whose retries are spent")


class DestinationFieldOut(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    type = serializers.ChoiceField(
        ["string", "text", "url", "email", "integer", "number", "boolean", "choice", "list",
         "object"]
    )  # fmt: skip
    required = serializers.BooleanField(source="is_required")
    secret = serializers.BooleanField(source="is_secret")
    help = serializers.CharField()
    choices = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_choices(self, spec) -> list[str]:
        return [value for value, _ in spec.choices]


class DestinationKindOut(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    summary = serializers.CharField()
    capabilities = serializers.ListField(
        child=serializers.CharField(),
        help_text="audiences, replace, events, profiles, memberships, deletion",
    )
    identifiers = serializers.ListField(
        child=serializers.CharField(), help_text="identifiers a sync may send"
    )
    default_identifiers = serializers.ListField(child=serializers.CharField())
    consent_purpose = serializers.CharField(
        allow_null=True, help_text="the consent purpose a customer must allow (null: none)"
    )
    config_fields = DestinationFieldOut(many=True)
    credentials_fields = DestinationFieldOut(many=True)


# Audience syncs ---------------------------------------------------------------------------------


class AudienceSyncCreateIn(RefusesUnknownFields):
    audience_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    destination_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    mode = serializers.ChoiceField(AudienceSync.Mode.choices, required=False)
    trigger = serializers.ChoiceField(AudienceSync.Trigger.choices, required=False)
    interval_minutes = serializers.IntegerField(
        required=False, allow_null=True,
        help_text="schedule: minutes between runs (default 60); streaming: batching (default 5)",
    )  # fmt: skip
    identifiers = serializers.ListField(
        child=StrictCharField(), required=False, allow_empty=True,
        help_text="what to send (the kind's identifiers); by default the kind's defaults",
    )  # fmt: skip
    remote_audience_id = StrictCharField(
        max_length=200, required=False, allow_blank=True, help_text="an audience that exists there"
    )
    remote_audience_name = StrictCharField(
        max_length=200, required=False, allow_blank=True, help_text="or: one Masivo creates now"
    )


class AudienceSyncUpdateIn(RefusesUnknownFields):
    mode = serializers.ChoiceField(AudienceSync.Mode.choices, required=False)
    interval_minutes = serializers.IntegerField(required=False)
    identifiers = serializers.ListField(child=StrictCharField(), required=False, allow_empty=True)


class AudienceSyncRunOut(serializers.ModelSerializer):
    skipped = serializers.DictField(
        child=serializers.IntegerField(), help_text="members not sent, by reason"
    )
    error_samples = serializers.ListField(
        child=serializers.DictField(), help_text="up to 20 {customer_id, op, error}"
    )
    percent = serializers.IntegerField()
    duration_ms = serializers.IntegerField(allow_null=True)

    class Meta:
        model = SyncRun
        fields = [
            "id", "sync_id", "status", "phase", "mode", "reason", "to_add", "to_remove", "added",
            "removed", "failed", "skipped", "percent", "duration_ms", "attempts", "error",
            "error_samples", "created_at", "started_at", "finished_at",
        ]  # fmt: skip


class AudienceSyncOut(serializers.ModelSerializer):
    audience_id = serializers.IntegerField()
    audience_name = serializers.CharField(source="audience.name")
    destination_id = serializers.IntegerField()
    destination_name = serializers.CharField(source="destination.name")
    identifiers = serializers.ListField(child=serializers.CharField())
    last_run = serializers.SerializerMethodField()
    lag_seconds = serializers.SerializerMethodField(
        help_text="now - the end of the last successful run (null: never synced)"
    )

    class Meta:
        model = AudienceSync
        fields = [
            "id", "audience_id", "audience_name", "destination_id", "destination_name", "mode",
            "trigger", "interval_minutes", "identifiers", "remote_audience_id",
            "remote_audience_name", "status", "next_run_at", "last_run_at", "remote_size",
            "last_run", "lag_seconds", "created_by", "created_at", "updated_at",
        ]  # fmt: skip

    @extend_schema_field(AudienceSyncRunOut(allow_null=True))
    def get_last_run(self, sync) -> dict | None:
        run = self.context.get("last_runs", {}).get(sync.id)
        return AudienceSyncRunOut(run).data if run is not None else None

    def get_lag_seconds(self, sync) -> int | None:
        return self.context.get("lags", {}).get(sync.id)


class AudienceSyncRecordOut(serializers.ModelSerializer):
    class Meta:
        model = SyncRecord
        fields = ["customer_id", "error", "attempts", "failed_run_id", "updated_at"]
