"""Profile metrics recomputed from events, set-based, for a set of customers.

Recomputing from the events (rather than incrementing counters) makes the follow-up idempotent:
running it twice for the same customers gives the same figures.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from masivo.tenancy.models import Workspace
from profiles.changes import METRICS, field_key, profile_changes_record
from profiles.services.settings import profile_settings_get

LAST_SEEN = field_key("last_seen_at")

_REFRESH_SQL = """
WITH purchases AS (
    SELECT e.customer_id,
           e.occurred_at,
           COALESCE({value_expression}, 0) AS value
      FROM profiles_event e
     WHERE e.workspace_id = %(workspace)s
       AND e.customer_id = ANY(%(customers)s)
       AND e.type = 'track'
       AND e.name = ANY(%(names)s)
),
figures AS (
    SELECT c.id AS customer_id,
           count(p.customer_id) AS purchase_count,
           COALESCE(sum(p.value), 0) AS purchase_total,
           max(p.occurred_at) AS last_purchase_at,
           count(p.customer_id) FILTER (WHERE p.occurred_at >= %(day30)s) AS count_30d,
           COALESCE(sum(p.value) FILTER (WHERE p.occurred_at >= %(day30)s), 0) AS total_30d,
           count(p.customer_id) FILTER (WHERE p.occurred_at >= %(month)s) AS count_month,
           COALESCE(sum(p.value) FILTER (WHERE p.occurred_at >= %(month)s), 0) AS total_month,
           ROW(c.purchase_count, c.purchase_total, c.last_purchase_at, c.purchases_30d_count,
               c.purchases_30d_total, c.purchases_month_count, c.purchases_month_total)
               AS metrics_before,
           c.last_seen_at AS seen_before
      FROM profiles_customer c
      LEFT JOIN purchases p ON p.customer_id = c.id
     WHERE c.workspace_id = %(workspace)s AND c.id = ANY(%(customers)s)
     GROUP BY c.id
),
seen AS (
    SELECT customer_id, max(occurred_at) AS last_seen
      FROM profiles_event
     WHERE workspace_id = %(workspace)s AND customer_id = ANY(%(customers)s)
       AND occurred_at <= %(now)s
     GROUP BY customer_id
),
updated AS (
    UPDATE profiles_customer c
       SET purchase_count = f.purchase_count,
           purchase_total = f.purchase_total,
           last_purchase_at = f.last_purchase_at,
           purchases_30d_count = f.count_30d,
           purchases_30d_total = f.total_30d,
           purchases_month_count = f.count_month,
           purchases_month_total = f.total_month,
           last_seen_at = GREATEST(c.last_seen_at, s.last_seen),
           metrics_updated_at = %(now)s
      FROM figures f LEFT JOIN seen s ON s.customer_id = f.customer_id
     WHERE c.workspace_id = %(workspace)s AND c.id = f.customer_id
    RETURNING c.id,
              f.metrics_before IS DISTINCT FROM ROW(
                  f.purchase_count::int, f.purchase_total, f.last_purchase_at, f.count_30d::int,
                  f.total_30d, f.count_month::int, f.total_month) AS metrics_changed,
              f.seen_before IS DISTINCT FROM c.last_seen_at AS seen_changed
)
SELECT id, metrics_changed, seen_changed FROM updated
"""


def _value_expression(properties: list[str]) -> str:
    """The first configured property holding a number. Property names are bound parameters."""
    parts = [
        f"CASE WHEN jsonb_typeof(e.properties -> %(prop{index})s) = 'number' "
        f"THEN (e.properties ->> %(prop{index})s)::numeric END"
        for index in range(len(properties))
    ]
    return f"COALESCE({', '.join(parts)})" if parts else "NULL::numeric"


def _month_start(now: datetime, timezone_name: str) -> datetime:
    """The first instant of this month in the workspace's time zone."""
    local = now.astimezone(ZoneInfo(timezone_name or "UTC"))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def customers_refresh_metrics(
    *, workspace: Workspace, customer_ids: list[int], now: datetime | None = None
) -> int:
    """Recompute purchase metrics and last-seen for these customers, recording the customers
    whose figures changed in the profile-change outbox; returns rows updated."""
    if not customer_ids:
        return 0
    now = now or timezone.now()
    settings = profile_settings_get(workspace=workspace)
    properties = list(settings.purchase_value_properties)
    params = {
        "workspace": workspace.id,
        "customers": sorted(set(customer_ids)),
        "names": list(settings.purchase_event_names),
        "now": now,
        "day30": now - timedelta(days=30),
        "month": _month_start(now, workspace.timezone),
    }
    params |= {f"prop{index}": name for index, name in enumerate(properties)}
    sql = _REFRESH_SQL.format(value_expression=_value_expression(properties))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # What this refresh changed, through the outbox's one writer (profiles.changes).
    changes = [
        (customer_id, [key for key, changed in ((METRICS, moved), (LAST_SEEN, seen)) if changed])
        for customer_id, moved, seen in rows
    ]
    profile_changes_record(workspace_id=workspace.id, changes=changes, source="metrics", now=now)
    return len(rows)


def customers_refresh_rolling_metrics(*, workspace: Workspace, batch_size: int = 5000) -> int:
    """Recompute customers whose 30-day or this-month figures may have decayed (daily job)."""
    from django.db.models import Q

    from profiles.models import Customer

    ids = Customer.objects.filter(
        Q(purchases_30d_count__gt=0) | Q(purchases_month_count__gt=0)
    ).values_list("id", flat=True)
    refreshed, last_id = 0, 0
    while batch := list(ids.filter(id__gt=last_id).order_by("id")[:batch_size]):
        refreshed += customers_refresh_metrics(workspace=workspace, customer_ids=batch)
        last_id = batch[-1]
    return refreshed
