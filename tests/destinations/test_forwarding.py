"""Forwarding (destinations.forwarding) against the engine's platform fake: events, profile
changes and memberships collected from the feeds with the destination's own cursors, filtered
(event names, traits), consent checked at send time, sent in order and in chunks, resumed
after a crash without a second copy, backed off, dead-lettered and replayed, and erasure
signalled by the id the destination knew."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.membership import cause_list, membership_apply
from destinations import forwarding, services
from destinations.models import ForwardBatch, RemoteContact
from masivo.pipeline import process_events_now
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Role
from profiles.consent import consent_update
from profiles.models import Event
from tests.factories import AudienceFactory, CustomerFactory
from tests.fakes.base import Answer
from tests.feeds.support import wait_until_committed_rows_readable

pytestmark = pytest.mark.django_db(transaction=True)
ADMIN = Actor(role=Role.ADMIN)


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        yield workspace


def person(workspace, email, advertising="granted", **fields):
    customer = CustomerFactory(workspace=workspace, email=email, **fields)
    return consent_update(customer=customer, changes={"advertising": advertising}, source="t")


def track(workspace, customer, name, message_id, **properties):
    Event.objects.create(
        workspace=workspace, customer=customer, name=name, properties=properties,
        occurred_at=timezone.now(), message_id=message_id, source="api",
    )  # fmt: skip
    process_events_now(workspace=Workspace.objects.get(id=workspace.id))


def forwarding_destination(workspace, **settings):
    destination = services.destination_create(workspace=workspace, kind="test", name="P",
                                              config={}, credentials={}, actor=ADMIN)  # fmt: skip
    return services.forwarding_update(destination=destination, actor=ADMIN, enabled=True,
                                      **settings)  # fmt: skip


def tick(destination):
    wait_until_committed_rows_readable()
    return forwarding.forwarding_tick_one(destination)


def test_events_profiles_and_memberships_go_filtered_in_order(scope, platform):
    ana = person(scope, "ana@example.com", traits={"plan": "pro", "secret": "x"})
    denied = person(scope, "no@example.com", advertising="denied")
    destination = forwarding_destination(scope, event_names=["Order Completed"], traits=["plan"])
    audience = AudienceFactory(workspace=scope, name="VIP")

    track(scope, ana, "Order Completed", "order-1", total=10)
    track(scope, ana, "Page Viewed", "page-1")
    track(scope, denied, "Order Completed", "order-2")
    membership_apply(workspace_id=scope.id, audience_id=audience.id, entering=[ana.id],
                     leaving=(), cause=cause_list("t"), now=timezone.now())  # fmt: skip
    result = tick(destination)

    assert result["sent"] == 1
    sent = [(i["type"], i["dedupe_id"], i.get("event"), i.get("audience"))
            for i in platform.forwarded]  # fmt: skip
    # The follow-up's metrics refresh records a profile change too; its keys are metrics.
    assert ("event", "order-1", "Order Completed", None) in sent
    assert ("membership", sent[-1][1], None, "VIP") == sent[-1]
    assert "order-2" not in {i["dedupe_id"] for i in platform.forwarded}  # no consent
    assert "page-1" not in {i["dedupe_id"] for i in platform.forwarded}  # filtered out
    assert {i["email"] for i in platform.forwarded} == {"ana@example.com"}
    assert all(i["traits"] == {"plan": "pro"} for i in platform.forwarded)
    batch = ForwardBatch.objects.get(destination=destination)
    assert (batch.status, batch.skipped_count) == ("sent", 1)

    # Nothing new: nothing collected, nothing sent.
    assert tick(destination) == {"collected": 0, "sent": 0}


def test_a_crash_mid_batch_resends_only_the_unsent_chunk(scope, platform, monkeypatch):
    ana = person(scope, "ana@example.com")
    destination = forwarding_destination(scope, types=["events"])
    monkeypatch.setattr(platform_connector(), "batch_size", 2)
    for n in range(5):
        track(scope, ana, "Order Completed", f"o-{n}")
    wait_until_committed_rows_readable()
    assert forwarding.forwarding_collect(destination) == 5
    batch = ForwardBatch.objects.get(destination=destination)
    # A worker sent the first two chunks and died before recording the second.
    ForwardBatch.objects.filter(id=batch.id).update(sent_count=2)
    platform.forwarded.append({"dedupe_id": "o-0"})
    platform.forwarded.append({"dedupe_id": "o-1"})
    platform.forwarded.append({"dedupe_id": "o-2"})
    platform.forwarded.append({"dedupe_id": "o-3"})

    assert forwarding.forwarding_send(destination) == 1

    assert [i["dedupe_id"] for i in platform.forwarded] == [f"o-{n}" for n in range(5)]
    assert platform.forward_duplicates == 2  # the chunk in flight, applied once


def test_failures_back_off_hold_later_batches_dead_letter_and_replay(scope, platform):
    ana = person(scope, "ana@example.com")
    destination = forwarding_destination(scope, types=["events"])
    track(scope, ana, "A", "a-1")
    wait_until_committed_rows_readable()
    forwarding.forwarding_collect(destination)
    track(scope, ana, "B", "b-1")
    wait_until_committed_rows_readable()
    forwarding.forwarding_collect(destination)
    platform.answer_when(lambda request: request.path == "/forward", Answer(429, {}))

    assert forwarding.forwarding_send(destination) == 0
    first, second = ForwardBatch.objects.filter(destination=destination).order_by("id")
    assert (first.status, first.attempts, first.error) == ("pending", 1, "RetryLater: throttled")
    assert first.next_attempt_at > timezone.now()
    assert (second.attempts, second.status) == (0, "pending")  # waits behind the first

    for _ in range(forwarding.MAX_ATTEMPTS - 1):
        ForwardBatch.objects.filter(id=first.id).update(next_attempt_at=timezone.now())
        forwarding.forwarding_send(destination)
    first.refresh_from_db()
    assert first.status == "dead"
    assert first.error.startswith(f"gave up after {forwarding.MAX_ATTEMPTS} attempts")

    platform.reset()
    assert forwarding.forwarding_send(destination) == 1  # the next one goes
    assert [i["dedupe_id"] for i in platform.forwarded] == ["b-1"]
    forwarding.forward_batch_replay(first)
    assert forwarding.forwarding_send(destination) == 1
    assert [i["dedupe_id"] for i in platform.forwarded] == ["b-1", "a-1"]


def test_erasure_sends_the_deletion_signal_by_the_remembered_id(scope, platform):
    from profiles.services.customers import customer_erase

    ana = person(scope, "ana@example.com", external_id="crm-7")
    destination = forwarding_destination(scope, types=["events", "profiles"])
    track(scope, ana, "Order Completed", "o-1")
    tick(destination)
    assert list(RemoteContact.objects.values_list("customer_id", "remote_id")) == [
        (ana.id, "crm-7")]  # fmt: skip

    customer_erase(customer=ana, actor="test")
    tick(destination)

    assert platform.erased == ["crm-7"]
    assert RemoteContact.objects.count() == 0
    erased = [i for i in platform.forwarded if i["kind"] == "erased"]
    assert [(i["customer_id"], i["email"]) for i in erased] == [(ana.id, None)]


def test_turning_forwarding_off_forgets_the_cursors(scope, platform):
    from masivo.feeds.models import FeedCursor

    destination = forwarding_destination(scope)
    assert set(FeedCursor.objects.values_list("feed", flat=True)) >= {
        "processed_events", "profile_changes", "membership_changes"}  # fmt: skip
    services.forwarding_update(destination=destination, actor=ADMIN, enabled=False)
    assert not FeedCursor.objects.filter(consumer__startswith="destinations.forwarding:").exists()
    assert tick(destination) == {"collected": 0, "sent": 0}


def platform_connector():
    from destinations.connectors import CONNECTORS

    return CONNECTORS["test"]


def test_an_old_destination_cursor_does_not_reach_back(scope, platform):
    ana = person(scope, "ana@example.com")
    track(scope, ana, "Order Completed", "before")
    destination = forwarding_destination(scope, types=["events"])
    track(scope, ana, "Order Completed", "after")
    tick(destination)
    assert [i["dedupe_id"] for i in platform.forwarded] == ["after"]
    assert timedelta(0) <= timezone.now() - ForwardBatch.objects.get().created_at
