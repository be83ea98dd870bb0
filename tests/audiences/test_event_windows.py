"""An event window `{"last": N}` ends at now (inclusive, like `within_last`): an event stamped
ahead of the clock (tracking accepts up to five minutes) is outside it, on every path."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audiences.models import Membership
from audiences.recalculation import audience_recalculate, compiler_for_workspace
from audiences.rules.ast import parse_rules
from audiences.rules.evaluator import Evaluator, Facts
from audiences.services import audience_create
from masivo.pipeline import process_events_now
from masivo.tenancy.context import workspace_scope
from profiles.models import Customer, Event
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

LAST_48_HOURS = {
    "version": 1,
    "root": {"event": {"name": "purchase", "within": {"last": 48, "unit": "hours"}}},
}
# (minutes from now the purchase is stamped at, whether the window holds it)
STAMPS = [(3, False), (-3, True)]


def bought(workspace, minutes: int) -> Customer:
    with workspace_scope(workspace.id):
        customer = CustomerFactory(workspace=workspace, external_id="buyer")
        Event.objects.create(
            workspace=workspace,
            customer=customer,
            name="purchase",
            occurred_at=timezone.now() + timedelta(minutes=minutes),
            message_id="m1",
            source="test",
        )
    return customer


def member_external_ids(workspace, audience):
    with workspace_scope(workspace.id):
        return list(
            Membership.objects.filter(audience=audience).values_list(
                "customer__external_id", flat=True
            )
        )


@pytest.mark.parametrize(("minutes", "counts"), STAMPS)
def test_recalculation(workspace, minutes, counts):
    bought(workspace, minutes)
    with workspace_scope(workspace.id):
        audience = audience_create(
            workspace=workspace, data={"name": "Recent buyers", "rules": LAST_48_HOURS}
        )
        audience_recalculate(audience=audience, reason="test")
    assert member_external_ids(workspace, audience) == (["buyer"] if counts else [])


@pytest.mark.parametrize(("minutes", "counts"), STAMPS)
def test_preview(api, workspace, minutes, counts):
    bought(workspace, minutes)
    response = api.post(
        "/api/v1/audiences/preview", {"rules": LAST_48_HOURS}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["count"] == (1 if counts else 0)


@pytest.mark.parametrize(("minutes", "counts"), STAMPS)
def test_explain(api, workspace, minutes, counts):
    customer = bought(workspace, minutes)
    with workspace_scope(workspace.id):
        audience = audience_create(
            workspace=workspace, data={"name": "Recent buyers", "rules": LAST_48_HOURS}
        )
    response = api.get(f"/api/v1/audiences/{audience.id}/explain?customer_id={customer.id}")
    assert response.status_code == 200
    assert response.json()["matches"] is counts
    assert response.json()["explanation"] == {
        "node": "event",
        "result": counts,
        "event": "purchase",
        "count": 1 if counts else 0,
        "count_test": {"op": "gte", "value": 1},
    }


@pytest.mark.parametrize(("minutes", "counts"), STAMPS)
def test_real_time(tracking, workspace, minutes, counts):
    with workspace_scope(workspace.id):
        audience = audience_create(
            workspace=workspace,
            data={"name": "Recent buyers", "rules": LAST_48_HOURS, "is_realtime": True},
        )
    stamp = timezone.now() + timedelta(minutes=minutes)
    response = tracking.post(
        "track",
        {
            "userId": "buyer",
            "event": "purchase",
            "messageId": "m1",
            "timestamp": stamp.isoformat().replace("+00:00", "Z"),
        },
    )
    assert response.status_code == 200
    with workspace_scope(workspace.id):
        assert Event.objects.get().occurred_at == stamp  # kept: within the tolerance
        process_events_now(workspace=workspace)
    assert member_external_ids(workspace, audience) == (["buyer"] if counts else [])


NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "counts"),
    [
        (NOW - timedelta(hours=48), True),  # the start is inside
        (NOW, True),  # so is the end: now
        (NOW + timedelta(microseconds=1), False),
        (NOW - timedelta(hours=48, microseconds=1), False),
    ],
)
def test_both_sides_bound_the_window_the_same(workspace, at, counts):
    rules = parse_rules(LAST_48_HOURS)
    events = [("purchase", {}, at)]
    assert Evaluator(rules, now=NOW).matches(Facts(profile={}, events=events)) is counts
    with workspace_scope(workspace.id):
        customer = CustomerFactory(workspace=workspace, external_id="buyer")
        Event.objects.create(
            workspace=workspace,
            customer=customer,
            name="purchase",
            occurred_at=at,
            message_id="m1",
            source="test",
        )
        sql, params = compiler_for_workspace(workspace=workspace, now=NOW).members_sql(rules)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            assert [row[0] for row in cursor.fetchall()] == ([customer.id] if counts else [])
