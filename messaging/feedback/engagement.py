"""The shared part of every delivery and engagement report (a provider's webhook, the open
pixel and click redirect, the in-app endpoints): move the message's status forward, keep its
history, and record the engagement as an event on the customer.

`record_engagement` is the one entry point. Status only moves forward:

    queued, deferred < sending, unknown < sent < delivered < opened = read < clicked

`bounced` and `failed` end a message that nothing showed reached the customer (it may follow
`sent` or `delivered`: an asynchronous bounce), never one already opened, read or clicked;
`bounced`, `failed`, `suppressed` and `canceled` are never left.

The customer event goes through profiles' own ingestion (`profiles.ingestion.ingest_batch`, the
path of the native events API), so metrics and real-time audiences follow it like any other
event. Its idempotency key is derived from the message (clicks: and the URL), so each kind of
engagement is one event per message, however often the provider reports it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from masivo.tenancy.models import Workspace
from messaging.models import Message, MessageStatus, MessageStatusChange
from profiles.ingestion import TrackedMessage, ingest_batch

S = MessageStatus
RANK = {
    S.QUEUED: 0,
    S.DEFERRED: 0,
    S.SENDING: 1,
    S.UNKNOWN: 1,
    S.SENT: 2,
    S.DELIVERED: 3,
    S.OPENED: 4,
    S.READ: 4,
    S.CLICKED: 5,
}
FAILURES = (S.BOUNCED, S.FAILED)
# Never left once reached.
ENDED = (S.BOUNCED, S.FAILED, S.SUPPRESSED, S.CANCELED)
# What a failure may still replace: nothing showed the message reached the customer.
FAILURE_REPLACES = (S.QUEUED, S.DEFERRED, S.SENDING, S.UNKNOWN, S.SENT, S.DELIVERED)

EVENT_OF_STATUS = {
    S.DELIVERED: "Message Delivered",
    S.OPENED: "Message Opened",
    S.CLICKED: "Message Clicked",
    S.READ: "Message Read",
    S.BOUNCED: "Message Bounced",
    S.FAILED: "Message Failed",
}
UNSUBSCRIBED = "Message Unsubscribed"
SPAM_REPORTED = "Message Spam Reported"
EVENT_SOURCE = "messaging"


def status_moves(current: str, reported: str) -> bool:
    """Whether a message at `current` moves to `reported` (forward only)."""
    if current in ENDED or current == reported:
        return False
    if reported in FAILURES:
        return current in FAILURE_REPLACES
    if reported not in RANK or current not in RANK:
        return False
    return RANK[reported] > RANK[current]


@dataclass
class Recorded:
    """What one report did: a duplicate (the provider's event id was seen) did nothing."""

    is_duplicate: bool = False
    moved: bool = False
    status: str = ""


@dataclass
class EngagementBatch:
    """Customer events collected over many reports (a webhook's batch of events), ingested in
    one call by `flush` inside the caller's transaction."""

    workspace: Workspace
    now: datetime
    messages: list[TrackedMessage] = field(default_factory=list)

    def add(self, tracked: TrackedMessage) -> None:
        tracked.index = len(self.messages)
        self.messages.append(tracked)

    def flush(self) -> int:
        if not self.messages:
            return 0
        result = ingest_batch(
            workspace=self.workspace, messages=self.messages, source=EVENT_SOURCE, now=self.now
        )
        self.messages = []
        return result.accepted


def event_properties(message: Message, extra: dict | None = None) -> dict:
    """The properties every engagement event carries: the message, its channel, template and
    version, and where the send came from (campaign, journey)."""
    origin = message.origin if isinstance(message.origin, dict) else {}
    properties = {
        "message_id": message.id,
        "channel": message.channel,
        "kind": message.kind,
        "template_id": message.template_id,
        "template_version": _version_number(message),
        "source": origin.get("source", ""),
    }
    for name in ("campaign", "journey", "enrollment", "step"):
        if origin.get(name) is not None:
            properties[f"{name}_id" if name != "step" else "step"] = origin[name]
    return properties | (extra or {})


def _version_number(message: Message) -> int | None:
    if message.template_version_id is None:
        return None
    version = message.template_version  # one query per event; fine at webhook batch sizes
    return version.number if version is not None else None


def _event_key(message: Message, event: str, properties: dict) -> str:
    slug = event.lower().replace(" ", "-")
    key = f"msv:{message.id}:{slug}"
    if event == EVENT_OF_STATUS[S.CLICKED] and properties.get("url"):
        key += ":" + hashlib.sha256(str(properties["url"]).encode()).hexdigest()[:24]
    return key


def record_engagement(
    message: Message,
    status: str | None,
    *,
    detail: str,
    provider_event_id: str = "",
    properties: dict | None = None,
    event: str | None = None,
    occurred_at: datetime | None = None,
    now: datetime | None = None,
    batch: EngagementBatch | None = None,
) -> Recorded:
    """Record one report about `message` (call inside its workspace's scope).

    - `status`: the MessageStatus the report says (None for a report without one: a spam
      report, an unsubscribe, an in-app dismissal); the message moves to it only forward.
    - `detail`: what said so, for the history ("SendGrid: 250 OK", "open pixel").
    - `provider_event_id`: the provider's id of this report; a second report with the same id
      does nothing (`Recorded.is_duplicate`). With one, a history row is kept even when the
      status does not move; without one, only when it moves.
    - `properties`: extra properties of the customer event (a click's `url`, a bounce's type).
    - `event`: the customer event's name; by default the status's (`Message Opened`...),
      none for statuses without one (sent); "" records none.
    - `batch`: collect the customer event there instead of ingesting it at once.
    """
    now = now or timezone.now()
    occurred_at = occurred_at or now
    with transaction.atomic():
        if provider_event_id:
            try:
                with transaction.atomic():
                    MessageStatusChange.objects.create(
                        workspace_id=message.workspace_id,
                        message_id=message.id,
                        status=status or message.status,
                        detail=detail[:500],
                        provider_event_id=provider_event_id[:128],
                        at=occurred_at,
                    )
            except IntegrityError:
                return Recorded(is_duplicate=True, status=message.status)
        locked = Message.objects.select_for_update().get(id=message.id)
        moved = status is not None and status_moves(locked.status, status)
        if moved:
            updates = {"status": status, "updated_at": now}
            if status in FAILURES:
                failure = (properties or {}).get("error_code")
                updates["error"] = detail[:500]
                if failure:
                    updates["error_code"] = str(failure)[:64]
            Message.objects.filter(id=locked.id).update(**updates)
            for name, value in updates.items():
                setattr(message, name, value)
            if not provider_event_id:
                MessageStatusChange.objects.create(
                    workspace_id=message.workspace_id,
                    message_id=message.id,
                    status=status,
                    detail=detail[:500],
                    at=occurred_at,
                )
        name = EVENT_OF_STATUS.get(status) if event is None else event
        if name:
            props = event_properties(message, properties)
            tracked = TrackedMessage(
                index=0,
                type="track",
                name=name,
                message_id=_event_key(message, name, props),
                occurred_at=occurred_at,
                customer_id=message.customer_id,
                properties=props,
            )
            if batch is not None:
                batch.add(tracked)
            else:
                ingest_batch(
                    workspace=Workspace.objects.get(id=message.workspace_id),
                    messages=[tracked],
                    source=EVENT_SOURCE,
                    now=now,
                )
    return Recorded(moved=moved, status=message.status if moved else locked.status)
