"""Customers deleted, erased or merged leave every audience with an exit row that says why."""

import pytest

from audiences.models import Audience, Membership, MembershipChange
from audiences.recalculation import audience_recalculate
from audiences.services import audience_create, list_members_change
from masivo.tenancy.context import workspace_scope
from profiles.services.customers import customer_delete, customer_erase, customers_merge
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

MEXICO = {"version": 1, "root": {"profile": {"field": "country", "op": "eq", "value": "MX"}}}
PAID = {"version": 1, "root": {"profile": {"field": "tier", "op": "eq", "value": "paid"}}}


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        yield workspace


@pytest.fixture
def mexico(scope):
    return audience_create(workspace=scope, data={"name": "Mexico", "rules": MEXICO})


@pytest.fixture
def vip(scope):
    return audience_create(workspace=scope, data={"name": "VIP", "kind": "list"})


def changes(audience) -> list[tuple]:
    return list(
        MembershipChange.objects.filter(audience=audience)
        .order_by("id")
        .values_list("kind", "customer_id", "source", "reason")
    )


def sizes(*audiences) -> list[int]:
    return [Audience.objects.get(id=a.id).size for a in audiences]


@pytest.mark.parametrize(
    ("remove", "reason"),
    [
        (lambda customer: customer_delete(customer=customer), "deleted"),
        (lambda customer: customer_erase(customer=customer, actor="test"), "erased"),
    ],
)
def test_a_removed_customer_leaves_every_audience_with_the_reason(
    scope, mexico, vip, remove, reason
):
    ana = CustomerFactory(workspace=scope, country="MX")
    beto = CustomerFactory(workspace=scope, country="MX")
    audience_recalculate(audience=mexico, reason="test")
    list_members_change(audience=vip, add=[ana.id, beto.id], remove=[], actor="test")

    remove(ana)

    logged = changes(mexico)
    assert sorted(logged[:2]) == [
        ("enter", ana.id, "recalculation", "matches"),
        ("enter", beto.id, "recalculation", "matches"),
    ]
    assert logged[2:] == [("exit", ana.id, "removal", reason)]
    assert changes(vip)[-1] == ("exit", ana.id, "removal", reason)
    assert sizes(mexico, vip) == [1, 1]
    assert list(Membership.objects.values_list("customer_id", flat=True).distinct()) == [beto.id]


def test_a_merge_keeps_lists_on_the_winner_and_judges_the_winner_again(scope, mexico, vip):
    paid = audience_create(workspace=scope, data={"name": "Paid", "rules": PAID})
    winner = CustomerFactory(workspace=scope, country="", tier="paid")
    loser = CustomerFactory(workspace=scope, country="MX", tier="")
    for audience in (mexico, paid):
        audience_recalculate(audience=audience, reason="test")
    list_members_change(audience=vip, add=[loser.id], remove=[], actor="test")

    customers_merge(winner=winner, loser=loser, reason="test", actor="test")

    assert changes(vip) == [
        ("enter", loser.id, "list", "added"),
        ("enter", winner.id, "merge", "merged"),
        ("exit", loser.id, "merge", "merged"),
    ]
    assert changes(mexico) == [
        ("enter", loser.id, "recalculation", "matches"),
        ("exit", loser.id, "merge", "merged"),
        ("enter", winner.id, "merge", "matches"),  # the loser's country filled the blank
    ]
    assert changes(paid) == [("enter", winner.id, "recalculation", "matches")]
    assert sizes(mexico, paid, vip) == [1, 1, 1]
    assert sorted(Membership.objects.values_list("audience_id", "customer_id", "source")) == [
        (mexico.id, winner.id, "merge"),
        (vip.id, winner.id, "list"),
        (paid.id, winner.id, "recalculation"),
    ]
