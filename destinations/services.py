"""Destinations and audience syncs: connect, configure, test, link audiences, run, pause.

The one owner of `Destination` and `AudienceSync` rows; the API and the dashboard call these.
Connecting destinations is a workspace setting (`Permission.MANAGE_DESTINATIONS`: admins and
owners); linking an audience to a connected destination, running and pausing syncs is
marketing work (`Permission.EDIT_MARKETING`). Runs themselves belong to `destinations.syncing`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import serializers

from audiences.models import Audience
from destinations.connectors import CONNECTORS, connector_class, connector_for
from destinations.connectors.base import AUDIENCES, EVENTS, MEMBERSHIPS, PROFILES, ConnectorError
from destinations.models import AudienceSync, Destination, SyncRun
from masivo.tenancy.actors import Actor
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed
from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Permission
from masivo.tenancy.wakeups import task_wake_on_commit

RUN_TASK = "destinations.sync_run"
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MIN_INTERVAL_MINUTES = 1
MAX_INTERVAL_MINUTES = 60 * 24 * 31
MAX_FORWARD_NAMES = 200


def _require(actor: Actor, permission: Permission, what: str) -> None:
    if not actor.can(permission):
        raise NotAllowed(f"your role may not {what}")


def kind_for(name: str):
    try:
        return connector_class(name)
    except KeyError:
        raise InvalidInput(f"unknown kind; one of {', '.join(CONNECTORS)}", field="kind") from None


def _validated(serializer_class, data, *, field: str, partial: bool = False) -> dict:
    """A connector's strict serializer over `data`; the first error names `field.<name>`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput("must be an object", field=field)
    serializer = serializer_class(data=data, partial=partial)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    name, problems = next(iter(serializer.errors.items()))
    message = problems[0] if isinstance(problems, list) and problems else problems
    if isinstance(message, dict):  # a nested serializer's errors
        inner, inner_problems = next(iter(message.items()))
        name, message = f"{name}.{inner}", inner_problems[0]
    target = field if name == serializers.api_settings.NON_FIELD_ERRORS_KEY else f"{field}.{name}"
    raise InvalidInput(str(message), field=target)


def _free_key(workspace: Workspace, base: str) -> str:
    taken = set(Destination.objects.filter(key__startswith=base).values_list("key", flat=True))
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


def destination_create(
    *,
    workspace: Workspace,
    kind: str,
    name: str,
    config: dict | None,
    credentials: dict | None,
    actor: Actor,
    key: str | None = None,
) -> Destination:
    """Connect a destination. `key` names it in vendor consent (`consent.vendors.<key>`); by
    default the kind (then `<kind>-2`, …)."""
    _require(actor, Permission.MANAGE_DESTINATIONS, "connect destinations")
    connector = kind_for(kind)
    clean_config = _validated(connector.config_serializer, config, field="config")
    clean_credentials = _validated(connector.credentials_serializer, credentials,
                                   field="credentials")  # fmt: skip
    if key is not None and not KEY_PATTERN.match(key):
        raise InvalidInput("1-64 characters of a-z, 0-9, _ and -, starting with a letter or "
                           "digit", field="key")  # fmt: skip
    try:
        with transaction.atomic():
            return Destination.objects.create(
                workspace=workspace,
                kind=connector.kind,
                name=name,
                key=key or _free_key(workspace, connector.kind),
                config=clean_config,
                credentials=clean_credentials,
                credential_hints=connector.credential_hints(clean_credentials),
                created_by=actor.label,
            )
    except IntegrityError:
        raise Conflict("another destination has this key", field="key") from None


def destination_update(
    *,
    destination: Destination,
    actor: Actor,
    name: str | None = None,
    config: dict | None = None,
    credentials: dict | None = None,
    rate_limit_per_second: int | bool | None = False,
) -> Destination:
    """Change the given parts; `config` and `credentials` are merged into what is stored
    (a credential not given is kept). New values need a new test: the last result is cleared."""
    _require(actor, Permission.MANAGE_DESTINATIONS, "change destinations")
    connector = connector_class(destination.kind)
    if name is not None:
        destination.name = name
    if config is not None:
        if not isinstance(config, dict):
            raise InvalidInput("must be an object", field="config")
        merged = destination.config | config
        destination.config = _validated(connector.config_serializer, merged, field="config")
    if credentials is not None:
        if not isinstance(credentials, dict):
            raise InvalidInput("must be an object", field="credentials")
        merged = (destination.credentials or {}) | credentials
        destination.credentials = _validated(connector.credentials_serializer, merged,
                                             field="credentials")  # fmt: skip
        destination.credential_hints = connector.credential_hints(destination.credentials)
    if rate_limit_per_second is not False:
        destination.rate_limit_per_second = rate_limit_per_second
    if config is not None or credentials is not None:
        destination.last_tested_at = None
        destination.last_test_ok = None
        destination.last_test_detail = ""
    destination.updated_at = timezone.now()
    destination.save()
    return destination


