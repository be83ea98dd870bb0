"""Journeys end to end through the engine with an injected clock: the cart-abandonment journey
(an event trigger with a filter and an entry key, a wait with a timeout, an email, a delay, a
push, a goal), re-entry, a branch and a split, pause and archive, exits, API enrollment, and
that ticking again never sends twice."""

from datetime import timedelta

import pytest
from django.utils import timezone

from journeys import services
from journeys.graph import InvalidGraph, graph_validate
from journeys.models import Enrollment, StepRun
from journeys.runner import workspace_tick
from masivo.pipeline import process_events_now
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.errors import Conflict, InvalidInput
from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Role
from messaging.models import Message
from profiles.consent import consent_update
from profiles.models import Event
from profiles.services.devices import device_register
from tests.factories import CustomerFactory
from tests.feeds.support import wait_until_committed_rows_readable
from tests.messaging.test_sending_support import template_version

pytestmark = pytest.mark.django_db(transaction=True)
MARKETER = Actor(role=Role.MARKETER)


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        yield workspace


@pytest.fixture
def templates(workspace):
    return {channel: template_version(workspace, channel).template_id
            for channel in ("email", "push")}  # fmt: skip


def cart_abandonment(templates) -> dict:
    return {
        "trigger": {"type": "event", "event": "Product Added",
                    "where": [{"property": "cart.value", "op": "gt", "value": 50}],
                    "entry_key": "cart.id"},
        "reentry": {"mode": "always"},
        "goal": {"event": "Order Completed", "within_days": 7},
        "start": "wait_order",
        "steps": {
            "wait_order": {"type": "wait_event", "event": "Order Completed",
                           "match_entry_key": True, "timeout": {"hours": 1},
                           "next": "done", "timeout_next": "email"},
            "email": {"type": "send", "channel": "email", "template_id": templates["email"],
                      "next": "a_day"},
            "a_day": {"type": "delay", "duration": {"days": 1}, "next": "push"},
            "push": {"type": "send", "channel": "push", "template_id": templates["push"],
                     "next": "done"},
            "done": {"type": "exit"},
        },
    }  # fmt: skip


def publish(workspace, graph, name="Cart abandonment"):
    journey = services.journey_create(workspace=workspace, name=name, graph=graph,
                                      actor=MARKETER)  # fmt: skip
    services.journey_publish(journey=journey, actor=MARKETER, note="first")
    journey.refresh_from_db()
    return journey


def shopper(workspace, email="ana@example.com"):
    customer = CustomerFactory(workspace=workspace, email=email, timezone="UTC")
    device_register(customer=customer, data={"device_token": f"token-{email}",
                                             "device_info": {"platform": "android"}})  # fmt: skip
    return consent_update(customer=customer, changes={"email_marketing": "granted",
                                                      "push_notifications": "granted"},
                          source="test")  # fmt: skip


def track(workspace, customer, name, at, **properties):
    Event.objects.create(workspace=workspace, customer=customer, name=name, properties=properties,
                         occurred_at=at, message_id=f"{name}-{at.timestamp()}-{customer.id}",
                         source="api")  # fmt: skip
    process_events_now(workspace=Workspace.objects.get(id=workspace.id))


def tick(workspace, now):
    wait_until_committed_rows_readable()
    return workspace_tick(workspace_id=workspace.id, now=now)


def journey_messages(customer):
    return list(Message.objects.filter(customer=customer).order_by("id")
                .values_list("channel", "dedupe_key"))  # fmt: skip


