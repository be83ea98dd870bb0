"""The floor: the same events, as Masivo would store them, COPYed straight into profiles_event.

No HTTP, no validation, no identity resolution, no row-level security: a superuser's
`cursor.copy()` of rows built before the clock starts. The customers they point to are created
beforehand, untimed (Masivo creates the new ones inside its timed batches), so this is strictly less
work than Masivo does, which is what makes it a floor.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime

import psycopg

COLUMNS = (
    "workspace_id", "type", "name", "properties", "occurred_at", "received_at", "message_id",
    "customer_id", "user_id", "anonymous_id", "context", "source",
)  # fmt: skip
EVENT_NAMES = {"identify": "Identify", "page": "Page Viewed", "screen": "Screen Viewed"}
CLIENT_CONTEXT = {"ip": "127.0.0.1", "userAgent": "analytics-python/2.3.3"}


@dataclass
class CopyResult:
    label: str
    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def stored_rows(
    batches: list[dict],
    *,
    workspace_id: int,
    customer_ids: dict[str, int],
    received_at: datetime,
    prefix: str = "",
) -> list[list[tuple]]:
    """Each batch's messages as profiles_event rows, the way the tracking API stores them."""
    result = []
    for body in batches:
        rows = []
        for message in body["batch"]:
            kind = message["type"]
            properties = dict(message.get("properties") or {})
            if kind == "identify":
                properties = message["traits"]
            elif kind in ("page", "screen") and message.get("name") is not None:
                properties.setdefault("name", message["name"])
            occurred = _when(message["timestamp"]) + (received_at - _when(message["sentAt"]))
            user_id = message.get("userId", "")
            rows.append(
                (
                    workspace_id,
                    kind,
                    message.get("event") or EVENT_NAMES[kind],
                    json.dumps(properties),
                    occurred,
                    received_at,
                    prefix + message["messageId"],
                    customer_ids.get(user_id) if user_id else None,
                    user_id,
                    message.get("anonymousId", ""),
                    json.dumps({**CLIENT_CONTEXT, **message.get("context", {})}),
                    "segment",
                )
            )
        result.append(rows)
    return result


def ensure_customers(admin: psycopg.Connection, workspace_id: int, user_ids: set[str]) -> dict:
    """Customers for every userId in the stream (untimed), and their ids."""
    admin.execute(
        """
        INSERT INTO profiles_customer (
            workspace_id, external_id, email, phone, first_name, last_name, gender, birth_date,
            country, city, timezone, locale, tier, status, is_anonymous, tags, traits, consent,
            created_at, updated_at, purchase_count, purchase_total, purchases_30d_count,
            purchases_30d_total, purchases_month_count, purchases_month_total)
        SELECT %(ws)s, u, NULL, NULL, '', '', '', NULL, '', '', '', '', '', 'active', false,
               '{}', '{}', '{}', now(), now(), 0, 0, 0, 0, 0, 0
          FROM unnest(%(users)s::text[]) AS u
        ON CONFLICT DO NOTHING
        """,
        {"ws": workspace_id, "users": sorted(user_ids)},
    )
    rows = admin.execute(
        "SELECT external_id, id FROM profiles_customer WHERE workspace_id = %s "
        "AND external_id IS NOT NULL",
        [workspace_id],
    ).fetchall()
    return dict(rows)


def copy_all(admin_db_url: str, batches: list[list[tuple]]) -> CopyResult:
    """One COPY of every row, one transaction: the fastest way in."""
    statement = f"COPY profiles_event ({', '.join(COLUMNS)}) FROM STDIN"
    rows = [row for batch in batches for row in batch]
    with psycopg.connect(admin_db_url) as connection:
        started = time.perf_counter()
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        connection.commit()
        seconds = time.perf_counter() - started
    return CopyResult("COPY, one stream, one transaction", len(rows), seconds)


def copy_per_batch(admin_db_url: str, batches: list[list[tuple]]) -> CopyResult:
    """One COPY and one commit per batch, one connection: what per-request durability costs."""
    statement = f"COPY profiles_event ({', '.join(COLUMNS)}) FROM STDIN"
    with psycopg.connect(admin_db_url) as connection:
        started = time.perf_counter()
        for batch in batches:
            with connection.cursor() as cursor, cursor.copy(statement) as copy:
                for row in batch:
                    copy.write_row(row)
            connection.commit()
        seconds = time.perf_counter() - started
    events = sum(len(batch) for batch in batches)
    return CopyResult("COPY per batch, one commit each", events, seconds)