def destination_set_status(
    *, destination: Destination, active: bool, actor: Actor, reason: str = ""
) -> Destination:
    """Disable (nothing is sent; syncs and forwarding wait) or enable again."""
    _require(actor, Permission.MANAGE_DESTINATIONS, "enable or disable destinations")
    destination_status_record(destination=destination, active=active, reason=reason)
    return destination


def destination_status_record(*, destination: Destination, active: bool, reason: str) -> None:
    """The system's form (a 410 from a webhook, revoked credentials): no permission check."""
    destination.status = Destination.Status.ACTIVE if active else Destination.Status.DISABLED
    destination.disabled_reason = "" if active else reason[:2000]
    destination.updated_at = timezone.now()
    Destination.objects.filter(id=destination.id).update(
        status=destination.status, disabled_reason=destination.disabled_reason,
        updated_at=destination.updated_at,
    )  # fmt: skip


def destination_delete(*, destination: Destination, actor: Actor) -> None:
    """Disconnect: the destination, its syncs, runs and records are gone (what it holds at
    the platform stays there; remove it there, or run a full sync of an empty audience first)."""
    _require(actor, Permission.MANAGE_DESTINATIONS, "delete destinations")
    destination.delete()


@dataclass(frozen=True)
class TestOutcome:
    is_ok: bool
    detail: str


def destination_test(*, destination: Destination, actor: Actor) -> TestOutcome:
    """Call the platform with the stored credentials (no transaction is held during the call)
    and record what it said."""
    _require(actor, Permission.MANAGE_DESTINATIONS, "test destinations")
    try:
        outcome = TestOutcome(True, connector_for(destination).test_connection() or "connected")
    except ConnectorError as error:
        outcome = TestOutcome(False, str(error) or type(error).__name__)
    except ValueError as error:  # a URL the outbound guard refuses
        outcome = TestOutcome(False, str(error))
    tested_at = timezone.now()
    Destination.objects.filter(id=destination.id).update(
        last_tested_at=tested_at, last_test_ok=outcome.is_ok, last_test_detail=outcome.detail
    )
    destination.last_tested_at = tested_at
    destination.last_test_ok = outcome.is_ok
    destination.last_test_detail = outcome.detail
    return outcome


FORWARD_TYPES = {"events": EVENTS, "profiles": PROFILES, "memberships": MEMBERSHIPS}


def forwarding_update(
    *,
    destination: Destination,
    actor: Actor,
    enabled: bool,
    types: list[str] | None = None,
    event_names: list[str] | None = None,
    traits: list[str] | None = None,
) -> Destination:
    """Near-real-time forwarding settings. `types` is any of events, profiles, memberships
    that the destination takes; `event_names` (empty: every event) and `traits` (empty: no
    traits; profile fields always go) filter what is sent. Turning it on starts from now."""
    _require(actor, Permission.MANAGE_DESTINATIONS, "change forwarding")
    connector = connector_class(destination.kind)
    offered = [name for name, capability in FORWARD_TYPES.items() if connector.has(capability)]
    if enabled and not offered:
        raise InvalidInput(f"{connector.label} does not take forwarded data", field="enabled")
    types = offered if types is None else types
    for index, name in enumerate(types):
        if name not in offered:
            raise InvalidInput(f"one of {', '.join(offered) or 'nothing'}",
                               field=f"types.{index}")  # fmt: skip
    for field, names in (("event_names", event_names or []), ("traits", traits or [])):
        if len(names) > MAX_FORWARD_NAMES:
            raise InvalidInput(f"at most {MAX_FORWARD_NAMES}", field=field)
        for index, value in enumerate(names):
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise InvalidInput("1-200 characters", field=f"{field}.{index}")
    was_enabled = bool(destination.forwarding.get("enabled"))
    destination.forwarding = {
        "enabled": bool(enabled),
        "types": sorted(set(types)),
        "event_names": sorted({name.strip() for name in event_names or []}),
        "traits": sorted({name.strip() for name in traits or []}),
        "since": (destination.forwarding.get("since") if was_enabled and enabled
                  else timezone.now().isoformat() if enabled else None),
    }  # fmt: skip
    destination.updated_at = timezone.now()
    with transaction.atomic():
        destination.save(update_fields=["forwarding", "updated_at"])
        if enabled and not was_enabled:
            from destinations.forwarding import forwarding_start

            forwarding_start(destination)
        elif was_enabled and not enabled:
            from destinations.forwarding import forwarding_stop

            forwarding_stop(destination)
    return destination


