"""Consumers' reads and cursor moves.

A consumer reads a batch (which locks its cursor), applies its own effects, and advances the
cursor, all in one transaction: a crash before commit undoes both, so the batch is read again;
nothing is skipped and nothing is applied twice. `feed_consume` does the three steps.

Reads follow the watermark rule in `masivo.feeds.selectors`. Use READ COMMITTED (Django's
default): under REPEATABLE READ a cursor advanced by another worker would raise instead of
being waited for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from django.db import connection, transaction
from django.utils import timezone

from masivo.feeds.models import FeedCursor
from masivo.feeds.registry import registered_consumer, registered_feed
from masivo.feeds.selectors import (
    BEGINNING,
    FeedBatch,
    FeedPosition,
    feed_rows_after,
    feed_watermark,
    require_workspace_context,
    scope_key,
)

DEFAULT_BATCH = 1000


class TransactionRequired(RuntimeError):
    pass


class CursorMoved(RuntimeError):
    """The cursor is no longer where the batch started: this batch must not be applied."""


def _require_transaction() -> None:
    if not connection.in_atomic_block:
        raise TransactionRequired(
            "read and advance a feed cursor inside transaction.atomic(), with the effects"
        )


def _cursor_key(*, workspace_id: int, feed: str, consumer: str, scope: int | None) -> dict:
    require_workspace_context(workspace_id)
    registered = registered_consumer(feed=feed, name=consumer)
    if registered.is_scoped != (scope is not None):
        needs = "needs a scope" if registered.is_scoped else "takes no scope"
        raise ValueError(f"consumer {consumer!r} of {feed!r} {needs}")
    key = scope_key(registered_feed(feed), scope)
    return {"workspace_id": workspace_id, "consumer": consumer, "feed": feed, "scope": key}


def _position(cursor: FeedCursor) -> FeedPosition:
    return FeedPosition(xid=int(cursor.last_xid), id=cursor.last_id)


def feed_cursor_create(
    *, workspace_id: int, feed: str, consumer: str, scope: int | None = None, from_now: bool
) -> FeedPosition:
    """Start a consumer's cursor, at the beginning (the oldest row still kept) or from now
    (rows from transactions that end after this call, and perhaps a few just before).

    A cursor that exists is left where it is. `feed_read` creates a missing one at the
    beginning; call this first to start from now instead, or to make a scoped consumer start
    holding back retention for a scope before its first read.
    """
    key = _cursor_key(workspace_id=workspace_id, feed=feed, consumer=consumer, scope=scope)
    start = FeedPosition(xid=feed_watermark(), id=0) if from_now else BEGINNING
    FeedCursor.objects.bulk_create(
        [FeedCursor(**key, last_xid=start.xid, last_id=start.id)], ignore_conflicts=True
    )
    return _position(FeedCursor.objects.get(**key))


def feed_cursor_delete(
    *, workspace_id: int, feed: str, consumer: str, scope: int | None = None
) -> bool:
    """Forget a consumer's cursor (a scoped consumer that stops following a scope), so it
    no longer holds back retention. True if there was one."""
    key = _cursor_key(workspace_id=workspace_id, feed=feed, consumer=consumer, scope=scope)
    deleted, _ = FeedCursor.objects.filter(**key).delete()
    return deleted > 0


def feed_read(
    *,
    workspace_id: int,
    feed: str,
    consumer: str,
    scope: int | None = None,
    limit: int = DEFAULT_BATCH,
) -> FeedBatch:
    """The next rows for this consumer, without advancing; call inside a transaction.

    Locks the cursor row (creating it at the beginning if missing) until the transaction ends,
    so a second worker of the same consumer waits here and then reads the rows after this
    batch. Apply the rows, then `feed_advance(batch=...)` before committing.
    """
    _require_transaction()
    key = _cursor_key(workspace_id=workspace_id, feed=feed, consumer=consumer, scope=scope)
    cursor = FeedCursor.objects.select_for_update().filter(**key).first()
    if cursor is None:
        FeedCursor.objects.bulk_create([FeedCursor(**key)], ignore_conflicts=True)
        cursor = FeedCursor.objects.select_for_update().get(**key)
    batch = feed_rows_after(
        workspace_id=workspace_id, feed=feed, after=_position(cursor), scope=scope, limit=limit
    )
    return replace(batch, consumer=consumer)


def feed_advance(*, batch: FeedBatch) -> None:
    """Move the consumer's cursor past `batch`, in the caller's transaction.

    Conditional on the cursor still being where the batch started: CursorMoved otherwise (the
    batch was applied by someone else), and the caller's transaction must roll back.
    """
    if batch.consumer is None:
        raise ValueError("a batch from feed_rows_after has no cursor to advance")
    _require_transaction()
    if batch.end == batch.start:
        return
    key = _cursor_key(
        workspace_id=batch.workspace_id, feed=batch.feed, consumer=batch.consumer,
        scope=batch.scope,
    )  # fmt: skip
    moved = FeedCursor.objects.filter(
        **key, last_xid=batch.start.xid, last_id=batch.start.id
    ).update(last_xid=batch.end.xid, last_id=batch.end.id, updated_at=timezone.now())
    if moved != 1:
        raise CursorMoved(f"{batch.consumer} on {batch.feed} moved away from {batch.start}")


@contextmanager
def feed_consume(
    *,
    workspace_id: int,
    feed: str,
    consumer: str,
    scope: int | None = None,
    limit: int = DEFAULT_BATCH,
) -> Iterator[FeedBatch]:
    """`with feed_consume(...) as batch:` apply `batch.rows`; the cursor advances when the
    block ends without an exception, in the same transaction as what the block wrote."""
    with transaction.atomic():
        batch = feed_read(
            workspace_id=workspace_id, feed=feed, consumer=consumer, scope=scope, limit=limit
        )
        yield batch
        feed_advance(batch=batch)
