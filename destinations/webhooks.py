"""Webhook endpoints and their deliveries: the one owner of `WebhookDelivery` rows (the
connector only inserts them) and of an endpoint's secret.

Sending, at least once and never inside a transaction:
1. claim due deliveries (`FOR UPDATE SKIP LOCKED`, committed: they are `attempting`, with
   `claimed_at` as the claim's token), at most PER_ENDPOINT of one endpoint per batch so a
   backlog at one endpoint cannot fill a batch;
2. send each endpoint's share in its own thread (HTTP only: no database there), in order, and
   stop an endpoint's share at its first failure: the rest go back untouched, due a little
   later, so an endpoint that times out costs one timeout a batch and delays no other;
3. record each attempt where the claim still holds (a claim older than STALL was taken back).

An attempt: 2xx succeeded; 410 disables the endpoint (its deliveries wait until it is enabled
again); anything else (3xx, 4xx, 5xx, a timeout, a refused address) is retried on SCHEDULE
with jitter, never before the Retry-After of a 429, 502, 503 or 504; after the last attempt
it is dead.
"""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from django.db import connection, transaction
from django.utils import timezone

from destinations import services
from destinations.connectors.base import RetryLater
from destinations.connectors.webhook import (
    ROTATION_GRACE,
    SEND_ENDPOINT_TASK,
    TEST_TOPIC,
    TIMEOUT_SECONDS,
    TOPICS,
    WebhookConnector,
    payload_body,
    payload_for,
    secret_hint,
    secret_new,
    signed_headers,
    signing_secrets,
    webhook_id_for,
)
from destinations.models import Destination, DestinationKind, WebhookDelivery
from destinations.ratelimit import request_slot
from masivo.outbound import UnsafeURL, outbound_session, url_check
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import all_workspaces, workspace_scope
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed, ServiceError
from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Permission
from masivo.tenancy.wakeups import task_wake_on_commit

CLAIM_REASON = "destinations: the webhook sender claims due deliveries of every workspace"
# Seconds before attempt n+1 after attempt n failed (attempt 1 is immediate): Standard
# Webhooks' schedule (INTEGRATIONS.md). After the last, the delivery is dead.
SCHEDULE = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600)
MAX_ATTEMPTS = len(SCHEDULE)
JITTER = 0.1  # up to 10 % later than scheduled, never earlier
MAX_RETRY_AFTER = timedelta(hours=24)
STALL = timedelta(seconds=TIMEOUT_SECONDS * 4 + 60)
BATCH = 50
PER_ENDPOINT = 10
THREADS = 8
PAUSE_AFTER_FAILURE = timedelta(seconds=5)  # the unsent rest of an endpoint's share
RESPONSE_KEPT = 1024
THROTTLED = (429, 502, 503, 504)  # answers whose Retry-After is honoured
HISTORY_KEPT = 50

_random = random.SystemRandom()


# Endpoints --------------------------------------------------------------------------------------


def _require(actor: Actor, permission: Permission, what: str) -> None:
    if not actor.can(permission):
        raise NotAllowed(f"your role may not {what}")


def forward_types_for(topics: list[str]) -> list[str]:
    """The forwarded feeds an endpoint's topics need (destinations.services.FORWARD_TYPES)."""
    types = set()
    for topic in topics:
        group = topic.split(".")[0]
        types.add({"audience": "memberships", "customer": "profiles"}.get(group, "events"))
    return sorted(types)


def _clean_url(url) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("a URL is required", field="url")
    try:
        url_check(url.strip())
    except UnsafeURL as unsafe:
        raise InvalidInput(str(unsafe), field="url") from None
    return url.strip()


def _unprefixed(error: ServiceError) -> ServiceError:
    """The destination services name `config.url`; an endpoint's fields are top-level."""
    if error.field and error.field.startswith("config."):
        error.field = error.field.removeprefix("config.")
    return error


@dataclass(frozen=True)
class CreatedEndpoint:
    destination: Destination
    secret: str  # shown once


def webhook_endpoint_create(
    *,
    workspace: Workspace,
    actor: Actor,
    name: str,
    url: str,
    topics: list[str],
    event_names: list[str] | None = None,
    description: str = "",
) -> CreatedEndpoint:
    """A new endpoint with a new secret, forwarding on for the feeds its topics need."""
    _require(actor, Permission.MANAGE_DESTINATIONS, "connect webhook endpoints")
    config = {"url": _clean_url(url), "topics": topics, "event_names": event_names or [],
              "description": description}  # fmt: skip
    secret = secret_new()
    try:
        with transaction.atomic():
            destination = services.destination_create(
                workspace=workspace, kind=DestinationKind.WEBHOOK, name=name, config=config,
                credentials={"secrets": [secret]}, actor=actor,
            )  # fmt: skip
            _forwarding_follow_topics(destination, actor)
    except ServiceError as error:
        raise _unprefixed(error) from None
    return CreatedEndpoint(destination, secret)