# Audience syncs --------------------------------------------------------------------------------


def _clean_identifiers(connector, identifiers) -> list[str]:
    offered = connector.identifier_choices()
    if identifiers is None:
        return [name for name in connector.default_identifiers if name in offered]
    if not isinstance(identifiers, list) or not identifiers:
        raise InvalidInput(f"a non-empty list of {', '.join(offered)}", field="identifiers")
    for index, name in enumerate(identifiers):
        if name not in offered:
            raise InvalidInput(f"{connector.label} takes {', '.join(offered)}",
                               field=f"identifiers.{index}")  # fmt: skip
    return list(dict.fromkeys(identifiers))


def _clean_interval(trigger: str, interval_minutes: int | None) -> int:
    default = 5 if trigger == AudienceSync.Trigger.STREAMING else 60
    value = default if interval_minutes is None else interval_minutes
    if not isinstance(value, int) or not MIN_INTERVAL_MINUTES <= value <= MAX_INTERVAL_MINUTES:
        raise InvalidInput(f"{MIN_INTERVAL_MINUTES}-{MAX_INTERVAL_MINUTES} minutes",
                           field="interval_minutes")  # fmt: skip
    return value


def sync_create(
    *,
    destination: Destination,
    audience: Audience,
    actor: Actor,
    mode: str = AudienceSync.Mode.INCREMENTAL,
    trigger: str = AudienceSync.Trigger.SCHEDULE,
    interval_minutes: int | None = None,
    identifiers: list[str] | None = None,
    remote_audience_id: str = "",
    remote_audience_name: str = "",
    now: datetime | None = None,
) -> AudienceSync:
    """Link an audience to a destination. Give `remote_audience_id` (an audience that exists
    there) or `remote_audience_name` (Masivo creates it now). The first run is queued."""
    _require(actor, Permission.EDIT_MARKETING, "sync audiences")
    connector = connector_class(destination.kind)
    if not connector.has(AUDIENCES):
        raise InvalidInput(f"{connector.label} does not keep audiences", field="destination_id")
    if mode not in AudienceSync.Mode.values:
        raise InvalidInput(f"one of {', '.join(AudienceSync.Mode.values)}", field="mode")
    if trigger not in AudienceSync.Trigger.values:
        raise InvalidInput(f"one of {', '.join(AudienceSync.Trigger.values)}", field="trigger")
    if trigger == AudienceSync.Trigger.STREAMING and mode == AudienceSync.Mode.FULL:
        raise InvalidInput("streaming syncs are incremental", field="mode")
    interval = _clean_interval(trigger, interval_minutes)
    wanted = _clean_identifiers(connector, identifiers)
    if not destination.is_active:
        raise Conflict("the destination is disabled; enable it first", field="destination_id")
    if bool(remote_audience_id) == bool(remote_audience_name):
        raise InvalidInput("give remote_audience_id (existing) or remote_audience_name (to "
                           "create)", field="remote_audience_id")  # fmt: skip
    if remote_audience_name:
        try:
            remote_audience_id = connector_for(destination).audience_create(remote_audience_name)
        except ConnectorError as error:
            raise InvalidInput(f"{connector.label} refused to create it: {error}",
                               field="remote_audience_name") from None  # fmt: skip
    now = now or timezone.now()
    try:
        with transaction.atomic():
            sync = AudienceSync.objects.create(
                workspace_id=destination.workspace_id,
                audience=audience,
                destination=destination,
                mode=mode,
                trigger=trigger,
                interval_minutes=interval,
                identifiers=wanted,
                remote_audience_id=str(remote_audience_id),
                remote_audience_name=remote_audience_name,
                # Recalculation syncs: the first run covers recalculations until now.
                next_run_at=now
                if trigger == AudienceSync.Trigger.RECALCULATION
                else now + timedelta(minutes=interval),
                created_by=actor.label,
            )
            if trigger == AudienceSync.Trigger.STREAMING:
                from destinations.streaming import streaming_start

                streaming_start(sync)
            sync_run_request(sync=sync, reason="created")
    except IntegrityError:
        raise Conflict("this audience already syncs to that remote audience",
                       field="remote_audience_id") from None  # fmt: skip
    return sync