def test_the_cart_abandonment_journey_end_to_end(scope, templates):
    journey = publish(scope, cart_abandonment(templates))
    ana = shopper(scope)
    start = timezone.now()
    track(scope, ana, "Product Added", start, cart={"id": "c-1", "value": 80})
    track(scope, ana, "Product Added", start, cart={"id": "c-cheap", "value": 10})
    tick(scope, start)

    enrollment = Enrollment.objects.get(journey=journey)
    assert (enrollment.state, enrollment.current_step, enrollment.entry_key) == (
        "waiting", "wait_order", "c-1")  # fmt: skip
    assert enrollment.next_run_at == start + timedelta(hours=1)

    tick(scope, start + timedelta(minutes=61))  # no order within the hour: the email
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.current_step) == ("waiting", "a_day")
    assert journey_messages(ana) == [("email", f"journey:{enrollment.id}:email:1")]

    tick(scope, start + timedelta(minutes=61))  # ticking again sends nothing more
    tick(scope, start + timedelta(days=1, minutes=62))
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.exit_reason) == ("completed", "reached an exit step")
    assert journey_messages(ana) == [("email", f"journey:{enrollment.id}:email:1"),
                                     ("push", f"journey:{enrollment.id}:push:1")]  # fmt: skip
    assert list(StepRun.objects.filter(enrollment=enrollment).order_by("id").values_list(
        "step", "outcome", "next_step")) == [
        ("wait_order", "timed_out", "email"), ("email", "sent", "a_day"),
        ("a_day", "passed", "push"), ("push", "sent", "done"), ("done", "exited", "")]  # fmt: skip


def test_an_order_within_the_hour_resolves_the_wait_and_converts(scope, templates):
    journey = publish(scope, cart_abandonment(templates))
    ben = shopper(scope, "ben@example.com")
    start = timezone.now()
    track(scope, ben, "Product Added", start, cart={"id": "c-9", "value": 60})
    tick(scope, start)
    track(scope, ben, "Order Completed", start + timedelta(minutes=20), cart={"id": "c-9"})
    tick(scope, start + timedelta(minutes=20))

    enrollment = Enrollment.objects.get(journey=journey)
    assert (enrollment.state, enrollment.exit_reason) == ("converted", "goal: Order Completed")
    assert journey_messages(ben) == []


def test_reentry_once_and_after_days(scope, templates):
    graph = cart_abandonment(templates) | {"reentry": {"mode": "after_days", "days": 3}}
    graph["trigger"].pop("entry_key")
    journey = publish(scope, graph)
    cara = shopper(scope, "cara@example.com")
    start = timezone.now()
    track(scope, cara, "Product Added", start, cart={"value": 99})
    tick(scope, start)
    Enrollment.objects.filter(journey=journey).update(state="completed", finished_at=start)
    track(scope, cara, "Product Added", start + timedelta(days=1), cart={"value": 99})
    tick(scope, start + timedelta(days=1))
    assert Enrollment.objects.filter(journey=journey).count() == 1  # within 3 days: no
    track(scope, cara, "Product Added", start + timedelta(days=4), cart={"value": 99})
    tick(scope, start + timedelta(days=4))
    assert Enrollment.objects.filter(journey=journey).count() == 2


def test_pause_holds_resume_continues_archive_exits(scope, templates):
    journey = publish(scope, cart_abandonment(templates))
    ana = shopper(scope)
    start = timezone.now()
    track(scope, ana, "Product Added", start, cart={"id": "c-1", "value": 80})
    tick(scope, start)

    services.journey_set_status(journey=journey, status="paused", actor=MARKETER)
    tick(scope, start + timedelta(hours=2))
    assert journey_messages(ana) == []
    services.journey_set_status(journey=journey, status="active", actor=MARKETER)
    tick(scope, start + timedelta(hours=2))
    assert [channel for channel, _ in journey_messages(ana)] == ["email"]

    services.journey_set_status(journey=journey, status="archived", actor=MARKETER)
    enrollment = Enrollment.objects.get(journey=journey)
    assert (enrollment.state, enrollment.exit_reason) == ("exited", "journey archived")
    with pytest.raises(Conflict):
        services.journey_set_status(journey=journey, status="active", actor=MARKETER)


