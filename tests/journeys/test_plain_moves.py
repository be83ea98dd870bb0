"""The tick's set-based moves (journeys.batch) write what the engine writes: the same journey
walked by `advance_due` and by `journeys.engine.advance` one enrollment at a time ends with
the same enrollment and the same step log; what needs the engine (a resolved wait, a send, a
removed customer, a paused journey) is left to it; `enroll_many` enters by the same rules as
`enroll`."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from audiences.models import Audience, Membership
from journeys.batch import enroll_many
from journeys.engine import NotEnrolled, advance, bucket, enroll, event_arrived
from journeys.models import Enrollment, StepRun
from journeys.runner import advance_due
from journeys.services import journey_set_status
from masivo.tenancy.context import workspace_scope
from tests.factories import CustomerFactory
from tests.journeys.test_engine import MARKETER, publish
from tests.messaging.test_sending_support import template_version

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        yield workspace


FIELDS = ("state", "current_step", "next_run_at", "waiting_for", "visits", "exit_reason",
          "finished_at", "converted_at")  # fmt: skip
LOG = ("step", "visit", "outcome", "next_step", "message_id", "detail", "started_at",
       "finished_at")  # fmt: skip


def waits_then_ends() -> dict:
    """Entered: a delay; then a wait for an event that times out into a day's delay; the end.
    Every move is plain."""
    return {
        "trigger": {"type": "api"},
        "reentry": {"mode": "always"},
        "start": "an_hour",
        "steps": {
            "an_hour": {"type": "delay", "duration": {"hours": 1}, "next": "wait_click"},
            "wait_click": {"type": "wait_event", "event": "Link Clicked",
                           "timeout": {"hours": 6}, "next": "done", "timeout_next": "a_day"},
            "a_day": {"type": "delay", "duration": {"days": 1}, "next": "done"},
            "done": {"type": "exit"},
        },
    }  # fmt: skip


def by_engine(enrollment_id, now):
    with transaction.atomic():
        advance(Enrollment.objects.select_for_update().get(id=enrollment_id), now=now)


def state(enrollment_id):
    enrollment = Enrollment.objects.get(id=enrollment_id)
    log = list(StepRun.objects.filter(enrollment_id=enrollment_id).order_by("started_at", "id")
               .values_list(*LOG))  # fmt: skip
    return {field: getattr(enrollment, field) for field in FIELDS}, log


def test_the_tick_and_the_engine_walk_a_journey_to_the_same_rows(scope):
    journey = publish(scope, waits_then_ends())
    start = timezone.now()
    tick_walks = enroll(journey=journey, customer=CustomerFactory(workspace=scope), now=start)
    engine_walks = enroll(journey=journey, customer=CustomerFactory(workspace=scope), now=start)
    clocks = [start, start + timedelta(hours=1), start + timedelta(hours=7),
              start + timedelta(days=1, hours=7)]  # fmt: skip
    for now in clocks:
        Enrollment.objects.filter(id=engine_walks.id).update(next_run_at=None)  # not claimed
        assert advance_due(workspace_id=scope.id, now=now) == 1
        by_engine(engine_walks.id, now)
        assert state(tick_walks.id) == state(engine_walks.id)

    enrollment, log = state(tick_walks.id)
    assert (enrollment["state"], enrollment["exit_reason"], enrollment["finished_at"]) == (
        "completed", "reached an exit step", clocks[3])  # fmt: skip
    assert enrollment["visits"] == {"an_hour": 1, "wait_click": 1, "a_day": 1, "done": 1}
    assert [(step, visit, outcome, next_step) for step, visit, outcome, next_step, *_ in log] == [
        ("an_hour", 1, "passed", "wait_click"),
        ("wait_click", 1, "timed_out", "a_day"),
        ("a_day", 1, "passed", "done"),
        ("done", 1, "exited", ""),
    ]
    assert log[1][5:] == ({}, clocks[1], clocks[2])  # the wait's row: begun, then timed out


def waiting_for_the_click(workspace):
    """An enrollment an hour in: its delay passed, waiting for "Link Clicked" (6 hours)."""
    journey = publish(workspace, waits_then_ends())
    start = timezone.now()
    enrollment = enroll(journey=journey, customer=CustomerFactory(workspace=workspace), now=start)
    advance_due(workspace_id=workspace.id, now=start)
    advance_due(workspace_id=workspace.id, now=start + timedelta(hours=1))
    return enrollment, start


def test_a_waiting_row_says_until_when_and_the_enrollment_what_it_waits_for(scope):
    enrollment, start = waiting_for_the_click(scope)

    enrollment.refresh_from_db()
    since, until = start + timedelta(hours=1), start + timedelta(hours=7)
    assert enrollment.waiting_for == {"event": "Link Clicked", "since": since.isoformat(),
                                      "until": until.isoformat()}  # fmt: skip
    assert (enrollment.state, enrollment.next_run_at) == ("waiting", until)
    row = StepRun.objects.get(enrollment=enrollment, step="wait_click")
    assert (row.outcome, row.detail, row.started_at, row.finished_at) == (
        "waiting", {"until": until.isoformat()}, since, None)  # fmt: skip


def test_a_resolved_wait_is_the_engines_and_goes_the_event_way(scope):
    enrollment, start = waiting_for_the_click(scope)
    clicked = start + timedelta(hours=2)
    with transaction.atomic():
        locked = Enrollment.objects.select_for_update().get(id=enrollment.id)
        assert event_arrived(enrollment=locked, name="Link Clicked", properties={},
                             entry_key="", now=clicked) == "resolved"  # fmt: skip

    assert advance_due(workspace_id=scope.id, now=clicked) == 1
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.exit_reason) == ("completed", "reached an exit step")
    assert StepRun.objects.get(enrollment=enrollment, step="wait_click").outcome == "event"


def test_a_send_after_a_delay_is_made_by_the_engine(scope):
    graph = waits_then_ends()
    graph["steps"]["an_hour"]["next"] = "email"
    del graph["steps"]["wait_click"], graph["steps"]["a_day"]
    graph["steps"]["email"] = {"type": "send", "channel": "email",
                               "template_id": template_version(scope, "email").template_id,
                               "next": "done"}  # fmt: skip
    journey = publish(scope, graph)
    start = timezone.now()
    customer = CustomerFactory(workspace=scope, email="ana@example.com")
    enrollment = enroll(journey=journey, customer=customer, now=start)
    advance_due(workspace_id=scope.id, now=start)
    assert advance_due(workspace_id=scope.id, now=start + timedelta(hours=1)) == 1

    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.visits) == (
        "completed", {"an_hour": 1, "email": 1, "done": 1})  # fmt: skip
    assert list(StepRun.objects.filter(enrollment=enrollment).order_by("id")
                .values_list("step", "outcome")) == [
        ("an_hour", "passed"), ("email", "skipped"), ("done", "exited")]  # fmt: skip


def test_a_removed_customer_exits_through_the_engine(scope):
    journey = publish(scope, waits_then_ends())
    start = timezone.now()
    customer = CustomerFactory(workspace=scope)
    enrollment = enroll(journey=journey, customer=customer, now=start)
    advance_due(workspace_id=scope.id, now=start)
    customer.delete()

    assert advance_due(workspace_id=scope.id, now=start + timedelta(hours=1)) == 1
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.exit_reason) == ("exited", "customer removed")


def test_a_paused_journey_holds_its_enrollments(scope):
    journey = publish(scope, waits_then_ends())
    start = timezone.now()
    enrollment = enroll(journey=journey, customer=CustomerFactory(workspace=scope), now=start)
    journey_set_status(journey=journey, status="paused", actor=MARKETER)

    assert advance_due(workspace_id=scope.id, now=start + timedelta(days=9)) == 0
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.current_step, enrollment.waiting_for) == (
        "active", "an_hour", None)  # fmt: skip


def test_enroll_many_enters_by_the_rules_of_enroll(scope):
    graph = waits_then_ends()
    audience = Audience.objects.create(workspace=scope, name="VIP", kind="list")
    graph.update(audience_id=audience.id, reentry={"mode": "once"}, holdout_percent=50)
    journey = publish(scope, graph)
    now = timezone.now()
    members = [CustomerFactory(workspace=scope) for _ in range(6)]
    anonymous = CustomerFactory(workspace=scope, is_anonymous=True)
    outsider = CustomerFactory(workspace=scope)
    for customer in [*members, anonymous]:
        Membership.objects.create(workspace=scope, audience=audience, customer=customer,
                                  source="list")  # fmt: skip
    been_before = members[0]
    enroll(journey=journey, customer=been_before, now=now - timedelta(days=30))
    Enrollment.objects.filter(customer_id=been_before.id).update(state="completed")

    ids = [c.id for c in [*members, anonymous, outsider]]
    entered = enroll_many(
        version=journey.live_version, customer_ids=ids, now=now, context={"kind": "x"}
    )

    assert entered == 5  # not the one who went through already, the anonymous, the outsider
    assert enroll_many(version=journey.live_version, customer_ids=ids, now=now, context={}) == 0
    rows = Enrollment.objects.filter(journey=journey, entered_at=now).order_by("customer_id")
    assert [r.customer_id for r in rows] == [c.id for c in members[1:]]
    by_id = {c.id: c for c in members}
    for row in rows:  # what enroll would have written, and enroll now says they are in
        assert (row.state, row.current_step, row.visits, row.context, row.next_run_at,
                row.version_id, row.entry_key) == (
            "active", "an_hour", {"an_hour": 1}, {"kind": "x"}, now, journey.live_version_id,
            "")  # fmt: skip
        assert row.is_holdout == (bucket("holdout", journey.id, row.customer_id, "") < 50)
        with pytest.raises(NotEnrolled, match="already in the journey"):
            enroll(journey=journey, customer=by_id[row.customer_id], now=now)


def test_an_audience_trigger_enters_one_change_set_based_and_several_in_their_order(scope):
    from audiences.membership import cause_list, membership_apply
    from tests.factories import AudienceFactory
    from tests.journeys.test_engine import tick

    vip = AudienceFactory(workspace=scope, name="VIP")
    graph = waits_then_ends() | {
        "trigger": {"type": "audience_entered", "audience_id": vip.id},
        "exits": [{"type": "audience_exited", "audience_id": vip.id}],
    }
    journey = publish(scope, graph)
    ana, bea = CustomerFactory(workspace=scope), CustomerFactory(workspace=scope)
    now = timezone.now()
    for entering, leaving in (([ana.id, bea.id], []), ([], [ana.id])):  # Ana comes and goes
        with transaction.atomic():
            membership_apply(workspace_id=scope.id, audience_id=vip.id, entering=entering,
                             leaving=leaving, cause=cause_list("test"), now=now)  # fmt: skip
    tick(scope, now)

    enrollments = {e.customer_id: e for e in Enrollment.objects.filter(journey=journey)}
    assert (enrollments[ana.id].state, enrollments[ana.id].exit_reason) == (
        "exited", "left the audience")  # fmt: skip
    bea_in = enrollments[bea.id]
    assert (bea_in.state, bea_in.current_step, bea_in.next_run_at, bea_in.context) == (
        "waiting", "an_hour", now + timedelta(hours=1),
        {"audience_id": vip.id, "kind": "audience_entered"})  # fmt: skip