def sync_update(
    *,
    sync: AudienceSync,
    actor: Actor,
    mode: str | None = None,
    interval_minutes: int | None = None,
    identifiers: list[str] | None = None,
) -> AudienceSync:
    _require(actor, Permission.EDIT_MARKETING, "change audience syncs")
    connector = connector_class(sync.destination.kind)
    if mode is not None:
        if mode not in AudienceSync.Mode.values:
            raise InvalidInput(f"one of {', '.join(AudienceSync.Mode.values)}", field="mode")
        if sync.trigger == AudienceSync.Trigger.STREAMING and mode == AudienceSync.Mode.FULL:
            raise InvalidInput("streaming syncs are incremental", field="mode")
        sync.mode = mode
    if interval_minutes is not None:
        sync.interval_minutes = _clean_interval(sync.trigger, interval_minutes)
    if identifiers is not None:
        sync.identifiers = _clean_identifiers(connector, identifiers)
    sync.updated_at = timezone.now()
    sync.save()
    return sync


def sync_set_paused(*, sync: AudienceSync, paused: bool, actor: Actor) -> AudienceSync:
    """Pause: no new runs (a running one finishes its current batch and stops); resume:
    the next run is due now."""
    _require(actor, Permission.EDIT_MARKETING, "pause or resume audience syncs")
    sync.status = AudienceSync.Status.PAUSED if paused else AudienceSync.Status.ACTIVE
    sync.updated_at = timezone.now()
    if not paused:
        sync.next_run_at = timezone.now()
    sync.save(update_fields=["status", "updated_at", "next_run_at"])
    return sync


def sync_delete(*, sync: AudienceSync, actor: Actor) -> None:
    _require(actor, Permission.EDIT_MARKETING, "delete audience syncs")
    if sync.trigger == AudienceSync.Trigger.STREAMING:
        from destinations.streaming import streaming_stop

        streaming_stop(sync)
    sync.delete()


def sync_run_request(*, sync: AudienceSync, reason: str = "manual") -> SyncRun:
    """Queue a run (or return the one already queued or running) and wake a worker after
    commit. A paused sync or a disabled destination is a Conflict."""
    if sync.status != AudienceSync.Status.ACTIVE:
        raise Conflict("the sync is paused; resume it first", field="status")
    if sync.destination.status != Destination.Status.ACTIVE:
        raise Conflict("the destination is disabled", field="destination_id")
    with transaction.atomic():
        AudienceSync.objects.select_for_update().filter(id=sync.id).first()
        run = SyncRun.objects.filter(sync=sync, status__in=["queued", "running"]).first()
        if run is None:
            run = SyncRun.objects.create(
                workspace_id=sync.workspace_id, sync=sync, mode=sync.mode, reason=reason[:20]
            )
        task_wake_on_commit(RUN_TASK, workspace_id=sync.workspace_id, run_id=run.id)
    return run


def sync_run_now(*, sync: AudienceSync, actor: Actor) -> SyncRun:
    _require(actor, Permission.EDIT_MARKETING, "run audience syncs")
    return sync_run_request(sync=sync, reason="manual")


def run_replay(*, run: SyncRun, actor: Actor) -> SyncRun:
    """A dead-lettered (or failed) run, run again: a new run that starts from the record, so
    only what is still not done is sent."""
    _require(actor, Permission.EDIT_MARKETING, "replay audience sync runs")
    if run.status not in (SyncRun.Status.DEAD, SyncRun.Status.FAILED):
        raise Conflict(f"only a dead or failed run can be replayed; this one is {run.status}",
                       field="status")  # fmt: skip
    return sync_run_request(sync=run.sync, reason="replay")
