"""Real time reacts to every kind of dependency a rule can have, whichever way the change came
in, and re-evaluates only the audiences that depend on what changed."""

import io

import pytest

from audiences.models import Audience, Membership, MembershipChange
from audiences.services import audience_create
from masivo.pipeline import process_events_now
from masivo.tenancy.context import workspace_scope
from profiles.imports import customer_import_create, customer_import_process
from profiles.models import Customer, ProfileChange
from profiles.services.customers import customers_merge
from tests.factories import CustomerFactory
from tests.profiles.helpers import send

pytestmark = pytest.mark.django_db

IPHONE = {"platform": "ios", "model": "iPhone15,2", "osVersion": "17.1"}


def rules(root) -> dict:
    return {"version": 1, "root": root}


def profile(field, op, value) -> dict:
    return {"profile": {"field": field, "op": op, "value": value}}


def make(workspace, name, root) -> Audience:
    with workspace_scope(workspace.id):
        return audience_create(
            workspace=workspace, data={"name": name, "rules": rules(root), "is_realtime": True}
        )


def follow_up(workspace) -> None:
    with workspace_scope(workspace.id):
        process_events_now(workspace=workspace)


def members(workspace, audience) -> list[int]:
    with workspace_scope(workspace.id):
        return sorted(
            Membership.objects.filter(audience=audience).values_list("customer_id", flat=True)
        )


def changes(workspace, audience) -> list[tuple]:
    with workspace_scope(workspace.id):
        return list(
            MembershipChange.objects.filter(audience=audience)
            .order_by("id")
            .values_list("kind", "customer_id", "source", "reason")
        )


@pytest.fixture
def ana(workspace) -> Customer:
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, external_id="ana", country="CO")


def test_a_metric_threshold_crossed_by_a_purchase(workspace, tracking):
    loyal = make(workspace, "Loyal", profile("metrics.purchase_count", "gte", 2))
    for message_id in ("1", "2"):
        tracking.post("track", {"userId": "u1", "event": "purchase", "messageId": message_id})
        follow_up(workspace)
        if message_id == "1":
            assert members(workspace, loyal) == []
    with workspace_scope(workspace.id):
        buyer = Customer.objects.get(external_id="u1")
    assert members(workspace, loyal) == [buyer.id]
    assert changes(workspace, loyal) == [("enter", buyer.id, "realtime", "matches")]


def test_a_decimal_metric_threshold(workspace, tracking):
    big = make(workspace, "Big spenders", profile("metrics.purchase_total", "gt", 99.5))
    tracking.post(
        "track",
        {"userId": "u1", "event": "purchase", "messageId": "1", "properties": {"value": 99.75}},
    )
    follow_up(workspace)
    with workspace_scope(workspace.id):
        assert members(workspace, big) == [Customer.objects.get(external_id="u1").id]


def test_consent_withdrawn_through_the_api(workspace, api, ana):
    reachable = make(
        workspace, "Reachable", {"consent": {"purpose": "email_marketing", "allowed": True}}
    )
    url = f"/api/v1/customers/{ana.id}/consent"
    send(api, "patch", url, {"consent": {"email_marketing": "granted"}})
    follow_up(workspace)
    assert members(workspace, reachable) == [ana.id]

    send(api, "patch", url, {"consent": {"email_marketing": "denied"}})
    follow_up(workspace)

    assert members(workspace, reachable) == []
    assert changes(workspace, reachable) == [
        ("enter", ana.id, "realtime", "matches"),
        ("exit", ana.id, "realtime", "no_longer_matches"),
    ]


def test_a_device_registered_and_removed(workspace, api, ana):
    pushable = make(workspace, "Pushable", {"device": {"has_active": True, "platform": "ios"}})
    url = f"/api/v1/customers/{ana.id}/devices"
    response = send(api, "patch", url, {"device_token": "t-1", "device_info": IPHONE})
    assert response.status_code == 200
    follow_up(workspace)
    assert members(workspace, pushable) == [ana.id]

    assert api.delete(f"{url}?device_token=t-1").status_code == 204
    follow_up(workspace)
    assert members(workspace, pushable) == []