def test_branch_split_update_profile_and_api_enrollment(scope, templates):
    graph = {
        "trigger": {"type": "api"},
        "start": "vip",
        "steps": {
            "vip": {"type": "branch", "conditions": [{"rules": {"version": 1, "root": {
                "profile": {"field": "tier", "op": "eq", "value": "gold"}}}, "next": "tag"}],
                "else": "split"},
            "tag": {"type": "update_profile", "set_traits": {"journey_vip": True}, "next": "end"},
            "split": {"type": "split", "paths": [{"name": "A", "percent": 50, "next": "end"},
                                                 {"name": "B", "percent": 50, "next": "end"}]},
            "end": {"type": "exit"},
        },
    }  # fmt: skip
    journey = publish(scope, graph)
    gold = shopper(scope, "gold@example.com")
    gold.tier = "gold"
    gold.save()
    plain = shopper(scope, "plain@example.com")
    now = timezone.now()

    first = services.enrollment_create(journey=journey, customer=gold, actor=MARKETER,
                                       idempotency_key="k-1", now=now)  # fmt: skip
    again = services.enrollment_create(journey=journey, customer=gold, actor=MARKETER,
                                       idempotency_key="k-1", now=now)  # fmt: skip
    assert first.id == again.id
    services.enrollment_create(journey=journey, customer=plain, actor=MARKETER, now=now)
    tick(scope, now)

    gold.refresh_from_db()
    assert gold.traits["journey_vip"] is True
    variants = dict(Enrollment.objects.values_list("customer_id", "variant"))
    assert variants[gold.id] == "" and variants[plain.id] in ("A", "B")
    with pytest.raises(Conflict, match="re-entry: once"):
        services.enrollment_create(journey=journey, customer=plain, actor=MARKETER, now=now)


def test_graph_errors_name_the_step_and_field(scope, templates):
    graph = cart_abandonment(templates)
    graph["steps"]["email"].pop("template_id")
    graph["steps"]["a_day"]["next"] = "nowhere"
    with pytest.raises(InvalidGraph) as caught:
        graph_validate(graph)
    assert [e.as_dict() for e in caught.value.errors] == [
        {"field": "steps.email", "message": "'template_id' is a required property"}
    ]

    graph = cart_abandonment(templates)
    graph["steps"]["a_day"]["next"] = "nowhere"
    with pytest.raises(InvalidGraph) as caught:
        graph_validate(graph)
    assert [e.as_dict() for e in caught.value.errors] == [
        {"field": "steps.a_day.next", "message": "no step 'nowhere'"},
        {"field": "steps.push", "message": "no step leads here"},
    ]

    journey = services.journey_create(workspace=scope, name="Broken", graph=graph,
                                      actor=MARKETER)  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        services.journey_publish(journey=journey, actor=MARKETER)
    assert (refused.value.field, refused.value.message) == (
        "graph.steps.a_day.next", "no step 'nowhere'")  # fmt: skip


def test_the_welcome_series_starts_from_joining_an_audience(scope, templates):
    from audiences.membership import cause_list, membership_apply
    from tests.factories import AudienceFactory

    newcomers = AudienceFactory(workspace=scope, name="New customers")
    graph = {
        "trigger": {"type": "audience_entered", "audience_id": newcomers.id},
        "start": "hello",
        "steps": {
            "hello": {"type": "send", "channel": "email", "template_id": templates["email"],
                      "next": "two_days"},
            "two_days": {"type": "delay", "duration": {"days": 2}, "next": "tips"},
            "tips": {"type": "send", "channel": "email", "template_id": templates["email"],
                     "next": "end"},
            "end": {"type": "exit"},
        },
    }  # fmt: skip
    journey = publish(scope, graph, name="Welcome")
    ana = shopper(scope)
    start = timezone.now()
    membership_apply(workspace_id=scope.id, audience_id=newcomers.id, entering=[ana.id],
                     leaving=(), cause=cause_list("test"), now=start)  # fmt: skip
    tick(scope, start)
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.context == {"audience_id": newcomers.id, "kind": "audience_entered"}
    assert journey_messages(ana) == [("email", f"journey:{enrollment.id}:hello:1")]

    tick(scope, start + timedelta(days=2, minutes=1))
    enrollment.refresh_from_db()
    assert enrollment.state == "completed"
    assert journey_messages(ana) == [("email", f"journey:{enrollment.id}:hello:1"),
                                     ("email", f"journey:{enrollment.id}:tips:1")]  # fmt: skip


