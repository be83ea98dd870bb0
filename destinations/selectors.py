"""Reads of destinations and audience syncs for the API and the dashboard.

Every query runs in the workspace in context (the scoped manager). Per-destination and per-sync
figures (sync counts, the last run, forwarding lag) are computed for a whole page of rows in one
query each, never one query a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min, Q, QuerySet
from rest_framework import serializers
from rest_framework.fields import empty

from destinations.connectors import CONNECTORS
from destinations.models import AudienceSync, Destination, ForwardBatch, SyncRecord, SyncRun


def destinations_list() -> QuerySet[Destination]:
    """Newest first, each with `sync_count`."""
    return Destination.objects.annotate(sync_count=Count("syncs")).order_by("-id")


def syncs_list(
    *, audience_id: int | None = None, destination_id: int | None = None
) -> QuerySet[AudienceSync]:
    syncs = AudienceSync.objects.select_related("audience", "destination").order_by("-id")
    if audience_id is not None:
        syncs = syncs.filter(audience_id=audience_id)
    if destination_id is not None:
        syncs = syncs.filter(destination_id=destination_id)
    return syncs


def sync_runs(sync: AudienceSync) -> QuerySet[SyncRun]:
    """A sync's runs, newest first."""
    return SyncRun.objects.filter(sync=sync).order_by("-id")


def last_runs(sync_ids) -> dict[int, SyncRun]:
    """The newest run of each sync (one query: DISTINCT ON)."""
    runs = (
        SyncRun.objects.filter(sync_id__in=list(sync_ids))
        .order_by("sync_id", "-id")
        .distinct("sync_id")
    )
    return {run.sync_id: run for run in runs}


def last_successes(sync_ids) -> dict[int, datetime]:
    """When each sync's newest successful run finished (syncs never synced are absent)."""
    rows = (
        SyncRun.objects.filter(sync_id__in=list(sync_ids), status=SyncRun.Status.SUCCEEDED)
        .exclude(finished_at=None)
        .order_by("sync_id", "-finished_at")
        .distinct("sync_id")
        .values_list("sync_id", "finished_at")
    )
    return dict(rows)


def sync_lag_seconds(finished_at: datetime | None, now: datetime) -> int | None:
    """How far behind a sync is: now - its last successful run's end (None: never synced)."""
    if finished_at is None:
        return None
    return max(0, int((now - finished_at).total_seconds()))


def failed_records(sync: AudienceSync) -> QuerySet[SyncRecord]:
    """Records whose last batch was refused (retried by the next run), newest first."""
    return SyncRecord.objects.filter(sync=sync, failed_run_id__isnull=False).order_by("-id")


@dataclass(frozen=True)
class ForwardingLag:
    """How far forwarding to one destination is behind: its oldest unsent batch and the
    counts of batches waiting (pending) and given up on (dead)."""

    oldest_pending_at: datetime | None
    pending_batches: int
    dead_batches: int

    def age_seconds(self, now: datetime) -> int | None:
        if self.oldest_pending_at is None:
            return None
        return max(0, int((now - self.oldest_pending_at).total_seconds()))


NO_LAG = ForwardingLag(None, 0, 0)


def forwarding_lags(destination_ids) -> dict[int, ForwardingLag]:
    """Per destination (one grouped query); destinations with no batch are absent."""
    pending = Q(status=ForwardBatch.Status.PENDING)
    rows = (
        ForwardBatch.objects.filter(destination_id__in=list(destination_ids))
        .exclude(status=ForwardBatch.Status.SENT)
        .values("destination_id")
        .annotate(
            oldest=Min("created_at", filter=pending),
            pending=Count("id", filter=pending),
            dead=Count("id", filter=Q(status=ForwardBatch.Status.DEAD)),
        )
    )
    return {
        row["destination_id"]: ForwardingLag(row["oldest"], row["pending"], row["dead"])
        for row in rows
    }


def forwarding_lag(destination: Destination) -> ForwardingLag:
    return forwarding_lags([destination.id]).get(destination.id, NO_LAG)


# The catalogue of kinds -------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One field of a connector's config or credentials, as forms and the API describe it."""

    name: str
    label: str
    type: str  # string, text, url, email, integer, number, boolean, choice, list, object
    is_required: bool
    is_secret: bool
    help: str
    choices: tuple[tuple[str, str], ...] = ()
    default: object = None


# Most specific first: URLField and EmailField are CharFields, and so on.
_FIELD_TYPES = (
    (serializers.BooleanField, "boolean"),
    (serializers.URLField, "url"),
    (serializers.EmailField, "email"),
    (serializers.ChoiceField, "choice"),
    (serializers.IntegerField, "integer"),
    (serializers.FloatField, "number"),
    (serializers.DecimalField, "number"),
    (serializers.ListField, "list"),
    (serializers.DictField, "object"),
    (serializers.JSONField, "object"),
    (serializers.CharField, "string"),
)


def _field_type(field) -> str:
    for field_class, name in _FIELD_TYPES:
        if isinstance(field, field_class):
            if name == "string" and field.style.get("base_template") == "textarea.html":
                return "text"
            return name
    return "string"


def field_specs(serializer_class, *, is_secret: bool) -> list[FieldSpec]:
    specs = []
    for name, field in serializer_class().fields.items():
        if field.read_only:
            continue
        default = None if field.default is empty else field.default
        specs.append(
            FieldSpec(
                name=name,
                label=str(field.label or name.replace("_", " ").capitalize()),
                type=_field_type(field),
                is_required=bool(field.required),
                is_secret=is_secret,
                help=str(field.help_text or ""),
                choices=tuple((str(k), str(v)) for k, v in getattr(field, "choices", {}).items()),
                default=default if not callable(default) else None,
            )
        )
    return specs


@dataclass(frozen=True)
class Kind:
    """A kind of destination in the catalogue."""

    kind: str
    label: str
    summary: str
    capabilities: tuple[str, ...]
    identifiers: tuple[str, ...]
    default_identifiers: tuple[str, ...]
    consent_purpose: str | None
    config_fields: list[FieldSpec]
    credentials_fields: list[FieldSpec]

    def has(self, capability: str) -> bool:
        return capability in self.capabilities


def kind_describe(connector) -> Kind:
    offered = tuple(connector.identifier_choices())
    return Kind(
        kind=str(connector.kind),
        label=connector.label,
        summary=connector.summary,
        capabilities=tuple(sorted(connector.capabilities)),
        identifiers=tuple(str(name) for name in offered),
        default_identifiers=tuple(n for n in connector.default_identifiers if n in offered),
        consent_purpose=connector.consent_purpose,
        config_fields=field_specs(connector.config_serializer, is_secret=False),
        credentials_fields=field_specs(connector.credentials_serializer, is_secret=True),
    )


def kinds_catalogue() -> list[Kind]:
    """Every kind one may connect, in the registry's order."""
    return [kind_describe(connector) for connector in CONNECTORS.values()]
