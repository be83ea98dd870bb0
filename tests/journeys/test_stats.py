"""Journey statistics on a small scenario driven through the engine: four shoppers enter the
cart-abandonment journey; one orders within the hour (converted at the wait), three get the
email (one of them in the holdout, so it is skipped), messaging's feedback says one email was
delivered and opened and another delivered, one more shopper orders during the day's delay.
Every count is exact; so is a customer's step history."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from journeys import selectors
from journeys.models import Enrollment, StepRun
from masivo.tenancy.context import workspace_scope
from messaging.feedback.engagement import record_engagement
from messaging.models import Message
from tests.factories import CustomerFactory
from tests.journeys.test_engine import cart_abandonment, publish, shopper, tick, track
from tests.messaging.test_sending_support import template_version

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        yield workspace


@pytest.fixture
def templates(workspace):
    return {channel: template_version(workspace, channel).template_id
            for channel in ("email", "push")}  # fmt: skip


def zeros(**counts) -> dict:
    return dict.fromkeys(selectors.STEP_STAT_KEYS, 0) | counts


@pytest.fixture
def scenario(scope, templates):
    journey = publish(scope, cart_abandonment(templates))
    today = timezone.now().astimezone(UTC).date()
    start = datetime.combine(today - timedelta(days=1), datetime.min.time(), UTC) + timedelta(
        hours=1
    )
    people = {name: shopper(scope, f"{name}@example.com") for name in ("ana", "ben", "cara", "dan")}
    for index, person in enumerate(people.values()):
        track(scope, person, "Product Added", start, cart={"id": f"c-{index}", "value": 80})
    tick(scope, start)
    Enrollment.objects.filter(customer_id=people["dan"].id).update(is_holdout=True)

    track(scope, people["ben"], "Order Completed", start + timedelta(minutes=20),
          cart={"id": "c-1"})  # fmt: skip
    tick(scope, start + timedelta(minutes=20))
    tick(scope, start + timedelta(minutes=61))  # ana, cara and dan time out: the email

    emails = {m.customer_id: m for m in Message.objects.filter(channel="email")}
    ana, cara = emails[people["ana"].id], emails[people["cara"].id]
    record_engagement(ana, "delivered", detail="test", now=start + timedelta(minutes=62))
    record_engagement(ana, "opened", detail="test", now=start + timedelta(minutes=70))
    record_engagement(cara, "delivered", detail="test", now=start + timedelta(minutes=63))

    track(scope, people["cara"], "Order Completed", start + timedelta(hours=2),
          cart={"id": "c-2"})  # fmt: skip
    tick(scope, start + timedelta(hours=2))
    return journey, people, start


def test_step_stats_count_each_step(scenario, django_assert_num_queries):
    journey, _, _ = scenario
    with django_assert_num_queries(3):  # the log with the messages, the graph, who is where
        stats = selectors.journey_step_stats(journey)
    assert stats == {
        "wait_order": zeros(entered=4, passed=3, converted=1),
        "email": zeros(entered=3, passed=3, sent=2, delivered=2, opened=1),
        "a_day": zeros(entered=3, waiting_now=2, converted=1),
        "push": zeros(),
        "done": zeros(),
    }
    assert selectors.journey_step_stats(journey, journey.live_version) == (
        selectors.journey_step_stats(journey))  # fmt: skip


def test_journey_stats_conversion_against_the_holdout(scenario, django_assert_num_queries):
    journey, _, start = scenario
    with django_assert_num_queries(3):  # the counts, the median, the days
        stats = selectors.journey_stats(journey, now=start + timedelta(hours=3))
    per_day = stats.pop("per_day")
    assert stats == {
        "enrollments": {"total": 4, "active": 2, "completed": 0, "converted": 2, "exited": 0},
        "conversion": {
            "treatment": {"enrollments": 3, "converted": 2, "rate": 0.6667},
            "holdout": {"enrollments": 1, "converted": 0, "rate": 0.0},
            "uplift": 0.6667,
        },
        "median_seconds_to_convert": 4200.0,  # 20 minutes and 2 hours
    }
    assert len(per_day) == 30
    assert per_day[-1] == {"day": start.date(), "entered": 4, "converted": 2}
    assert per_day[0]["day"] == start.date() - timedelta(days=29)
    assert sum(day["entered"] + day["converted"] for day in per_day[:-1]) == 0

    later = selectors.journey_stats(journey, since=start + timedelta(minutes=1),
                                    now=start + timedelta(hours=3))  # fmt: skip
    assert later["enrollments"]["total"] == 0
    assert later["conversion"]["uplift"] is None
    assert later["median_seconds_to_convert"] is None


def test_a_customers_journeys_with_their_step_history(scenario, django_assert_num_queries):
    journey, people, start = scenario
    with django_assert_num_queries(2):  # enrollments with journeys and versions, the steps
        (cara,) = selectors.customer_journeys(people["cara"])
    email = StepRun.objects.get(enrollment_id=cara["id"], step="email")
    steps = cara.pop("steps")
    assert cara == {
        "id": cara["id"], "journey_id": journey.id, "journey_name": "Cart abandonment",
        "journey_status": "active", "version": 1, "state": "converted",
        "current_step": "a_day", "entry_key": "c-2", "is_holdout": False, "variant": "",
        "entered_at": start, "next_run_at": None, "finished_at": start + timedelta(hours=2),
        "converted_at": start + timedelta(hours=2), "exit_reason": "goal: Order Completed",
    }  # fmt: skip
    hour = start + timedelta(minutes=61)
    assert steps == [
        {"step": "wait_order", "type": "wait_event", "label": "", "visit": 1,
         "outcome": "timed_out", "next_step": "email", "message_id": None, "detail": {},
         "started_at": start, "finished_at": hour},
        {"step": "email", "type": "send", "label": "", "visit": 1, "outcome": "sent",
         "next_step": "a_day", "message_id": email.message_id, "detail": email.detail,
         "started_at": hour, "finished_at": hour},
        {"step": "a_day", "type": "delay", "label": "", "visit": 1, "outcome": "waiting",
         "next_step": "", "message_id": None, "detail": {"until": (hour + timedelta(days=1))
                                                         .isoformat()},
         "started_at": hour, "finished_at": None},
    ]  # fmt: skip
    assert selectors.customer_journeys(CustomerFactory(workspace_id=journey.workspace_id)) == []
