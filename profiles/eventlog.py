"""The event log's one writer: append a batch of events, each message id once per dedupe window;
mark claimed events followed up (with who they are about), delete erased ones, and send an
anonymous id's history back to the follow-up when it joins a customer. (Retention drops and
deletes expired rows: profiles/retention.py.)

Ingestion hands over rows already validated; `events_append` stores those whose message id this
workspace has not stored within the dedupe window (MASIVO_EVENT_DEDUPE_WINDOW_DAYS, 7 by
default), in the caller's transaction, and answers how many it stored. A replay of a message
older than the window is stored again (docs/api.md): the events table is partitioned by month,
so a unique key on it would have to include `occurred_at`, and the message ids live in
`profiles_eventmessageid`, pruned by profiles/retention.py.
"""

from __future__ import annotations

import json
from datetime import datetime

import orjson

from masivo.sql import server_bound_cursor

# One statement: the batch's message ids go into the dedupe table first (a concurrent batch with
# the same id waits on the uncommitted row, then skips it, or takes it if that batch rolls back);
# only the events whose ids came back new are stored. A message id repeated inside the batch
# counts once, at its first position. The ids are locked in message-id order, so two batches
# sharing ids in different orders wait for each other instead of deadlocking. Events are
# inserted in the batch's order, so ids follow it: the follow-up applies a user's messages in
# id order.
_EVENT_INSERT = """
WITH batch AS (
    SELECT m.*, row_number() OVER (PARTITION BY m.message_id ORDER BY m.position) AS occurrence
      FROM ROWS FROM (jsonb_to_recordset(%(rows)s::jsonb) AS (
           type text, name text, properties jsonb, occurred_at timestamptz, message_id text,
           customer_id bigint, user_id text, anonymous_id text, context jsonb)) WITH ORDINALITY
           AS m(type, name, properties, occurred_at, message_id, customer_id, user_id,
                anonymous_id, context, position)
),
fresh AS (
    INSERT INTO profiles_eventmessageid (workspace_id, message_id, seen_at)
    SELECT %(workspace)s, b.message_id, %(now)s FROM batch b
     WHERE b.occurrence = 1 ORDER BY b.message_id
    ON CONFLICT (workspace_id, message_id) DO NOTHING
    RETURNING message_id
)
INSERT INTO profiles_event (
    workspace_id, type, name, properties, occurred_at, received_at, message_id, customer_id,
    user_id, anonymous_id, context, source)
SELECT %(workspace)s, b.type, b.name, b.properties, b.occurred_at, %(now)s, b.message_id,
       b.customer_id, b.user_id, b.anonymous_id, b.context, %(source)s
  FROM batch b JOIN fresh f ON f.message_id = b.message_id
 WHERE b.occurrence = 1
 ORDER BY b.position
"""
# The batch travels as ONE JSON parameter, bound server-side: quoting nine arrays of JSON text,
# or one document, into the statement cost more CPU than the INSERT itself (BENCHMARKS.md).


def events_append(*, workspace_id: int, rows: list[dict], source: str, now: datetime) -> int:
    """Store `rows` (dicts with type, name, properties, occurred_at (ISO text), message_id,
    customer_id, user_id, anonymous_id, context); returns how many were new."""
    if not rows:
        return 0
    params = {"workspace": workspace_id, "now": now, "source": source, "rows": _json(rows)}
    with server_bound_cursor() as cursor:  # ~100 KB of JSON: not quoted into the statement
        cursor.execute(_EVENT_INSERT, params)
        return cursor.rowcount


def _json(rows: list[dict]) -> str:
    try:
        return orjson.dumps(rows).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):  # text orjson will not write as is
        return json.dumps(rows)


