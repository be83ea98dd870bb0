"""The ingestion follow-up's profile part: claim unprocessed events, refresh their customers."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from masivo.tenancy.models import Workspace
from profiles.metrics import customers_refresh_metrics

_CLAIM_SQL = """
UPDATE profiles_event SET processed_at = %(now)s
 WHERE id IN (SELECT id FROM profiles_event
               WHERE workspace_id = %(workspace)s AND processed_at IS NULL
               ORDER BY received_at
               LIMIT %(limit)s
               FOR UPDATE SKIP LOCKED)
RETURNING customer_id, name
"""


def events_process_batch(*, workspace: Workspace, limit: int = 5000, now: datetime | None = None):
    """Claim up to `limit` unprocessed events and refresh their customers' metrics.

    Call inside a transaction: if anything fails, the claim rolls back with it and the sweep
    retries. Returns (events claimed, customer ids touched, event names seen).
    """
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"now": now, "workspace": workspace.id, "limit": limit})
        rows = cursor.fetchall()
    customer_ids = sorted({customer_id for customer_id, _ in rows if customer_id is not None})
    customers_refresh_metrics(workspace=workspace, customer_ids=customer_ids, now=now)
    return len(rows), customer_ids, sorted({name for _, name in rows})


def workspaces_with_stale_events(
    *, older_than: timedelta, now: datetime | None = None
) -> list[int]:
    """Workspaces holding events whose follow-up is overdue (call in all_workspaces scope)."""
    cutoff = (now or timezone.now()) - older_than
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT workspace_id FROM profiles_event "
            "WHERE processed_at IS NULL AND received_at < %s",
            [cutoff],
        )
        return [row[0] for row in cursor.fetchall()]
