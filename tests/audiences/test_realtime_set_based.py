"""Real time judges a batch set-based (`Compiler`'s rules restricted to the batch's customers,
audiences.rules.batch), and must write exactly what the per-customer evaluator would.

Hypothesis plants two workspaces (test_agreement's customers, events, devices, consent and an
uploaded list `other`), two real-time audiences per workspace from random rule trees (the
companion may reference the main one), a random starting membership, and random changed keys
per customer. From that same state, in turn:
- the per-customer path: `audiences_reevaluate` with the audiences and the customers concerned
  exactly as real time selects them (dependencies matching the changed keys),
- the set-based path: `realtime_memberships_update` with the changes,
and both must leave the same members in each audience and report the same entered/exited.
"""

import pytest
from django.db import ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences.membership import CAUSE_REALTIME
from audiences.models import Audience, Membership
from audiences.realtime import audiences_reevaluate, realtime_memberships_update
from audiences.realtime_cache import realtime_index_forget
from masivo.tenancy.context import workspace_scope
from profiles.changes import ANYTHING
from profiles.models import Event
from tests.audiences.test_agreement import (
    COMPANIONS,
    CUSTOMERS,
    NOW,
    TREES,
    plant,
    realtime_audience,
)
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

# Keys the planted rules can depend on, and some they never do.
KEYS = st.one_of(
    st.just({ANYTHING}),
    st.sets(
        st.sampled_from(
            [
                "event:purchase", "event:view", "event:signup", "event:other", "field:country",
                "field:city", "field:is_anonymous", "traits:plan", "traits:score",
                "traits:nested", "tags:vip", "consent:email_marketing", "device", "metrics",
            ]
        ),
        min_size=1,
        max_size=4,
    ),
)  # fmt: skip


def memberships(audiences) -> dict[str, set[int]]:
    return {
        audience.name: set(
            Membership.objects.filter(audience=audience).values_list("customer_id", flat=True)
        )
        for audience in audiences
    }


def per_customer(workspace, audiences, changes):
    """What real time did before it was set-based: the evaluator, for the concerned."""
    concerned = {
        audience.id: {
            customer_id
            for customer_id, keys in changes.items()
            if ANYTHING in keys or keys & set(audience.dependencies)
        }
        for audience in audiences
    }
    touched = [audience for audience in audiences if concerned[audience.id]]
    dependents = [a for a in audiences if set(a.depends_on) & {t.id for t in touched}]
    judged = sorted({*touched, *dependents}, key=lambda audience: audience.id)
    return audiences_reevaluate(
        workspace=workspace,
        audiences=judged,
        customer_ids=sorted(changes),
        concerned=concerned,
        cause=CAUSE_REALTIME,
        now=NOW,
    )


@settings(
    max_examples=100,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    people=st.lists(CUSTOMERS, min_size=1, max_size=8),
    tree=TREES,
    companion=COMPANIONS,
    opt_outs=st.tuples(st.booleans(), st.booleans()),
    keys=st.lists(KEYS, min_size=8, max_size=8),
)
def test_set_based_real_time_writes_what_the_evaluator_decides(
    workspace, other_workspace, people, tree, companion, opt_outs, keys
):
    realtime_index_forget()
    with transaction.atomic():
        for index, here in enumerate([workspace, other_workspace]):
            with workspace_scope(here.id):
                mine = [(n, p) for n, p in enumerate(people) if p["workspace"] == index]
                planted = plant(here, mine, opt_out=opt_outs[index])
                other = Audience.objects.get(name="other")
                main = realtime_audience(
                    here, "main", tree, {"other": other.id}, planted.was_in["main"]
                )
                second = realtime_audience(
                    here,
                    "companion",
                    companion,
                    {"other": other.id, "main": main.id},
                    planted.was_in["companion"],
                )
                audiences = [main, second]
                changes = {
                    customer_id: changed
                    for customer_id, changed in zip(planted.ids, keys, strict=False)
                    if changed
                }
                with transaction.atomic():
                    expected = per_customer(here, audiences, changes)
                    expected_members = memberships(audiences)
                    transaction.set_rollback(True)
                answered = realtime_memberships_update(workspace=here, changes=changes, now=NOW)
                assert memberships(audiences) == expected_members
                judged = {id_: counts for id_, counts in answered.items() if counts != (0, 0)}
                assert judged == {id_: c for id_, c in expected.items() if c != (0, 0)}
        transaction.set_rollback(True)