def test_the_birthday_journey_enters_once_a_year_on_the_day(scope, templates):
    import datetime as dt

    graph = {
        "trigger": {"type": "date_anniversary", "field": "birth_date"},
        "reentry": {"mode": "always"},
        "start": "card",
        "steps": {
            "card": {"type": "send", "channel": "email", "template_id": templates["email"],
                     "next": "end"},
            "end": {"type": "exit"},
        },
    }  # fmt: skip
    journey = publish(scope, graph, name="Birthday")
    today = timezone.now()
    ana = shopper(scope)
    ana.birth_date = dt.date(1990, today.month, min(today.day, 28))
    ana.save()
    if today.day > 28:  # the test's birthday is the 28th at the latest
        today = today.replace(day=28)
    other = shopper(scope, "other@example.com")
    other.birth_date = (today - timedelta(days=3)).date().replace(year=1985)
    other.save()

    tick(scope, today)
    tick(scope, today + timedelta(minutes=5))  # the same day again: nobody enters twice

    enrollment = Enrollment.objects.get(journey=journey)
    assert (enrollment.customer_id, enrollment.entry_key) == (ana.id, str(today.year))
    assert enrollment.state == "completed"
    assert [channel for channel, _ in journey_messages(ana)] == ["email"]
    assert journey_messages(other) == []


def test_a_webhook_step_records_one_signed_delivery_per_visit(scope, templates):
    from destinations.models import Destination, WebhookDelivery

    endpoint = Destination.objects.create(
        workspace=scope, kind="webhook", name="CRM", key="crm",
        config={"url": "https://hooks.example.com/masivo", "topics": []},
        credentials={"secrets": ["whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ="]},
    )  # fmt: skip
    graph = {
        "trigger": {"type": "api"},
        "start": "notify",
        "steps": {"notify": {"type": "webhook", "destination_id": endpoint.id, "next": "end"},
                  "end": {"type": "exit"}},
    }  # fmt: skip
    journey = publish(scope, graph, name="Notify the CRM")
    ana = shopper(scope)
    now = timezone.now()
    enrollment = services.enrollment_create(journey=journey, customer=ana, actor=MARKETER,
                                            context={"why": "test"}, now=now)  # fmt: skip
    tick(scope, now)
    tick(scope, now)

    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.topic == "journey.webhook"
    assert delivery.payload["data"] == {
        "journey": {"id": journey.id, "enrollment": enrollment.id, "step": "notify", "visit": 1,
                    "context": {"why": "test"}},
        "customer": {"id": ana.id, "external_id": ana.external_id, "email": "ana@example.com"},
    }  # fmt: skip
    step = StepRun.objects.get(enrollment=enrollment, step="notify")
    assert (step.outcome, step.detail) == ("passed", {"webhook_id": delivery.webhook_id})

    broken = dict(graph, steps={**graph["steps"], "notify": {
        "type": "webhook", "destination_id": endpoint.id + 1000, "next": "end"}})  # fmt: skip
    draft = services.journey_create(workspace=scope, name="Broken", graph=broken, actor=MARKETER)
    with pytest.raises(InvalidInput) as refused:
        services.journey_publish(journey=draft, actor=MARKETER)
    assert refused.value.field == "graph.steps.notify.destination_id"


def test_an_exit_events_filters_are_checked_by_the_rule_parser(templates):
    graph = cart_abandonment(templates)
    graph["exits"] = [{"type": "event", "event": "Unsubscribed", "where": [
        {"property": "list", "op": "sounds_like", "value": "news"}]}]  # fmt: skip
    with pytest.raises(InvalidGraph) as caught:
        graph_validate(graph)
    assert [e.as_dict() for e in caught.value.errors] == [
        {"field": "exits.0.where[0].op",
         "message": "for a json field, op is one of eq, neq, in, not_in, contains, starts_with, "
                    "ends_with, gt, gte, lt, lte, between, exists, not_exists, is_empty, "
                    "is_true, is_false"}]  # fmt: skip


def test_an_order_in_the_same_feed_batch_as_the_cart_converts_its_enrollment(scope,
                                                                        templates):  # fmt: skip
    journey = publish(scope, cart_abandonment(templates))
    ana = shopper(scope)
    start = timezone.now()
    track(scope, ana, "Product Added", start, cart={"id": "c-1", "value": 80})
    track(scope, ana, "Order Completed", start + timedelta(seconds=1), cart={"id": "c-1"})
    tick(scope, start + timedelta(seconds=2))  # one batch: the entry, then the goal

    enrollment = Enrollment.objects.get(journey=journey)
    assert (enrollment.state, enrollment.exit_reason, enrollment.converted_at) == (
        "converted", "goal: Order Completed", start + timedelta(seconds=2))  # fmt: skip
    assert journey_messages(ana) == []
