"""Retention: feed rows older than an age go once every consumer holding them has read them.

Per workspace and feed, a row is deleted when it is older than the age and
- every unscoped consumer holding retention has a cursor at or past it (one with no cursor yet
  will start from the beginning, so it holds the whole workspace; one that `starts_from_now`
  holds only through a cursor it has), and
- no scoped consumer holding retention has a cursor for the row's scope that is before it (a
  scoped consumer follows only the scopes it has cursors for; `feed_cursor_create` starts one),
  and
- its feed's `pending_column`, if the feed has one, is set (NULL there marks an outbox entry
  the owning app has not processed yet).
A feed with no such consumers loses its (processed) rows by age alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from masivo.feeds.models import NO_SCOPE, FeedCursor
from masivo.feeds.registry import Feed, registered_consumers, registered_feeds
from masivo.feeds.selectors import FeedPosition, require_workspace_context

DELETE_BATCH = 5000

# Rows leave from the front of the feed, up to its first row younger than the age: each batch
# walks the (workspace_id, xid, id) index from the oldest rows, and the walk never goes past that
# first young row (else the last batch of every pass would read the whole workspace). An old row
# behind a young one (clocks or transactions out of step by more than a moment) waits for a later
# pass. The age test stays on each row, since a long transaction can write a young row early on.
_FIRST_YOUNG_SQL = """
SELECT t.xid::text, t.id FROM {table} t
 WHERE t.workspace_id = %(workspace)s AND t.{age} >= %(cutoff)s
 ORDER BY t.xid, t.id LIMIT 1
"""
_DELETE_SQL = """
WITH doomed AS (
    SELECT t.id FROM {table} t
     WHERE t.workspace_id = %(workspace)s AND t.{age} < %(cutoff)s{conditions}
     ORDER BY t.xid, t.id
     LIMIT %(batch)s
)
DELETE FROM {table} t USING doomed WHERE t.id = doomed.id
"""
_BEFORE_YOUNG = " AND (t.xid, t.id) < (%(young_xid)s::xid8, %(young_id)s)"
# Pending rows stay by a condition on each row, not by ending the walk at the first one: an
# outbox is drained within moments, so old pending rows are few, and one stuck row must not
# keep the rest of the workspace's feed forever.
_PROCESSED = " AND t.{pending} IS NOT NULL"
_PASSED_BY_UNSCOPED = " AND (t.xid, t.id) <= (%(passed_xid)s::xid8, %(passed_id)s)"
_PASSED_BY_SCOPED = """
       AND NOT EXISTS (
           SELECT 1 FROM feeds_feedcursor c
            WHERE c.workspace_id = t.workspace_id AND c.feed = %(feed)s
              AND c.consumer = ANY(%(scoped)s) AND c.scope = t.{scope}
              AND (t.xid, t.id) > (c.last_xid::text::xid8, c.last_id))"""


def feed_rows_delete_expired(
    *,
    workspace_id: int,
    older_than: timedelta,
    now: datetime | None = None,
    batch_size: int = DELETE_BATCH,
) -> dict[str, int]:
    """Delete one workspace's expired rows of every registered feed, one transaction per batch
    (so it can be stopped and run again at any point). Returns rows deleted by feed."""
    require_workspace_context(workspace_id)
    cutoff = (now or timezone.now()) - older_than
    return {
        feed.name: _feed_delete_expired(
            feed, workspace_id=workspace_id, cutoff=cutoff, batch_size=batch_size
        )
        for feed in registered_feeds()
    }


def _feed_delete_expired(feed: Feed, *, workspace_id: int, cutoff, batch_size: int) -> int:
    holders = [consumer for consumer in registered_consumers(feed=feed.name)
               if consumer.holds_retention]  # fmt: skip
    unscoped = {consumer.name for consumer in holders if not consumer.is_scoped
                and not consumer.per_key and not consumer.starts_from_now}  # fmt: skip
    scoped = sorted(consumer.name for consumer in holders if consumer.is_scoped)
    families = [consumer.name for consumer in holders if consumer.per_key]
    followers = {consumer.name for consumer in holders if consumer.starts_from_now
                 and not consumer.is_scoped and not consumer.per_key}  # fmt: skip
    cursors = FeedCursor.objects.filter(
        workspace_id=workspace_id, feed=feed.name, consumer__in=unscoped, scope=NO_SCOPE
    )
    passed = {cursor.consumer: FeedPosition(int(cursor.last_xid), cursor.last_id)
              for cursor in cursors}  # fmt: skip
    if set(passed) != unscoped:
        return 0
    # Consumers that start from now hold back retention through the cursors they have.
    for cursor in FeedCursor.objects.filter(
        workspace_id=workspace_id, feed=feed.name, consumer__in=followers, scope=NO_SCOPE
    ):
        passed[cursor.consumer] = FeedPosition(int(cursor.last_xid), cursor.last_id)
    # A family's members hold back retention through the cursors they have, like unscoped
    # consumers (a member with no cursor yet starts from now: see its owner).
    for family in families:
        for cursor in FeedCursor.objects.filter(
            workspace_id=workspace_id, feed=feed.name, consumer__startswith=f"{family}:"
        ):
            passed[cursor.consumer] = FeedPosition(int(cursor.last_xid), cursor.last_id)
    quote = connection.ops.quote_name
    names = {"table": quote(feed.table), "age": quote(feed.age_column)}
    params = {"workspace": workspace_id, "cutoff": cutoff, "feed": feed.name,
              "scoped": scoped, "batch": batch_size}  # fmt: skip
    conditions = ""
    with connection.cursor() as cursor:
        cursor.execute(_FIRST_YOUNG_SQL.format(**names), params)
        young = cursor.fetchone()
    if young is not None:
        conditions += _BEFORE_YOUNG
        params |= {"young_xid": young[0], "young_id": young[1]}
    if passed:
        least = min(passed.values())
        conditions += _PASSED_BY_UNSCOPED
        params |= {"passed_xid": str(least.xid), "passed_id": least.id}
    if scoped:
        conditions += _PASSED_BY_SCOPED.format(scope=quote(feed.scope_column))
    if feed.pending_column:
        conditions += _PROCESSED.format(pending=quote(feed.pending_column))
    sql = _DELETE_SQL.format(**names, conditions=conditions)
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            count = cursor.rowcount
        deleted += count
        if count < batch_size:
            return deleted