# Keyed by the partition key too: each key probes one partition's primary key (run-time pruning).
_DONE_SQL = """
UPDATE profiles_event e SET processed_at = %(now)s, customer_id = v.customer_id
  FROM unnest(%(ids)s::bigint[], %(times)s::timestamptz[], %(customers)s::bigint[])
       AS v(id, occurred_at, customer_id)
 WHERE e.workspace_id = %(workspace)s AND e.id = v.id AND e.occurred_at = v.occurred_at
"""
_DELETE_SQL = """
DELETE FROM profiles_event e
 USING unnest(%(ids)s::bigint[], %(times)s::timestamptz[]) AS v(id, occurred_at)
 WHERE e.workspace_id = %(workspace)s AND e.id = v.id AND e.occurred_at = v.occurred_at
"""
# History already followed up under the anonymous id joins the customer and goes back to the
# follow-up (its metrics and audiences change). Events not followed up yet find the link when
# their turn comes: rewriting them here would cost a backlog every row twice.
_RELINK_SQL = """
UPDATE profiles_event e SET customer_id = v.customer_id, processed_at = NULL
  FROM unnest(%(anonymous_ids)s::text[], %(customers)s::bigint[]) AS v(anonymous_id, customer_id)
 WHERE e.workspace_id = %(workspace)s AND e.customer_id IS NULL
   AND e.anonymous_id = v.anonymous_id AND e.processed_at IS NOT NULL
"""


def events_mark_processed(
    *, workspace_id: int, events: list[tuple[int, datetime, int | None]], now: datetime
) -> None:
    """(id, occurred_at, customer id) of claimed events: followed up now, about that customer."""
    if events:
        ids, times, customers = (list(column) for column in zip(*events, strict=True))
        with server_bound_cursor() as cursor:  # three arrays of up to 5,000 values
            cursor.execute(
                _DONE_SQL,
                {"workspace": workspace_id, "now": now, "ids": ids, "times": times,
                 "customers": customers},
            )  # fmt: skip


# Only while some consumer follows the workspace's processed-event feed (a cursor exists):
# a workspace without one pays one index probe a batch, not a row an event.
_PROCESSED_FEED_SQL = """
INSERT INTO profiles_processedevent
       (workspace_id, event_id, occurred_at, customer_id, name, type, processed_at)
SELECT %(workspace)s, e.id, e.occurred_at, e.customer_id, e.name, e.type, %(now)s
  FROM unnest(%(ids)s::bigint[], %(times)s::timestamptz[], %(customers)s::bigint[],
              %(names)s::text[], %(types)s::text[])
       AS e(id, occurred_at, customer_id, name, type)
 WHERE EXISTS (SELECT 1 FROM feeds_feedcursor c
                WHERE c.workspace_id = %(workspace)s AND c.feed = 'processed_events')
"""


def processed_events_record(
    *, workspace_id: int, events: list[tuple[int, datetime, int | None, str, str]], now: datetime
) -> None:
    """(id, occurred_at, customer id, name, type) of events just followed up, into the
    processed-event feed (in the follow-up's transaction), if anyone follows it."""
    if events:
        ids, times, customers, names, types = (list(c) for c in zip(*events, strict=True))
        with server_bound_cursor() as cursor:
            cursor.execute(
                _PROCESSED_FEED_SQL,
                {"workspace": workspace_id, "now": now, "ids": ids, "times": times,
                 "customers": customers, "names": names, "types": types},
            )  # fmt: skip


def events_delete(*, workspace_id: int, events: list[tuple[int, datetime]]) -> None:
    """(id, occurred_at) of events to remove (they named an erased identifier)."""
    if events:
        ids, times = (list(column) for column in zip(*events, strict=True))
        with server_bound_cursor() as cursor:
            cursor.execute(_DELETE_SQL, {"workspace": workspace_id, "ids": ids, "times": times})


def events_relink_history(*, workspace_id: int, links: dict[str, int]) -> None:
    """Anonymous id → the customer it now belongs to: its followed-up history goes along."""
    if links:
        with server_bound_cursor() as cursor:
            cursor.execute(
                _RELINK_SQL,
                {"workspace": workspace_id, "anonymous_ids": list(links),
                 "customers": list(links.values())},
            )  # fmt: skip