def tracked(workspace, customer, *names):
    Event.objects.bulk_create(
        Event(workspace=workspace, customer=customer, name=name, occurred_at=NOW,
              message_id=f"{customer.id}-{index}", source="test")
        for index, name in enumerate(names)
    )  # fmt: skip


@pytest.mark.parametrize("name", ["50% off", "it's", "back\\slash", "%(p0)s", "ñandú 🛒"])
def test_event_names_are_written_into_the_statement_safely(workspace, name):
    with workspace_scope(workspace.id):
        buyer = CustomerFactory(workspace=workspace)
        tracked(workspace, buyer, name, name + "x")
        audience = realtime_audience(workspace, "named", {"event": {"name": name}}, {}, ())
        changes = {buyer.id: {f"event:{name}"}}
        # Prepared the first time, executed again the second.
        answers = [
            realtime_memberships_update(workspace=workspace, changes=changes, now=NOW)
            for _ in range(2)
        ]
        assert answers == [{audience.id: (1, 0)}, {audience.id: (0, 0)}]
        assert list(Membership.objects.values_list("customer_id", flat=True)) == [buyer.id]


def test_a_prepared_statement_dropped_behind_its_back_fails_once_then_works(workspace):
    with workspace_scope(workspace.id):
        buyer = CustomerFactory(workspace=workspace)
        tracked(workspace, buyer, "purchase")
        audience = realtime_audience(workspace, "buyers", {"event": {"name": "purchase"}}, {}, ())
        changes = {buyer.id: {"event:purchase"}}
        assert realtime_memberships_update(workspace=workspace, changes=changes, now=NOW) == {
            audience.id: (1, 0)
        }
        with connection.cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")  # what a pooler's DISCARD ALL would do
        with pytest.raises(ProgrammingError), transaction.atomic():
            realtime_memberships_update(workspace=workspace, changes=changes, now=NOW)
        assert realtime_memberships_update(workspace=workspace, changes=changes, now=NOW) == {
            audience.id: (0, 0)
        }


def test_without_prepared_statements_the_same_is_written(workspace, settings):
    settings.MASIVO_REALTIME_PREPARED_STATEMENTS = False
    with workspace_scope(workspace.id):
        buyer = CustomerFactory(workspace=workspace)
        tracked(workspace, buyer, "purchase", "50% off")
        audience = realtime_audience(
            workspace, "buyers", {"all": [{"event": {"name": "purchase"}},
                                          {"event": {"name": "50% off"}}]}, {}, ()
        )  # fmt: skip
        changes = {buyer.id: {"event:purchase"}}
        with CaptureQueriesContext(connection) as queries:
            assert realtime_memberships_update(workspace=workspace, changes=changes, now=NOW) == {
                audience.id: (1, 0)
            }
        assert not [q for q in queries if q["sql"].startswith(("PREPARE", "EXECUTE"))]


@pytest.mark.parametrize(("is_member", "companion_after"), [(True, "buyer"), (False, "lapsed")])
def test_an_audience_made_only_of_references_is_judged_on_the_moved_membership(
    workspace, is_member, companion_after
):
    """The buyer enters `main` and the lapsed customer leaves it, in the same batch."""
    with workspace_scope(workspace.id):
        buyer, lapsed = CustomerFactory(workspace=workspace), CustomerFactory(workspace=workspace)
        tracked(workspace, buyer, "purchase")
        main = realtime_audience(
            workspace, "main", {"event": {"name": "purchase"}}, {}, [lapsed.id]
        )
        companion = realtime_audience(
            workspace,
            "companion",
            {"all": [{"audience": {"id": "main", "in": is_member}}]},
            {"main": main.id},
            [buyer.id] if is_member else [lapsed.id],
        )
        audiences = [main, companion]
        changes = {buyer.id: {"event:purchase"}, lapsed.id: {"event:purchase"}}
        with transaction.atomic():
            expected = per_customer(workspace, audiences, changes)
            expected_members = memberships(audiences)
            transaction.set_rollback(True)
        with CaptureQueriesContext(connection) as queries:
            answered = realtime_memberships_update(workspace=workspace, changes=changes, now=NOW)
        assert (answered, memberships(audiences)) == (expected, expected_members)
        after = {"buyer": buyer.id, "lapsed": lapsed.id}[companion_after]
        assert expected_members == {"main": {buyer.id}, "companion": {after}}
        # The companion was judged again in Python: one evaluation statement in all.
        assert len([q for q in queries if "_rt_members" in q["sql"]]) == 1
