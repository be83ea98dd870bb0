"""Loading what the evaluator needs about customers: profile, relevant events, devices,
memberships. Only events whose names the rules mention are read."""

from __future__ import annotations

from collections import defaultdict

from audiences.models import Membership
from audiences.rules.ast import Rules
from audiences.rules.evaluator import Facts
from profiles.models import Customer, Device, Event, ProfileSettings
from profiles.services.settings import profile_settings_get

PROFILE_COLUMNS = [
    "id", "external_id", "email", "phone", "first_name", "last_name", "gender", "birth_date",
    "country", "city", "timezone", "locale", "tier", "status", "is_anonymous", "tags", "traits",
    "consent", "created_at", "updated_at", "last_seen_at", "purchase_count", "purchase_total",
    "last_purchase_at", "purchases_30d_count", "purchases_30d_total", "purchases_month_count",
    "purchases_month_total",
]  # fmt: skip


def facts_for_customers(*, workspace, rules: Rules, customer_ids: list[int]) -> dict[int, Facts]:
    """Facts for several customers in four queries (profiles, events, devices, memberships)."""
    settings = profile_settings_get(workspace=workspace)
    opt_out = settings.consent_regime == ProfileSettings.ConsentRegime.OPT_OUT
    facts = {
        row["id"]: Facts(profile=row, consent_opt_out=opt_out)
        for row in Customer.objects.filter(id__in=customer_ids).values(*PROFILE_COLUMNS)
    }
    if rules.event_names:
        events = Event.objects.filter(
            customer_id__in=list(facts), name__in=sorted(rules.event_names)
        ).values_list("customer_id", "name", "properties", "occurred_at")
        for customer_id, name, properties, occurred_at in events.iterator(chunk_size=5000):
            facts[customer_id].events.append((name, properties, occurred_at))
    devices = defaultdict(list)
    for customer_id, platform, push_enabled, expires_at in Device.objects.filter(
        customer_id__in=list(facts)
    ).values_list("customer_id", "platform", "push_enabled", "expires_at"):
        devices[customer_id].append((platform, push_enabled, expires_at))
    for customer_id, items in devices.items():
        facts[customer_id].devices = items
    if rules.audience_ids:
        for customer_id, audience_id in Membership.objects.filter(
            customer_id__in=list(facts), audience_id__in=sorted(rules.audience_ids)
        ).values_list("customer_id", "audience_id"):
            facts[customer_id].memberships.add(audience_id)
    return facts