def _forwarding_follow_topics(destination: Destination, actor: Actor) -> None:
    types = forward_types_for(destination.config["topics"])
    services.forwarding_update(destination=destination, actor=actor, enabled=True, types=types)


def webhook_endpoint_update(*, destination: Destination, actor: Actor, **changes) -> Destination:
    """Change any of name, url, topics, event_names, description (those given)."""
    _require(actor, Permission.MANAGE_DESTINATIONS, "change webhook endpoints")
    name = changes.pop("name", None)
    if "url" in changes:
        changes["url"] = _clean_url(changes["url"])
    try:
        with transaction.atomic():
            destination = services.destination_update(
                destination=destination, actor=actor, name=name, config=changes or None
            )
            if "topics" in changes:
                _forwarding_follow_topics(destination, actor)
    except ServiceError as error:
        raise _unprefixed(error) from None
    return destination


def webhook_endpoint_delete(*, destination: Destination, actor: Actor) -> None:
    services.destination_delete(destination=destination, actor=actor)


def webhook_endpoint_set_active(*, destination: Destination, actor: Actor, active: bool) -> None:
    """Disable, or enable again (after a 410): its waiting deliveries go out soon after."""
    services.destination_set_status(destination=destination, active=active, actor=actor,
                                    reason="disabled by hand" if not active else "")  # fmt: skip
    if active:
        task_wake_on_commit(SEND_ENDPOINT_TASK, workspace_id=destination.workspace_id,
                            destination_id=destination.id)  # fmt: skip


def webhook_secret_rotate(
    *, destination: Destination, actor: Actor, now: datetime | None = None
) -> str:
    """A new secret, returned once. The previous one keeps signing next to it (two
    signatures) for ROTATION_GRACE, then it is dropped; older ones are dropped now."""
    _require(actor, Permission.MANAGE_DESTINATIONS, "rotate webhook secrets")
    now = now or timezone.now()
    secret = secret_new()
    with transaction.atomic():
        locked = Destination.objects.select_for_update().get(id=destination.id)
        current = ((locked.credentials or {}).get("secrets") or [])[:1]
        retired_at = (now + ROTATION_GRACE).isoformat() if current else None
        credentials = {"secrets": [secret, *current], "retired_at": retired_at}
        _store_credentials(locked, credentials, now)
    destination.credentials = locked.credentials
    destination.credential_hints = locked.credential_hints
    return secret


def _store_credentials(destination: Destination, credentials: dict, now: datetime) -> None:
    destination.credentials = credentials
    destination.credential_hints = WebhookConnector.credential_hints(credentials)
    destination.updated_at = now
    destination.save(update_fields=["credentials", "credential_hints", "updated_at"])


def previous_secret_expires_at(destination: Destination) -> datetime | None:
    credentials = destination.credentials or {}
    if len(credentials.get("secrets") or []) > 1 and credentials.get("retired_at"):
        return datetime.fromisoformat(credentials["retired_at"])
    return None


def endpoint_secret_hint(destination: Destination) -> str:
    stored = (destination.credentials or {}).get("secrets") or []
    return secret_hint(stored[0]) if stored else ""


def webhook_endpoints_list():
    return Destination.objects.filter(kind=DestinationKind.WEBHOOK).order_by("-id")


def webhook_deliveries_list(*, destination: Destination, status: str = "", topic: str = ""):
    deliveries = WebhookDelivery.objects.filter(destination=destination)
    if status:
        deliveries = deliveries.filter(status=status)
    if topic:
        deliveries = deliveries.filter(topic=topic)
    return deliveries.order_by("-id")


def delivery_replay(*, delivery: WebhookDelivery, actor: Actor) -> WebhookDelivery:
    """Send it again, from attempt 1 of a new schedule, with the same webhook-id (a receiver
    that applied it already knows it). Its attempt history is kept."""
    _require(actor, Permission.EDIT_MARKETING, "replay webhook deliveries")
    if not delivery.destination.is_active:
        raise Conflict("the endpoint is disabled; enable it first", field="status")
    now = timezone.now()
    moved = WebhookDelivery.objects.filter(id=delivery.id).exclude(
        status=WebhookDelivery.Status.ATTEMPTING
    ).update(status=WebhookDelivery.Status.PENDING, attempts=0, next_attempt_at=now,
             claimed_at=None)  # fmt: skip
    if not moved:
        raise Conflict("it is being sent right now; try again in a moment", field="status")
    task_wake_on_commit(SEND_ENDPOINT_TASK, workspace_id=delivery.workspace_id,
                        destination_id=delivery.destination_id)  # fmt: skip
    delivery.refresh_from_db()
    return delivery


