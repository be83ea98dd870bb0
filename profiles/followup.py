"""The ingestion follow-up's profile part: claim unprocessed events (refreshing their
customers' metrics) and unprocessed profile changes, and say what changed for whom."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from masivo.tenancy.models import Workspace
from profiles.changes import event_key
from profiles.metrics import customers_refresh_metrics
from profiles.models import ProfileChange

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
    """Claim up to `limit` unprocessed events and refresh their customers' metrics (which
    records the customers whose figures changed in the profile-change outbox).

    Call inside a transaction: if anything fails, the claim rolls back with it and the sweep
    retries. Returns (events claimed, customer id → {"event:<name>", ...}).
    """
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"now": now, "workspace": workspace.id, "limit": limit})
        rows = cursor.fetchall()
    changes: dict[int, set[str]] = defaultdict(set)
    for customer_id, name in rows:
        if customer_id is not None:
            changes[customer_id].add(event_key(name))
    customers_refresh_metrics(workspace=workspace, customer_ids=sorted(changes), now=now)
    return len(rows), dict(changes)


_CLAIM_CHANGES_SQL = """
UPDATE profiles_profilechange SET processed_at = %(now)s
 WHERE id IN (SELECT id FROM profiles_profilechange
               WHERE workspace_id = %(workspace)s AND processed_at IS NULL
               ORDER BY changed_at
               LIMIT %(limit)s
               FOR UPDATE SKIP LOCKED)
RETURNING customer_id, kind, keys
"""
_GONE = (ProfileChange.Kind.DELETED, ProfileChange.Kind.ERASED, ProfileChange.Kind.MERGED_AWAY)


def profile_changes_claim(
    *, workspace: Workspace, limit: int = 5000, now: datetime | None = None
) -> tuple[int, dict[int, set[str]]]:
    """Claim up to `limit` unprocessed profile changes (call inside a transaction, like the
    events). Returns (rows claimed, customer id → changed keys); customers who are gone are
    left out: their removal already ended their memberships."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_CHANGES_SQL, {"now": now, "workspace": workspace.id, "limit": limit})
        rows = cursor.fetchall()
    changes: dict[int, set[str]] = defaultdict(set)
    for customer_id, kind, keys in rows:
        if kind not in _GONE:
            changes[customer_id].update(json.loads(keys) if isinstance(keys, str) else keys)
    return len(rows), dict(changes)


def workspaces_with_stale_events(
    *, older_than: timedelta, now: datetime | None = None
) -> list[int]:
    """Workspaces holding events whose follow-up is overdue (call in all_workspaces scope)."""
    cutoff = (now or timezone.now()) - older_than
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT workspace_id FROM profiles_event "
            "WHERE processed_at IS NULL AND received_at < %(cutoff)s "
            "UNION SELECT DISTINCT workspace_id FROM profiles_profilechange "
            "WHERE processed_at IS NULL AND changed_at < %(cutoff)s "
            "ORDER BY 1",
            {"cutoff": cutoff},
        )
        return [row[0] for row in cursor.fetchall()]
