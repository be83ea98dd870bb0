"""`memberships_apply_many`: several audiences' differences in one statement, with exactly
`membership_apply`'s effects (members, change rows, sizes, real changes only), and real time
writing a batch's differences with it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audiences.membership import CAUSE_REALTIME, memberships_apply_many
from audiences.models import Audience, Membership, MembershipChange
from audiences.realtime import realtime_memberships_update
from masivo.tenancy.context import workspace_scope
from tests.audiences.test_agreement import NOW, realtime_audience
from tests.audiences.test_realtime_set_based import tracked
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def members(audience) -> set[int]:
    return set(Membership.objects.filter(audience=audience).values_list("customer_id", flat=True))


def test_several_audiences_move_in_one_statement_counting_only_real_changes(workspace):
    with workspace_scope(workspace.id):
        a, b, c = (CustomerFactory(workspace=workspace) for _ in range(3))
        first = realtime_audience(workspace, "first", {"event": {"name": "x"}}, {}, [a.id])
        second = realtime_audience(workspace, "second", {"event": {"name": "y"}}, {}, [b.id])
        untouched = realtime_audience(workspace, "third", {"event": {"name": "z"}}, {}, [c.id])
        before = MembershipChange.objects.count()

        with CaptureQueriesContext(connection) as queries:
            results = memberships_apply_many(
                workspace_id=workspace.id,
                changes={
                    # b enters, a is already in (no change); c was never in (no change).
                    first.id: ({a.id, b.id}, {c.id}),
                    # a enters, b leaves.
                    second.id: ({a.id}, {b.id}),
                    untouched.id: (set(), set()),
                },
                cause=CAUSE_REALTIME,
                now=NOW,
            )

        assert results == {first.id: (1, 0), second.id: (1, 1), untouched.id: (0, 0)}
        assert len(queries) == 2  # the audiences' locks, then the write
        assert members(first) == {a.id, b.id}
        assert members(second) == {a.id}
        assert members(untouched) == {c.id}
        sizes = dict(Audience.objects.values_list("id", "size"))
        assert (sizes[first.id], sizes[second.id], sizes[untouched.id]) == (2, 1, 1)
        logged = sorted(
            MembershipChange.objects.order_by("id")[before:].values_list(
                "audience_id", "customer_id", "kind", "source", "reason"
            )
        )
        assert logged == sorted(
            [
                (first.id, b.id, "enter", CAUSE_REALTIME.source, CAUSE_REALTIME.enter_reason),
                (second.id, a.id, "enter", CAUSE_REALTIME.source, CAUSE_REALTIME.enter_reason),
                (second.id, b.id, "exit", CAUSE_REALTIME.source, CAUSE_REALTIME.exit_reason),
            ]
        )


def test_locked_callers_skip_the_lock_statement_and_nothing_to_do_is_no_statement(workspace):
    with workspace_scope(workspace.id):
        a = CustomerFactory(workspace=workspace)
        first = realtime_audience(workspace, "first", {"event": {"name": "x"}}, {}, [])
        with CaptureQueriesContext(connection) as queries:
            assert memberships_apply_many(
                workspace_id=workspace.id,
                changes={first.id: ({a.id}, set())},
                cause=CAUSE_REALTIME,
                now=NOW,
                locked=True,
            ) == {first.id: (1, 0)}
            assert memberships_apply_many(
                workspace_id=workspace.id,
                changes={first.id: (set(), set())},
                cause=CAUSE_REALTIME,
                now=NOW,
            ) == {first.id: (0, 0)}
        assert len(queries) == 1


def test_a_customer_cannot_enter_and_leave_one_audience_at_once(workspace):
    with workspace_scope(workspace.id):
        a = CustomerFactory(workspace=workspace)
        first = realtime_audience(workspace, "first", {"event": {"name": "x"}}, {}, [])
        with pytest.raises(ValueError, match="both enter and leave"):
            memberships_apply_many(
                workspace_id=workspace.id,
                changes={first.id: ({a.id}, {a.id})},
                cause=CAUSE_REALTIME,
                now=NOW,
            )


def test_a_purchase_moving_three_audiences_is_written_by_one_statement(workspace):
    """Real time: the lock, the judgement, one write (it was a lock and a write for each)."""
    with workspace_scope(workspace.id):
        buyer = CustomerFactory(workspace=workspace)
        tracked(workspace, buyer, "purchase")
        audiences = [
            realtime_audience(workspace, f"buyers {n}", {"event": {"name": "purchase"}}, {}, [])
            for n in range(3)
        ]
        realtime_memberships_update(workspace=workspace, changes={buyer.id: {"event:x"}}, now=NOW)
        with CaptureQueriesContext(connection) as queries:
            results = realtime_memberships_update(
                workspace=workspace, changes={buyer.id: {"event:purchase"}}, now=NOW
            )
        assert results == {audience.id: (1, 0) for audience in audiences}
        writes = [q for q in queries if "audiences_membershipchange" in q["sql"]]
        assert len(writes) == 1
        assert all(members(audience) == {buyer.id} for audience in audiences)
