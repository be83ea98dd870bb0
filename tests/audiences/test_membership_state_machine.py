"""Every way membership changes, in random order: after each step each audience's `size` is
its member count, and replaying the change log from empty gives exactly today's membership
(an enter only for a non-member, an exit only for a member)."""

import io
import itertools
from collections import defaultdict

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from audiences.lists import list_upload_create, list_upload_run
from audiences.models import Audience, Membership, MembershipChange
from audiences.recalculation import audience_recalculate
from audiences.services import audience_create, audience_update, list_members_change
from masivo.pipeline import process_events_now
from masivo.tenancy.context import workspace_scope
from profiles.models import Customer, Event
from profiles.services.customers import (
    customer_delete,
    customer_erase,
    customer_update,
    customers_merge,
)
from tests.factories import CustomerFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

COUNTRIES = ["MX", "CO"]
_message_ids = itertools.count()


def _country_rule(country: str) -> dict:
    return {"version": 1, "root": {"profile": {"field": "country", "op": "eq", "value": country}}}


BUYERS_RULE = {
    "version": 1,
    "root": {
        "all": [
            {"profile": {"field": "country", "op": "eq", "value": "MX"}},
            {"event": {"name": "purchase", "count": {"op": "gte", "value": 1}}},
        ]
    },
}


class Membership_(RuleBasedStateMachine):
    customers = Bundle("customers")

    def __init__(self):
        super().__init__()
        self.workspace = WorkspaceFactory()
        self.scope = workspace_scope(self.workspace.id)
        self.scope.__enter__()
        self.country_rule = "MX"
        self.mexico = self._create("Mexico", _country_rule("MX"), realtime=True)
        self.buyers = self._create("Buyers", BUYERS_RULE, realtime=True)
        self.not_buyers = self._create(
            "Mexicans who never bought",
            {
                "version": 1,
                "root": {
                    "all": [
                        {"audience": {"id": self.mexico.id}},
                        {"audience": {"id": self.buyers.id, "in": False}},
                    ]
                },
            },
            realtime=True,
        )
        self.vip = audience_create(
            workspace=self.workspace, data={"name": "VIP", "kind": Audience.Kind.LIST}
        )
        self.rules_audiences = [self.mexico, self.buyers, self.not_buyers]

    def _create(self, name, rules, realtime):
        data = {"name": name, "rules": rules, "is_realtime": realtime}
        return audience_create(workspace=self.workspace, data=data)

    def teardown(self):
        self.scope.__exit__(None, None, None)

    @initialize(target=customers, country=st.sampled_from(COUNTRIES))
    def first_customer(self, country):
        return CustomerFactory(workspace=self.workspace, country=country).id

    @rule(target=customers, country=st.sampled_from(COUNTRIES))
    def add_customer(self, country):
        return CustomerFactory(workspace=self.workspace, country=country).id

    @rule(index=st.integers(0, 2))
    def recalculate(self, index):
        audience_recalculate(audience=self.rules_audiences[index], reason="test")

    @rule(customer=customers)
    def purchase(self, customer):
        if not Customer.objects.filter(id=customer).exists():
            return
        Event.objects.create(
            workspace=self.workspace,
            customer_id=customer,
            name="purchase",
            occurred_at=timezone.now(),
            message_id=f"m{next(_message_ids)}",
            source="test",
        )
        process_events_now(workspace=self.workspace)

    @rule(customer=customers, country=st.sampled_from(COUNTRIES))
    def move(self, customer, country):
        for found in Customer.objects.filter(id=customer):
            customer_update(customer=found, data={"country": country})
        process_events_now(workspace=self.workspace)

    @rule(customers=st.lists(customers, max_size=3), remove=st.lists(customers, max_size=2))
    def list_change(self, customers, remove):
        existing = set(Customer.objects.filter(id__in=customers).values_list("id", flat=True))
        list_members_change(
            audience=self.vip, add=sorted(existing), remove=sorted(set(remove) - existing)
        )

    @rule(customers=st.lists(customers, min_size=1, max_size=3))
    def upload(self, customers):
        emails = Customer.objects.filter(id__in=customers).values_list("email", flat=True)
        content = ("email\n" + "\n".join(emails) + "\nnobody@example.com\n").encode()
        upload = list_upload_create(
            audience=self.vip,
            upload=io.BytesIO(content),
            filename="vip.csv",
            identifier="email",
            create_missing=False,
            actor="test",
        )
        list_upload_run(list_upload=upload)

    @rule(customer=consumes(customers))
    def delete(self, customer):
        for found in Customer.objects.filter(id=customer):
            customer_delete(customer=found)

    @rule(customer=consumes(customers))
    def erase(self, customer):
        for found in Customer.objects.filter(id=customer):
            customer_erase(customer=found, actor="test")

    @rule(winner=customers, loser=consumes(customers))
    def merge(self, winner, loser):
        found = {c.id: c for c in Customer.objects.filter(id__in=[winner, loser])}
        if winner != loser and len(found) == 2:
            customers_merge(winner=found[winner], loser=found[loser], reason="test", actor="test")

    @rule()
    def edit_rules(self):
        self.country_rule = "CO" if self.country_rule == "MX" else "MX"
        audience_update(audience=self.mexico, data={"rules": _country_rule(self.country_rule)})

    @invariant()
    def sizes_are_member_counts_and_the_log_replays_to_the_membership(self):
        audiences = [*self.rules_audiences, self.vip]
        members = defaultdict(set)
        for audience_id, customer_id in Membership.objects.values_list(
            "audience_id", "customer_id"
        ):
            members[audience_id].add(customer_id)
        replayed = defaultdict(set)
        for audience_id, customer_id, kind in MembershipChange.objects.order_by("id").values_list(
            "audience_id", "customer_id", "kind"
        ):
            if kind == "enter":
                assert customer_id not in replayed[audience_id], "entered twice"
                replayed[audience_id].add(customer_id)
            else:
                assert customer_id in replayed[audience_id], "left without being in"
                replayed[audience_id].remove(customer_id)
        sizes = dict(Audience.objects.values_list("id", "size"))
        for audience in audiences:
            assert sizes[audience.id] == len(members[audience.id])
            assert replayed[audience.id] == members[audience.id]


def test_membership_stays_consistent_whatever_happens():
    run_state_machine_as_test(
        Membership_,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
