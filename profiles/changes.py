"""The profile-change outbox: every write to a customer records, in its own transaction, which
dependency keys changed, and wakes the ingestion follow-up after commit.

Keys say what a change can affect, in the vocabulary audience rules are indexed by
(`audiences.dependencies`):

    field:<column>     a profile column (country, email, is_anonymous, last_seen_at, …)
    traits:<key>       a top-level trait key (`traits.address.city` depends on `traits:address`)
    tags:<key>         a tag
    consent:<purpose>  a consent purpose
    consent_vendor:<key>  a vendor's consent decision (a destination key)
    consent_string     the stored consent string or its version
    device             the customer's devices
    metrics            the purchase metrics
    *                  anything (a new customer, a merge winner)

Writers: the customers service (REST API and dashboard edits, upserts, tags, identify), the
tracking API's identify, CSV imports, consent updates, device registration and removal, merges,
deletions and erasures, and the metrics refresh. A write that changes nothing records nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from masivo.tenancy.wakeups import task_wake_on_commit
from profiles.models import Customer, ProfileChange

ANYTHING = "*"
DEVICE = "device"
METRICS = "metrics"
FOLLOW_UP_TASK = "masivo.pipeline.process_events"

METRIC_FIELDS = (
    "purchase_count", "purchase_total", "last_purchase_at", "purchases_30d_count",
    "purchases_30d_total", "purchases_month_count", "purchases_month_total",
)  # fmt: skip
PLAIN_FIELDS = (
    "external_id", "email", "phone", "first_name", "last_name", "gender", "birth_date",
    "country", "city", "timezone", "locale", "tier", "status", "is_anonymous", "created_at",
    "updated_at", "last_seen_at",
)  # fmt: skip
SNAPSHOT_FIELDS = ("id", *PLAIN_FIELDS, *METRIC_FIELDS, "traits", "tags", "consent")


def event_key(name: str) -> str:
    """Events are not in the outbox (the events table is their own feed), but real time
    indexes them in the same vocabulary."""
    return f"event:{name}"


def field_key(column: str) -> str:
    return METRICS if column in METRIC_FIELDS else f"field:{column}"


def _changed_keys(prefix: str, before: dict, after: dict) -> set[str]:
    before, after = before or {}, after or {}
    return {
        f"{prefix}:{key}" for key in set(before) | set(after) if before.get(key) != after.get(key)
    }


def keys_between(before: dict, after: dict) -> set[str]:
    """The keys whose values differ between two snapshots (dicts of SNAPSHOT_FIELDS)."""
    keys = {field_key(name) for name in PLAIN_FIELDS + METRIC_FIELDS if before[name] != after[name]}
    keys |= _changed_keys("traits", before["traits"], after["traits"])
    keys |= _changed_keys("tags", before["tags"], after["tags"])
    keys |= _changed_keys("consent", before["consent"], after["consent"])
    return keys


def customer_snapshots(customer_ids: Iterable[int]) -> dict[int, dict]:
    """The stored values that keys are computed from, by customer id."""
    rows = Customer.objects.filter(id__in=list(customer_ids)).values(*SNAPSHOT_FIELDS)
    return {row["id"]: row for row in rows}


def customer_snapshot(customer: Customer) -> dict:
    """The same from a model instance (a copy: later edits of the instance do not show)."""
    return copy.deepcopy({name: getattr(customer, name) for name in SNAPSHOT_FIELDS})


def profile_changes_record(
    *,
    workspace_id: int,
    changes: Iterable[tuple[int, Iterable[str]]],
    source: str,
    kind: str = ProfileChange.Kind.UPDATED,
    now: datetime | None = None,
) -> int:
    """Record (customer id, keys) pairs in the caller's transaction and wake the follow-up
    after it commits. Pairs with no keys are skipped (except removals and merges, which are
    news even with nothing to re-evaluate). Returns the rows written."""
    now = now or timezone.now()
    always = kind != ProfileChange.Kind.UPDATED
    rows = [
        ProfileChange(
            workspace_id=workspace_id,
            customer_id=customer_id,
            kind=kind,
            keys=sorted(set(keys)),
            source=source[:16],
            changed_at=now,
        )
        for customer_id, keys in changes
        if always or keys
    ]
    if not rows:
        return 0
    ProfileChange.objects.bulk_create(rows)
    task_wake_on_commit(FOLLOW_UP_TASK, workspace_id=workspace_id)
    return len(rows)


def customer_changed(
    *, before: dict | None, customer: Customer, source: str, now: datetime | None = None
) -> None:
    """Record one customer's change from `before` (None: created) to its current values."""
    if before is None:
        kind, keys = ProfileChange.Kind.CREATED, {ANYTHING}
    else:
        kind, keys = ProfileChange.Kind.UPDATED, keys_between(before, customer_snapshot(customer))
    profile_changes_record(
        workspace_id=customer.workspace_id,
        changes=[(customer.id, keys)],
        source=source,
        kind=kind,
        now=now,
    )
