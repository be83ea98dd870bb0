"""Loading what the evaluator needs about customers: profile, relevant events, devices,
memberships. Only events whose names the rules mention are read, and (when the caller gives
`event_since`) only from the earliest moment a condition on that name can look at."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.db.models import Q

from audiences.models import Membership
from audiences.rules.ast import EventCondition, Rules
from audiences.rules.evaluator import Facts
from profiles.consent import consent_opt_out
from profiles.models import Customer, Device, Event
from profiles.services.settings import profile_settings_get

PROFILE_COLUMNS = [
    "id", "external_id", "email", "phone", "first_name", "last_name", "gender", "birth_date",
    "country", "city", "timezone", "locale", "tier", "status", "is_anonymous", "tags", "traits",
    "consent", "created_at", "updated_at", "last_seen_at", "purchase_count", "purchase_total",
    "last_purchase_at", "purchases_30d_count", "purchases_30d_total", "purchases_month_count",
    "purchases_month_total",
]  # fmt: skip


def event_windows(rules: Iterable[Rules], now: datetime) -> dict[str, datetime | None]:
    """Per event name, the earliest `occurred_at` any condition on it can match (None: any)."""
    since: dict[str, datetime | None] = {}
    for document in rules:
        for leaf in document.leaves():
            if not isinstance(leaf, EventCondition):
                continue
            window = leaf.window
            if window is None:
                start = None
            elif window.seconds is not None:
                start = now - timedelta(seconds=window.seconds)
            else:
                start = window.start
            if leaf.name in since and (since[leaf.name] is None or start is None):
                since[leaf.name] = None
            else:
                since[leaf.name] = min(start, since.get(leaf.name) or start) if start else None
    return since


def facts_for_customers(
    *,
    workspace,
    rules: Rules,
    customer_ids: list[int],
    event_since: dict[str, datetime | None] | None = None,
) -> dict[int, Facts]:
    """Facts for several customers in four queries (profiles, events, devices, memberships).

    `event_since` (from `event_windows`, with the evaluator's `now`) skips events that no
    condition can match: for a busy customer, most of them.
    """
    opt_out = consent_opt_out(profile_settings_get(workspace=workspace))
    facts = {
        row["id"]: Facts(profile=row, consent_opt_out=opt_out)
        for row in Customer.objects.filter(id__in=customer_ids).values(*PROFILE_COLUMNS)
    }
    if rules.event_names and facts:
        names = sorted(rules.event_names)
        events = Event.objects.filter(customer_id__in=list(facts))
        if event_since is None:
            events = events.filter(name__in=names)
        else:
            windows = [event_since.get(name) for name in names]
            unbounded = [name for name, since in zip(names, windows, strict=True) if since is None]
            tests = [Q(name__in=unbounded)] if unbounded else []
            tests += [
                Q(name=name, occurred_at__gte=since)
                for name, since in zip(names, windows, strict=True)
                if since is not None
            ]
            events = events.filter(reduce(or_, tests))
            if not unbounded:  # a range on (workspace, customer, occurred_at)
                events = events.filter(occurred_at__gte=min(windows))
        rows = events.values_list("customer_id", "name", "properties", "occurred_at")
        for customer_id, name, properties, occurred_at in rows:  # one round trip
            facts[customer_id].events.append((name, properties, occurred_at))
    devices = defaultdict(list)
    for customer_id, platform, push_enabled, expires_at in Device.objects.filter(
        customer_id__in=list(facts)
    ).values_list("customer_id", "platform", "push_enabled", "expires_at"):
        devices[customer_id].append((platform, push_enabled, expires_at))
    for customer_id, items in devices.items():
        facts[customer_id].devices = items
    if rules.audience_ids:  # by customer only, filtered here: always the customer index
        for customer_id, audience_id in Membership.objects.filter(
            customer_id__in=list(facts)
        ).values_list("customer_id", "audience_id"):
            if audience_id in rules.audience_ids:
                facts[customer_id].memberships.add(audience_id)
    return facts
