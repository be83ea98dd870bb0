"""Behaviour docs/audiences.md states that no other test pins, each on both implementations (the
compiled statement and the evaluator on loaded facts) or in validation."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from audiences.facts import facts_for_customers
from audiences.recalculation import compiler_for_workspace
from audiences.rules.ast import InvalidRules, parse_rules
from audiences.rules.evaluator import Evaluator
from masivo.tenancy.context import workspace_scope
from profiles.models import Customer, Event
from profiles.services.customers import customer_upsert

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def verdicts(workspace, customer, root) -> tuple[bool, bool]:
    """(compiled, evaluated) for one customer, inside the workspace's scope."""
    rules = parse_rules({"version": 1, "root": root})
    sql, params = compiler_for_workspace(workspace=workspace, now=NOW).members_sql(rules)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        compiled = customer.id in {row[0] for row in cursor.fetchall()}
    facts = facts_for_customers(workspace=workspace, rules=rules, customer_ids=[customer.id])
    return compiled, Evaluator(rules, now=NOW).matches(facts[customer.id])


def profile(field, op, value):
    return {"profile": {"field": field, "op": op, "value": value}}


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        (profile("traits.labels", "contains", "vip"), False),  # an array is not text
        (profile("traits.labels", "starts_with", "vip"), False),
        (profile("traits.labels", "ends_with", "vip"), False),
        (profile("traits.name", "contains", "vi"), True),  # a string is
        (profile("traits.address", "contains", "vip"), False),  # nor is an object
    ],
)
def test_text_operators_on_json_arrays_and_objects_are_false(workspace, root, expected):
    with workspace_scope(workspace.id):
        customer = Customer.objects.create(
            workspace=workspace,
            external_id="c1",
            traits={"labels": ["vip"], "name": "vip", "address": {"zip": "vip"}},
        )
        assert verdicts(workspace, customer, root) == (expected, expected)


BIRTH = date(1990, 5, 4)
SEEN = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        (profile("birth_date", "before", "1990-05-04"), False),  # the same day: strict
        (profile("birth_date", "after", "1990-05-04"), False),
        (profile("birth_date", "before", "1990-05-05"), True),
        (profile("last_seen_at", "before", "2026-06-01T09:30:00Z"), False),
        (profile("last_seen_at", "after", "2026-06-01T09:30:00Z"), False),
        (profile("last_seen_at", "after", "2026-06-01T09:29:59Z"), True),
        (
            {"event": {"name": "purchase", "first": {"op": "after", "value": "2026-06-01T09:30Z"}}},
            False,
        ),
        (
            {"event": {"name": "purchase", "last": {"op": "before", "value": "2026-06-01T09:30Z"}}},
            False,
        ),
    ],
)
def test_before_and_after_are_strict(workspace, root, expected):
    with workspace_scope(workspace.id):
        customer = Customer.objects.create(
            workspace=workspace, external_id="c1", birth_date=BIRTH, last_seen_at=SEEN
        )
        Event.objects.create(
            workspace=workspace,
            customer=customer,
            name="purchase",
            occurred_at=SEEN,
            message_id="m1",
            source="test",
        )
        assert verdicts(workspace, customer, root) == (expected, expected)


@pytest.mark.parametrize(
    ("at", "expected"),
    [(SEEN, True), (SEEN + timedelta(hours=1), False), (SEEN - timedelta(microseconds=1), False)],
)
def test_a_between_window_includes_its_start_and_excludes_its_end(workspace, at, expected):
    root = {
        "event": {
            "name": "purchase",
            "within": {"between": ["2026-06-01T09:30:00Z", "2026-06-01T10:30:00Z"]},
        }
    }
    with workspace_scope(workspace.id):
        customer = Customer.objects.create(workspace=workspace, external_id="c1")
        Event.objects.create(
            workspace=workspace,
            customer=customer,
            name="purchase",
            occurred_at=at,
            message_id="m1",
            source="test",
        )
        assert verdicts(workspace, customer, root) == (expected, expected)


@pytest.mark.parametrize(
    ("root", "error"),
    [
        (
            profile("last_seen_at", "within_last", 36501),
            ("$.root.profile.value", "must be a whole number of days between 1 and 36500"),
        ),
        (
            profile("birth_date", "within_next", 36501),
            ("$.root.profile.value", "must be a whole number of days between 1 and 36500"),
        ),
        (
            {"event": {"name": "purchase", "within": {"last": 36501, "unit": "days"}}},
            ("$.root.event.within.last", "a whole number > 0 (at most 100 years)"),
        ),
        (
            {"event": {"name": "purchase", "within": {"between": ["2026-06-01", "2026-06-01"]}}},
            ("$.root.event.within.between", "the start must be before the end"),
        ),
        (
            profile("metrics.purchase_count", "between", [3, 2]),
            ("$.root.profile.value", "the low value is greater than the high one"),
        ),
    ],
)
def test_day_counts_above_36500_and_empty_ranges_are_refused(root, error):
    with pytest.raises(InvalidRules) as raised:
        parse_rules({"version": 1, "root": root})
    assert raised.value.errors == [error]


def test_the_largest_day_count_is_accepted():
    parse_rules({"version": 1, "root": profile("last_seen_at", "within_last", 36500)})
    within = {"last": 36500, "unit": "days"}
    parse_rules({"version": 1, "root": {"event": {"name": "purchase", "within": within}}})


def test_text_fields_are_stored_trimmed(workspace):
    with workspace_scope(workspace.id):
        customer, _ = customer_upsert(
            workspace=workspace,
            data={"external_id": " c1 ", "city": "  Monterrey ", "tier": " gold\t"},
        )
        assert (customer.external_id, customer.city, customer.tier) == ("c1", "Monterrey", "gold")
        assert verdicts(workspace, customer, profile("city", "eq", "Monterrey")) == (True, True)
        assert verdicts(workspace, customer, profile("city", "eq", " Monterrey")) == (False, False)


def test_a_customer_created_without_a_status_is_active(workspace):
    with workspace_scope(workspace.id):
        customer, _ = customer_upsert(
            workspace=workspace, data={"external_id": "c1", "traits": {"plan": "free"}}
        )
        assert customer.status == "active"
        assert verdicts(workspace, customer, profile("status", "eq", "active")) == (True, True)


def test_an_identify_status_trait_is_a_trait_and_leaves_the_status_active(tracking, workspace):
    response = tracking.post(
        "identify", {"userId": "u1", "traits": {"status": "inactive"}, "messageId": "1"}
    )
    assert response.status_code == 200
    with workspace_scope(workspace.id):
        customer = Customer.objects.get(external_id="u1")
        assert (customer.status, customer.traits) == ("active", {"status": "inactive"})
        assert verdicts(workspace, customer, profile("status", "eq", "active")) == (True, True)