def test_a_trait_edited_through_the_rest_api(workspace, api, ana):
    gold = make(workspace, "Gold", profile("traits.plan.name", "eq", "gold"))
    response = send(
        api, "patch", f"/api/v1/customers/{ana.id}", {"traits": {"plan": {"name": "gold"}}}
    )
    assert response.status_code == 200

    follow_up(workspace)

    assert members(workspace, gold) == [ana.id]
    with workspace_scope(workspace.id):
        [change] = ProfileChange.objects.filter(customer_id=ana.id, source="customers")
    assert (change.kind, change.keys) == ("updated", ["field:updated_at", "traits:plan"])
    assert change.processed_at is not None


def test_a_csv_import_row(workspace, ana):
    mexico = make(workspace, "Mexico", profile("country", "eq", "MX"))
    content = b"external_id,country\nana,MX\nbeto,MX\ncarla,CO\n"
    with workspace_scope(workspace.id):
        customer_import = customer_import_create(
            workspace=workspace,
            upload=io.BytesIO(content),
            filename="people.csv",
            mapping={"external_id": "external_id", "country": "country"},
            match_by="external_id",
            actor="test",
        )
        customer_import_process(customer_import=customer_import)
        ids = dict(Customer.objects.values_list("external_id", "id"))
    follow_up(workspace)
    assert members(workspace, mexico) == sorted([ids["ana"], ids["beto"]])


def test_a_merge_moves_the_loser_s_purchases_to_the_winner(workspace, tracking, ana):
    loyal = make(workspace, "Loyal", profile("metrics.purchase_count", "gte", 1))
    tracking.post("track", {"userId": "u9", "event": "purchase", "messageId": "1"})
    follow_up(workspace)
    with workspace_scope(workspace.id):
        loser = Customer.objects.get(external_id="u9")
        customers_merge(winner=ana, loser=loser, reason="test", actor="test")
    follow_up(workspace)
    assert members(workspace, loyal) == [ana.id]
    assert changes(workspace, loyal) == [
        ("enter", loser.id, "realtime", "matches"),
        ("exit", loser.id, "merge", "merged"),
        ("enter", ana.id, "merge", "matches"),
    ]


def test_a_referenced_audience_entered_is_seen_by_the_audiences_that_reference_it(
    workspace, api, ana
):
    mexico = make(workspace, "Mexico", profile("country", "eq", "MX"))
    # Made before `mexico` would be evaluated: ids no longer say the order, dependencies do.
    not_in_mexico = make(workspace, "Not in Mexico", {"audience": {"id": mexico.id, "in": False}})
    follow_up(workspace)
    with workspace_scope(workspace.id):
        Customer.objects.filter(id=ana.id).update(tier="gold")
    vip_mexico = make(
        workspace,
        "VIP Mexico",
        {"all": [{"audience": {"id": mexico.id}}, profile("tier", "eq", "gold")]},
    )

    send(api, "patch", f"/api/v1/customers/{ana.id}", {"country": "MX"})
    follow_up(workspace)

    assert members(workspace, mexico) == [ana.id]
    assert members(workspace, vip_mexico) == [ana.id]
    assert members(workspace, not_in_mexico) == []


def test_only_the_audiences_depending_on_what_changed_are_evaluated(workspace, api, ana):
    gold = make(workspace, "Gold", profile("tier", "eq", "gold"))
    mexico = make(workspace, "Mexico", profile("country", "eq", "MX"))
    with workspace_scope(workspace.id):
        Customer.objects.filter(id=ana.id).update(tier="gold")  # behind the outbox's back

    send(api, "patch", f"/api/v1/customers/{ana.id}", {"country": "MX"})
    follow_up(workspace)

    assert members(workspace, mexico) == [ana.id]
    assert members(workspace, gold) == []  # not re-evaluated: tier did not change by any writer


def test_a_lost_wake_up_is_caught_by_the_sweep(workspace, api, ana, settings):
    from datetime import timedelta

    from django.utils import timezone

    from profiles.followup import workspaces_with_stale_events

    make(workspace, "Mexico", profile("country", "eq", "MX"))
    send(api, "patch", f"/api/v1/customers/{ana.id}", {"country": "MX"})
    later = timezone.now() + timedelta(minutes=5)
    with workspace_scope(workspace.id):
        assert workspace.id in workspaces_with_stale_events(
            older_than=timedelta(minutes=1), now=later
        )
