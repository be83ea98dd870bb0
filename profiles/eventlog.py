"""The event log's one writer: append a batch of events, each message id at most once.

Ingestion hands over rows already validated and deduplicated within the batch; `events_append`
stores those whose message id this workspace has not stored before, in the caller's
transaction, and answers how many it stored (the rest are duplicates of earlier batches).
"""

from __future__ import annotations

import json
from datetime import datetime

from django.db import connection

_EVENT_INSERT = """
INSERT INTO profiles_event (
    workspace_id, type, name, properties, occurred_at, received_at, message_id, customer_id,
    user_id, anonymous_id, context, source)
SELECT %(workspace)s, m.type, m.name, m.properties, m.occurred_at, %(now)s, m.message_id,
       m.customer_id, m.user_id, m.anonymous_id, m.context, %(source)s
  FROM ROWS FROM (jsonb_to_recordset(%(rows)s::jsonb) AS (
       type text, name text, properties jsonb, occurred_at timestamptz, message_id text,
       customer_id bigint, user_id text, anonymous_id text, context jsonb)) WITH ORDINALITY
       AS m(type, name, properties, occurred_at, message_id, customer_id, user_id,
            anonymous_id, context, position)
 ORDER BY m.position
ON CONFLICT (workspace_id, message_id) DO NOTHING
"""
# The batch travels as ONE JSON parameter: quoting nine arrays of JSON text client-side cost
# more CPU than the INSERT itself (BENCHMARKS.md, ingestion). Rows are inserted in the batch's
# order, so ids follow it: the follow-up applies a user's messages in id order.


def events_append(*, workspace_id: int, rows: list[dict], source: str, now: datetime) -> int:
    """Store `rows` (dicts with type, name, properties, occurred_at (ISO text), message_id,
    customer_id, user_id, anonymous_id, context); returns how many were new."""
    if not rows:
        return 0
    params = {"workspace": workspace_id, "now": now, "source": source, "rows": json.dumps(rows)}
    with connection.cursor() as cursor:
        cursor.execute(_EVENT_INSERT, params)
        return cursor.rowcount
