"""Reading a feed after a position, with no cursor of its own (the API's stateless pages).

The guarantee, for every read here and in `masivo.feeds.services`: rows come in (xid, id)
order, and only rows whose transaction id is below the xmin of the reading statement's snapshot
(`pg_snapshot_xmin(pg_current_snapshot())`, the oldest transaction id still running). Every
such transaction has ended, so all its rows are visible now, and any row written later gets an
xid at or above that xmin: nothing can appear behind a position once it has been read past. A
row that commits late is read late, never skipped; a transaction that stays open (anywhere on
the server, since xids are server-wide) holds every reader back until it ends: lag, not loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection

from masivo.feeds.models import NO_SCOPE
from masivo.feeds.registry import Feed, registered_feed
from masivo.tenancy.context import MissingWorkspaceContext, current_scope


@dataclass(frozen=True, order=True)
class FeedPosition:
    """A place in a feed: just after the row with this (xid, id)."""

    xid: int
    id: int

    def encode(self) -> str:
        return f"{self.xid}.{self.id}"

    @classmethod
    def decode(cls, text: str) -> FeedPosition:
        """The inverse of `encode`; ValueError for anything else."""
        xid, dot, id_ = text.partition(".")
        if not (dot and xid.isascii() and xid.isdigit() and id_.isascii() and id_.isdigit()):
            raise ValueError(f"not a feed position: {text!r}")
        if len(xid) > 20 or len(id_) > 19 or int(xid) >= 2**64 or int(id_) >= 2**63:
            raise ValueError(f"not a feed position: {text!r}")
        return cls(xid=int(xid), id=int(id_))


BEGINNING = FeedPosition(xid=0, id=0)


@dataclass(frozen=True)
class FeedBatch:
    """Rows read after `start`, as dicts of the table's columns (`xid` as an int); `end` is the
    position after the last of them (`start` when there are none)."""

    workspace_id: int
    feed: str
    scope: int | None
    start: FeedPosition
    end: FeedPosition
    rows: list[dict] = field(repr=False)
    limit: int
    consumer: str | None = None

    @property
    def has_more(self) -> bool:
        """A full batch: more rows may already be readable."""
        return len(self.rows) >= self.limit


_ROWS_AFTER_SQL = """
SELECT t.* FROM {table} t
 WHERE t.workspace_id = %(workspace)s{scope_condition}
   AND (t.xid, t.id) > (%(after_xid)s::xid8, %(after_id)s)
   AND t.xid < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY t.xid, t.id
 LIMIT %(limit)s
"""


def require_workspace_context(workspace_id: int) -> None:
    """Fail closed: feed reads and cursor writes run for the workspace in context."""
    scope = current_scope()
    if scope.workspace_id != workspace_id and not scope.is_all_workspaces:
        raise MissingWorkspaceContext(f"this needs workspace_scope({workspace_id})")


def scope_key(feed: Feed, scope: int | None) -> int:
    if scope is None:
        return NO_SCOPE
    if feed.scope_column is None:
        raise ValueError(f"feed {feed.name!r} has no scope column")
    return scope


def feed_rows_after(
    *, workspace_id: int, feed: str, after: FeedPosition, scope: int | None = None, limit: int
) -> FeedBatch:
    """Up to `limit` rows after `after` in feed order, for one workspace (and one scope value).

    One statement, so the rows and the watermark they are cut at come from one snapshot.
    """
    require_workspace_context(workspace_id)
    definition = registered_feed(feed)
    key = scope_key(definition, scope)
    quote = connection.ops.quote_name
    scope_condition = (
        "" if scope is None else f" AND t.{quote(definition.scope_column)} = %(scope)s"
    )
    sql = _ROWS_AFTER_SQL.format(table=quote(definition.table), scope_condition=scope_condition)
    params = {
        "workspace": workspace_id,
        "scope": key,
        "after_xid": str(after.xid),  # there is no cast from integer to xid8, only from text
        "after_id": after.id,
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        rows = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
    for row in rows:
        row["xid"] = int(row["xid"])
    end = FeedPosition(xid=rows[-1]["xid"], id=rows[-1]["id"]) if rows else after
    return FeedBatch(
        workspace_id=workspace_id, feed=feed, scope=scope, start=after, end=end, rows=rows,
        limit=limit,
    )  # fmt: skip


def feed_watermark() -> int:
    """The xid below which every transaction has ended: what a read now could reach."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
        return int(cursor.fetchone()[0])
