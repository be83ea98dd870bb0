"""The Python form and the SQL form of the contact policy give the same decision for random
customers (consent states, regimes, suppressions, devices, sent messages and caps, time zones
with DST and odd offsets, times of day), like the audience compiler and evaluator."""

import datetime
import random
from collections import Counter
from datetime import UTC

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from masivo.tenancy.context import workspace_scope
from messaging.policy import contact_decide, contact_decide_many
from tests.factories import CustomerFactory, WorkspaceFactory
from tests.messaging.test_policy_support import (
    add_device,
    sent_message,
    set_policy,
    set_regime,
    suppress,
)

pytestmark = pytest.mark.django_db

ZONES = [
    "",  # the workspace's
    "UTC",
    "America/Mexico_City",
    "America/New_York",
    "America/Santiago",  # DST at midnight
    "Europe/London",
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # a 30-minute DST change
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Havana",  # DST at midnight
    "Not/A_Zone",  # unknown: the workspace's
]
CHANNELS = ["email", "push", "whatsapp", "sms", "in_app"]
PURPOSES = ["email_marketing", "push_notifications", "whatsapp_marketing", "sms_marketing"]
REASONS = ["hard_bounce", "invalid_address", "spam_report", "unsubscribe", "manual"]
BASE = datetime.datetime(2026, 1, 1, tzinfo=UTC)

consent_state = st.sampled_from([None, "granted", "granted", "granted", "denied", "revoked"])
moments = st.integers(0, 365 * 24 * 4).map(lambda q: BASE + datetime.timedelta(minutes=15 * q))

customer_facts = st.fixed_dictionaries(
    {
        "email": st.sampled_from([None, "a@example.com", "b@example.org", "a@example.com", "x"]),
        "phone": st.sampled_from([None, "+525512345678", "+14155550100", "5512345678"]),
        "timezone": st.sampled_from(ZONES),
        "consent": st.fixed_dictionaries({p: consent_state for p in PURPOSES}),
        "suppression": st.sampled_from([None, None, None, None, *REASONS]),
        "device": st.sampled_from([None, "active", "active", "disabled", "expired"]),
        "sent": st.lists(
            st.tuples(st.sampled_from(CHANNELS), st.integers(0, 72), st.booleans()), max_size=4
        ),
    }
)
caps = st.lists(
    st.fixed_dictionaries(
        {
            "channel": st.sampled_from([*CHANNELS, "*"]),
            "limit": st.integers(1, 3),
            "window_hours": st.integers(1, 72),
        }
    ),
    max_size=3,
)
policies = st.fixed_dictionaries(
    {
        "frequency_caps": caps,
        "quiet_hours_enabled": st.sampled_from([True, True, False]),
        "quiet_hours_window": st.tuples(st.integers(0, 95), st.integers(0, 95)),
        "quiet_hours_action": st.sampled_from(["defer", "skip"]),
        "quiet_hours_channels": st.sampled_from([CHANNELS, ["email", "push"], ["sms"], []]),
    }
)