def webhook_test_send(*, destination: Destination, actor: Actor) -> WebhookDelivery:
    """Record a `webhook.test` delivery and send it now (outside any transaction); returns
    it with the outcome of that attempt. Failed, it is retried like any delivery. Call it
    outside a transaction: the request waits for the endpoint (at most the timeout)."""
    _require(actor, Permission.MANAGE_DESTINATIONS, "test webhook endpoints")
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        workspace_id=destination.workspace_id,
        destination=destination,
        webhook_id=f"msg_test_{random.getrandbits(64):016x}",
        topic=TEST_TOPIC,
        payload=payload_for(TEST_TOPIC, now, {"destination_id": destination.id, "test": True}),
    )
    deliveries_send_due(destination_id=destination.id, delivery_ids=[delivery.id],
                        include_disabled=True)  # fmt: skip
    delivery.refresh_from_db()
    return delivery


JOURNEY_TOPIC = "journey.webhook"


def webhook_enqueue(
    *, destination: Destination, dedupe_key: str, topic: str, data: dict, now: datetime
) -> WebhookDelivery:
    """A delivery another app asks for (a journey's webhook step), recorded in the caller's
    transaction, once per `dedupe_key` (its webhook-id is derived from it, so a retry of the
    caller is the same delivery), and sent by the sender like every other: signed, retried on
    the schedule, through the outbound guard."""
    webhook_id = webhook_id_for(dedupe_key)
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(workspace_id=destination.workspace_id, destination_id=destination.id,
                         webhook_id=webhook_id, topic=topic,
                         payload=payload_for(topic, now, data))],
        ignore_conflicts=True,
    )  # fmt: skip
    task_wake_on_commit(SEND_ENDPOINT_TASK, workspace_id=destination.workspace_id,
                        destination_id=destination.id)  # fmt: skip
    return WebhookDelivery.objects.get(destination=destination, webhook_id=webhook_id)


