"""Storing a batch of tracked messages: one transaction, set-based, idempotent by message id.

Two contracts, one per API:
- `tracking_store` (the Segment-compatible `/v1/*` API): the request drops messages that name
  an erased identifier and appends the rest to the event log, unresolved. A 200 means
  "durably stored". Identity resolution, identify traits, aliases and metrics follow in the
  ingestion follow-up (`profiles.followup`), set-based over many batches, usually within a
  second (docs/api.md, "What a 200 promises").
- `ingest_batch` (the native `POST /api/v1/events`): resolves who each event is about inside
  the request (`profiles.resolution`), so the answer can refuse an unknown customer id, then
  appends. Metrics and real-time audiences still follow asynchronously.

Both wake the follow-up after commit; the events' NULL `processed_at` is the outbox that a
periodic sweep re-queues if that wake-up is lost.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from masivo.tenancy.models import Workspace
from masivo.tenancy.redis import get_redis
from masivo.tenancy.wakeups import task_wake
from profiles.eventlog import events_append
from profiles.fields import split_segment_traits
from profiles.resolution import Resolution
from profiles.tracked import BatchResult, Rejection, TrackedMessage

PIPELINE_TASK = "masivo.pipeline.process_events"
PENDING_FOR = 60  # seconds: a wake-up lost with its worker stops deduplicating after this

__all__ = ["BatchResult", "Rejection", "TrackedMessage", "ingest_batch", "tracking_store"]


def _without_repeats(messages: list[TrackedMessage], result: BatchResult) -> list[TrackedMessage]:
    """The first message of each message id in the batch (later ones count as duplicates);
    repeats of earlier batches are skipped by the event log itself."""
    seen, unique = set(), []
    for message in messages:
        if message.message_id in seen:
            result.duplicates += 1
        else:
            seen.add(message.message_id)
            unique.append(message)
    return unique


def _event_row(message: TrackedMessage, customer_id: int | None) -> dict:
    return {
        "type": message.type,
        "name": message.name,
        "properties": message.traits if message.type == "identify" else message.properties,
        "occurred_at": message.occurred_at.isoformat(),
        "message_id": message.message_id,
        "customer_id": customer_id,
        "user_id": message.user_id,
        "anonymous_id": message.anonymous_id,
        "context": message.context,
    }


def _append(
    workspace: Workspace, rows: list[dict], result: BatchResult, source: str, now: datetime
) -> None:
    inserted = events_append(workspace_id=workspace.id, rows=rows, source=source, now=now)
    result.duplicates += len(rows) - inserted
    result.accepted = inserted
    if inserted:
        transaction.on_commit(lambda: queue_follow_up(workspace_id=workspace.id))


def tracking_store(
    *,
    workspace: Workspace,
    messages: list[TrackedMessage],
    source: str,
    now: datetime | None = None,
) -> BatchResult:
    """Store a batch as received (who it is about is resolved by the follow-up); answers only
    once it is committed."""
    now = now or timezone.now()
    result = BatchResult()
    messages = _without_repeats(messages, result)
    for message in messages:
        if message.type == "identify" and message.traits:
            for problem in split_segment_traits(message.traits)[2]:
                result.warnings.append(
                    f"message {message.index}: {problem.field}: {problem.message} "
                    "(kept as a plain trait)"
                )
    with transaction.atomic():
        erasures = Resolution(workspace, messages, source=source, now=now, result=result)
        erasures.drop_erased()
        rows = [_event_row(message, None) for message in erasures.messages]
        _append(workspace, rows, result, source, now)
    return result


def ingest_batch(
    *,
    workspace: Workspace,
    messages: list[TrackedMessage],
    source: str,
    now: datetime | None = None,
) -> BatchResult:
    """Resolve and store a batch in one transaction; answers only once it is committed."""
    now = now or timezone.now()
    result = BatchResult()
    with transaction.atomic():
        messages = _known_customers_only(workspace, messages, result)
        messages = _without_repeats(messages, result)
        resolution = Resolution(workspace, messages, source=source, now=now, result=result)
        resolution.run()
        rows = [_event_row(m, resolution.customer_of(m)) for m in resolution.messages]
        _append(workspace, rows, result, source, now)
    return result


def _known_customers_only(
    workspace: Workspace, messages: list[TrackedMessage], result: BatchResult
) -> list[TrackedMessage]:
    """A customer id named by the caller must be one of this workspace's customers: an id from
    another workspace is refused exactly like one that does not exist."""
    named = sorted({m.customer_id for m in messages if m.customer_id is not None})
    if not named:
        return messages
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM profiles_customer WHERE workspace_id = %s AND id = ANY(%s)",
            [workspace.id, named],
        )
        known = {row[0] for row in cursor.fetchall()}
    kept = []
    for message in messages:
        if message.customer_id is None or message.customer_id in known:
            kept.append(message)
        else:
            result.rejected.append(
                Rejection(message.index, "no such customer", field="customer_id")
            )
    return kept


def follow_up_pending_key(workspace_id: int) -> str:
    return f"{settings.MASIVO_REDIS_PREFIX}follow-up-pending:{workspace_id}"


def follow_up_pending_clear(*, workspace_id: int) -> None:
    with contextlib.suppress(RedisError, OSError):  # else the flag expires by itself
        get_redis().delete(follow_up_pending_key(workspace_id))


def queue_follow_up(*, workspace_id: int) -> None:
    """Wake the pipeline, at most once while a wake-up is pending: the follow-up clears the
    flag when it starts, so a batch stored after that wakes it again. If Redis or the broker
    is down the events wait for the sweep, never lost."""
    try:
        if not get_redis().set(follow_up_pending_key(workspace_id), 1, nx=True, ex=PENDING_FOR):
            return
    except (RedisError, OSError):
        pass  # wake anyway: a duplicate wake-up costs a little, a lost one a minute
    task_wake(PIPELINE_TASK, workspace_id=workspace_id)