def quarter(index: int) -> datetime.time:
    return datetime.time(index % 96 // 4, index % 4 * 15)


def build(workspace, index: int, facts: dict, at):
    consent = {p: {"status": s} for p, s in facts["consent"].items() if s is not None}
    email = facts["email"] and f"{index}{facts['email']}"
    customer = CustomerFactory(
        workspace=workspace, email=email, phone=facts["phone"] and facts["phone"][:-1] + str(index),
        timezone=facts["timezone"], consent=consent,
    )  # fmt: skip
    if facts["suppression"] and email:
        suppress(workspace, "email", email, facts["suppression"])
    if facts["suppression"] and customer.phone:
        suppress(workspace, "sms", customer.phone, facts["suppression"])
    if facts["device"]:
        add_device(
            customer,
            enabled=facts["device"] != "disabled",
            expires_at=at - datetime.timedelta(days=1) if facts["device"] == "expired" else None,
        )
    for channel, hours_ago, is_marketing in facts["sent"]:
        sent_message(
            customer,
            channel,
            at - datetime.timedelta(hours=hours_ago),
            kind="marketing" if is_marketing else "transactional",
        )
    return customer


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    people=st.lists(customer_facts, min_size=1, max_size=6),
    policy=policies,
    regime=st.sampled_from(["opt_in", "opt_out"]),
    workspace_zone=st.sampled_from(["UTC", "America/Mexico_City", "Asia/Kathmandu"]),
    channel=st.sampled_from(CHANNELS),
    kind=st.sampled_from(["marketing", "marketing", "marketing", "transactional"]),
    at=moments,
)
def test_python_and_sql_decide_the_same(people, policy, regime, workspace_zone, channel, kind, at):
    workspace = WorkspaceFactory(timezone=workspace_zone)
    with workspace_scope(workspace.id):
        set_regime(workspace, regime)
        start, length = policy.pop("quiet_hours_window")
        policy |= {"quiet_hours_start": quarter(start), "quiet_hours_end": quarter(start + length)}
        set_policy(workspace, **policy)
        customers = [build(workspace, index, facts, at) for index, facts in enumerate(people)]

        by_python = {
            customer.id: contact_decide(customer=customer, channel=channel, kind=kind, at=at)
            for customer in customers
        }
        by_sql = contact_decide_many(
            workspace=workspace,
            channel=channel,
            kind=kind,
            source_sql="SELECT unnest(%(ids)s::bigint[]) AS customer_id",
            source_params={"ids": [customer.id for customer in customers]},
            at=at,
        )

    for decision in by_python.values():
        event(decision.code)
    assert by_sql == by_python


def random_facts(rng: random.Random) -> dict:
    """The same space as `customer_facts`, drawn uniformly (hypothesis favours small cases)."""
    return {
        "email": rng.choice([None, "a@example.com", "a@example.com", "x"]),
        "phone": rng.choice([None, "+525512345678", "+14155550100", "5512345678"]),
        "timezone": rng.choice(ZONES),
        "consent": {p: rng.choice([None, "granted", "granted", "denied"]) for p in PURPOSES},
        "suppression": rng.choice([None] * 6 + REASONS),
        "device": rng.choice([None, "active", "active", "disabled", "expired"]),
        "sent": [
            (rng.choice(CHANNELS), rng.randint(0, 20), rng.random() < 0.8)
            for _ in range(rng.randint(0, 5))
        ],
    }


@pytest.mark.parametrize("action", ["defer", "skip"])
def test_the_forms_agree_over_many_customers_at_many_times(action):
    """Uniformly random customers, every channel and kind, at 16 times of day across a DST
    change: every decision code turns up, and the forms agree on each."""
    rng = random.Random(f"policy-{action}")
    workspace = WorkspaceFactory(timezone="America/Mexico_City")
    codes = Counter()
    with workspace_scope(workspace.id):
        set_regime(workspace, rng.choice(["opt_in", "opt_out"]))
        set_policy(
            workspace,
            frequency_caps=[
                {"channel": "email", "limit": 2, "window_hours": 24},
                {"channel": "*", "limit": 3, "window_hours": 12},
            ],
            quiet_hours_enabled=True,
            quiet_hours_start=datetime.time(21, 30),
            quiet_hours_end=datetime.time(7, 45),
            quiet_hours_action=action,
            quiet_hours_channels=["email", "push", "sms"],
        )
        # Europe changes clocks on 2026-03-29 at 01:00 UTC; New York on 2026-03-08.
        start = datetime.datetime(2026, 3, 28, 0, 7, tzinfo=UTC)
        moments = [start + datetime.timedelta(minutes=97 * step) for step in range(16)]
        customers = [build(workspace, index, random_facts(rng), start) for index in range(30)]
        for at in moments:
            for channel in CHANNELS:
                for kind in ("marketing", "transactional"):
                    by_python = {
                        customer.id: contact_decide(
                            customer=customer, channel=channel, kind=kind, at=at
                        )
                        for customer in customers
                    }
                    by_sql = contact_decide_many(
                        workspace=workspace, channel=channel, kind=kind,
                        source_sql="SELECT id AS customer_id FROM profiles_customer",
                        source_params={}, at=at,
                    )  # fmt: skip
                    assert by_sql == by_python, (at, channel, kind)
                    codes.update(decision.code for decision in by_python.values())

    quiet = "quiet_hours_deferred" if action == "defer" else "quiet_hours_skipped"
    assert set(codes) == {
        "ok", "no_address", "suppressed", "no_consent", "frequency_cap", quiet,
    }  # fmt: skip