# Sending ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    workspace_id: int
    destination_id: int
    webhook_id: str
    payload: dict
    attempts: int  # before this one
    claimed_at: datetime


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    duration_ms: int
    error: str = ""
    response: str = ""
    retry_after: datetime | None = None

    @property
    def is_success(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class SendReport:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    dead: int = 0
    released: int = 0
    disabled: list[int] = field(default_factory=list)

    def add(self, other: SendReport) -> None:
        for name in ("claimed", "succeeded", "failed", "dead", "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.disabled.extend(other.disabled)


_CLAIM_SQL = """
WITH due AS (
    SELECT picked.id, picked.next_attempt_at
      FROM destinations_destination e
     CROSS JOIN LATERAL (
           SELECT d.id, d.next_attempt_at FROM destinations_webhookdelivery d
            WHERE d.workspace_id = e.workspace_id AND d.destination_id = e.id
              AND ((d.status IN ('pending', 'failed') AND d.next_attempt_at <= %(now)s)
                   OR (d.status = 'attempting' AND d.claimed_at < %(stalled)s))
                  {delivery_filter}
            ORDER BY d.next_attempt_at, d.id
            LIMIT %(per_endpoint)s
              FOR UPDATE OF d SKIP LOCKED
           ) picked
     WHERE e.kind = 'webhook' AND (e.status = 'active' OR %(include_disabled)s)
           {destination_filter}
     ORDER BY picked.next_attempt_at
     LIMIT %(limit)s
)
UPDATE destinations_webhookdelivery d
   SET status = 'attempting', claimed_at = %(now)s
  FROM due
 WHERE d.id = due.id
RETURNING d.id, d.workspace_id, d.destination_id, d.webhook_id, d.payload, d.attempts
"""


def deliveries_claim(
    *,
    now: datetime,
    limit: int = BATCH,
    destination_id: int | None = None,
    delivery_ids: list[int] | None = None,
    include_disabled: bool = False,
) -> list[Claimed]:
    """Claim due deliveries (and those whose claim stalled), committed before this returns.
    Cross-tenant: the beat sweep serves every workspace."""
    params = {"now": now, "stalled": now - STALL, "limit": limit, "per_endpoint": PER_ENDPOINT,
              "include_disabled": include_disabled}  # fmt: skip
    destination_filter = delivery_filter = ""
    if destination_id is not None:
        destination_filter = "AND e.id = %(destination)s"
        params["destination"] = destination_id
    if delivery_ids is not None:
        delivery_filter = "AND d.id = ANY(%(ids)s)"
        params["ids"] = list(delivery_ids)
    sql = _CLAIM_SQL.format(destination_filter=destination_filter, delivery_filter=delivery_filter)
    with all_workspaces(reason=CLAIM_REASON), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return sorted(
        (Claimed(row[0], row[1], row[2], row[3], _json(row[4]), row[5], now) for row in rows),
        key=lambda claimed: claimed.id,
    )


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def deliveries_send_due(
    *,
    now: datetime | None = None,
    destination_id: int | None = None,
    delivery_ids: list[int] | None = None,
    include_disabled: bool = False,
) -> SendReport:
    """One batch: claim, send per endpoint (threads), record."""
    now = now or timezone.now()
    claims = deliveries_claim(now=now, destination_id=destination_id, delivery_ids=delivery_ids,
                              include_disabled=include_disabled)  # fmt: skip
    report = SendReport(claimed=len(claims))
    if not claims:
        return report
    groups: dict[int, list[Claimed]] = {}
    for claimed in claims:
        groups.setdefault(claimed.destination_id, []).append(claimed)
    targets = _targets(groups, now)
    with ThreadPoolExecutor(max_workers=min(THREADS, len(groups))) as pool:
        sent = dict(zip(groups, pool.map(_send_group, [
            (targets.get(destination_id), group) for destination_id, group in groups.items()
        ]), strict=True))  # fmt: skip
    for destination_id, group in groups.items():
        with workspace_scope(group[0].workspace_id):
            report.add(_record_group(group, sent[destination_id], targets.get(destination_id)))
    return report


def deliveries_send_until_idle(
    *, max_seconds: float = 20, destination_id: int | None = None
) -> SendReport:
    """Batches until nothing is due or `max_seconds` have passed (the beat's next tick goes
    on). Concurrent runs share the work."""
    report = SendReport()
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        batch = deliveries_send_due(destination_id=destination_id)
        report.add(batch)
        if batch.claimed == 0:
            break
    return report


@dataclass(frozen=True)
class _Target:
    destination: Destination
    url: str
    secrets: list[str]


def _targets(groups: dict[int, list[Claimed]], now: datetime) -> dict[int, _Target]:
    """Each endpoint's URL and signing secrets, read in its workspace; a secret past its
    rotation grace is dropped here, the first time it would have signed."""
    targets = {}
    for destination_id, group in groups.items():
        with workspace_scope(group[0].workspace_id):
            destination = Destination.objects.filter(id=destination_id).first()
            if destination is None:
                continue
            secrets = signing_secrets(destination.credentials, now)
            if len((destination.credentials or {}).get("secrets") or []) > len(secrets):
                secrets = _retired_secrets_drop(destination, now)
            targets[destination_id] = _Target(destination, destination.config.get("url", ""),
                                              secrets)  # fmt: skip
    return targets


def _retired_secrets_drop(destination: Destination, now: datetime) -> list[str]:
    """Store only the secrets that still sign; locked and read again, so a rotation made
    meanwhile is not overwritten."""
    with transaction.atomic():
        locked = Destination.objects.select_for_update().get(id=destination.id)
        secrets = signing_secrets(locked.credentials, now)
        if len((locked.credentials or {}).get("secrets") or []) > len(secrets):
            _store_credentials(locked, {"secrets": secrets, "retired_at": None}, now)
    return secrets


def _send_group(work: tuple[_Target | None, list[Claimed]]) -> list[Attempt]:
    """HTTP only (a thread of its own, no database; Redis meters the endpoint's rate limit):
    the endpoint's share in order, up to its first failure."""
    target, group = work
    if target is None:
        return []
    attempts = []
    session = outbound_session(timeout=TIMEOUT_SECONDS)
    try:
        for claimed in group:
            try:
                request_slot(target.destination, WebhookConnector)
            except RetryLater:
                break  # over the endpoint's rate limit: the rest go back, due a little later
            attempt = _attempt(session, target, claimed)
            attempts.append(attempt)
            if not attempt.is_success:
                break
    finally:
        session.close()
    return attempts


def _attempt(session: requests.Session, target: _Target, claimed: Claimed) -> Attempt:
    body = payload_body(claimed.payload)
    headers = signed_headers(webhook_id=claimed.webhook_id, body=body, secrets=target.secrets,
                             now=timezone.now())  # fmt: skip
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        response = session.post(target.url, data=body.encode(), headers=headers)
    except UnsafeURL as unsafe:
        return Attempt(None, took(), f"refused by the outbound guard: {unsafe}")
    except requests.Timeout:
        return Attempt(None, took(), f"timed out after {TIMEOUT_SECONDS} s")
    except requests.RequestException as error:
        return Attempt(None, took(), f"could not reach the endpoint: {type(error).__name__}")
    code = response.status_code
    text = response.content[:RESPONSE_KEPT].decode("utf-8", "replace")
    error = ""
    if 300 <= code < 400:
        error = f"redirects are not followed ({code} to {response.headers.get('Location', '?')})"
    elif code == 410:
        error = "410 Gone: the endpoint is disabled"
    elif code >= 400:
        error = f"the endpoint answered {code}"
    retry_after = _retry_after(response) if code in THROTTLED else None
    return Attempt(code, took(), error, text, retry_after)


def _retry_after(response: requests.Response) -> datetime | None:
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    now = timezone.now()
    if value.isdigit():
        at = now + timedelta(seconds=int(value))
    else:
        try:
            at = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if at.tzinfo is None:
            return None
    return min(at, now + MAX_RETRY_AFTER)


def retry_at(*, attempts: int, now: datetime, retry_after: datetime | None = None):
    """When attempt `attempts + 1` is due after attempt `attempts` failed, or None: dead."""
    if attempts >= MAX_ATTEMPTS:
        return None
    delay = SCHEDULE[attempts] * (1 + JITTER * _random.random())
    at = now + timedelta(seconds=delay)
    return max(at, retry_after) if retry_after else at


_RECORD_SQL = """
UPDATE destinations_webhookdelivery
   SET status = %(status)s, attempts = attempts + 1, next_attempt_at = %(next)s,
       claimed_at = NULL, last_status_code = %(code)s, last_error = %(error)s,
       last_response = %(response)s, delivered_at = %(delivered)s,
       history = (CASE WHEN jsonb_array_length(history) >= %(kept)s
                       THEN history - 0 ELSE history END) || %(entry)s::jsonb
 WHERE id = %(id)s AND status = 'attempting' AND claimed_at = %(claimed_at)s
"""

_RELEASE_SQL = """
UPDATE destinations_webhookdelivery
   SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'failed' END, claimed_at = NULL,
       next_attempt_at = GREATEST(next_attempt_at, %(later)s)
 WHERE id = ANY(%(ids)s) AND status = 'attempting' AND claimed_at = %(claimed_at)s
"""


def _record_group(
    group: list[Claimed], attempts: list[Attempt], target: _Target | None
) -> SendReport:
    report = SendReport()
    now = timezone.now()
    with connection.cursor() as cursor:
        for claimed, attempt in zip(group, attempts, strict=False):
            done = claimed.attempts + 1
            if attempt.is_success:
                status, next_at = WebhookDelivery.Status.SUCCEEDED, None
                report.succeeded += 1
            elif attempt.status_code == 410:
                status, next_at = WebhookDelivery.Status.FAILED, now
                report.failed += 1
            else:
                next_at = retry_at(attempts=done, now=now, retry_after=attempt.retry_after)
                status = WebhookDelivery.Status.FAILED if next_at else WebhookDelivery.Status.DEAD
                report.failed += next_at is not None
                report.dead += next_at is None
            entry = {"at": now.isoformat(), "attempt": done, "status_code": attempt.status_code,
                     "duration_ms": attempt.duration_ms, "error": attempt.error}  # fmt: skip
            cursor.execute(_RECORD_SQL, {
                "status": status, "next": next_at, "code": attempt.status_code,
                "error": attempt.error, "response": attempt.response,
                "delivered": now if attempt.is_success else None, "kept": HISTORY_KEPT,
                "entry": json.dumps([entry]), "id": claimed.id, "claimed_at": claimed.claimed_at,
            })  # fmt: skip
        unsent = [claimed.id for claimed in group[len(attempts) :]]
        if unsent:
            cursor.execute(_RELEASE_SQL, {"ids": unsent, "claimed_at": group[0].claimed_at,
                                          "later": now + PAUSE_AFTER_FAILURE})  # fmt: skip
            report.released += cursor.rowcount
    if target and attempts and attempts[-1].status_code == 410:
        services.destination_status_record(
            destination=target.destination, active=False,
            reason=f"the endpoint answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC: it asked to "
            "receive no more webhooks; enable it again to resume",
        )  # fmt: skip
        report.disabled.append(target.destination.id)
    return report


def topics_offered() -> tuple[str, ...]:
    return TOPICS
