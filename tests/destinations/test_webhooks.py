"""Webhooks: forward() records deliveries (topics, filters, payloads, one per item), the sender
signs them (Standard Webhooks, verified by a receiver using standardwebhooks), retries on the
schedule with a stable webhook-id, honours Retry-After, is disabled by a 410, gives up after
the last attempt, replays, rotates secrets with a grace period, and keeps SSRF out at send."""

import hashlib
import socket
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from standardwebhooks import Webhook

from destinations import services, webhook_tasks, webhooks
from destinations.connectors import connector_for
from destinations.connectors.base import ErasedCustomer, ForwardItem
from destinations.connectors.webhook import (
    SEND_ENDPOINT_TASK,
    TOPICS,
    payload_body,
    signed_headers,
    webhook_id_for,
)
from destinations.models import Destination, WebhookDelivery
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.errors import Conflict, InvalidInput
from masivo.tenancy.roles import Role
from tests.fakes.base import Answer
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.django_db

ADMIN = Actor(role=Role.ADMIN, user_id=1)
T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)  # after the rows are made (real time)
S = WebhookDelivery.Status


@pytest.fixture(scope="module")
def receiver_server():
    fake = WebhookReceiver().start()
    yield fake
    fake.stop()


@pytest.fixture
def receiver(receiver_server):
    receiver_server.reset()
    return receiver_server


def endpoint_for(workspace, receiver, *, path="/hooks", topics=TOPICS, event_names=()):
    with workspace_scope(workspace.id):
        created = webhooks.webhook_endpoint_create(
            workspace=workspace, actor=ADMIN, name=f"Hooks {path}", url=receiver.url + path,
            topics=list(topics), event_names=list(event_names),
        )  # fmt: skip
    receiver.trust(*([receiver.secrets[0]] if receiver.secrets else []), created.secret)
    return created.destination, created.secret


def event_item(number=1, name="Order Completed", customer_id=7, at=T0):
    return ForwardItem(
        type="event",
        dedupe_id=f"event:{number}",
        customer_id=customer_id,
        occurred_at=at,
        customer={"external_id": "u-7", "email": "ana@example.com", "first_name": "Ana"},
        event={"name": name, "properties": {"total": 12.5}, "occurred_at": at.isoformat(),
               "message_id": f"m-{number}"},
    )  # fmt: skip


def forward(destination, items):
    with workspace_scope(destination.workspace_id):
        return connector_for(Destination.objects.get(id=destination.id)).forward(items)


def deliveries(destination):
    with workspace_scope(destination.workspace_id):
        return list(WebhookDelivery.objects.filter(destination=destination).order_by("id"))


def one(destination) -> WebhookDelivery:
    [delivery] = deliveries(destination)
    return delivery


# Recording ------------------------------------------------------------------------------------


def test_forward_records_one_delivery_per_item_and_none_twice(workspace, receiver):
    destination, _ = endpoint_for(workspace, receiver)

    first = forward(destination, [event_item(1), event_item(2)])
    again = forward(destination, [event_item(1)])

    assert (first.sent, first.skipped, again.sent) == (2, {}, 1)
    rows = deliveries(destination)
    assert [row.webhook_id for row in rows] == [webhook_id_for(f"event:{n}") for n in (1, 2)]
    assert rows[0].topic == "event.tracked"
    assert rows[0].status == S.PENDING
    assert rows[0].payload == {
        "type": "event.tracked",
        "timestamp": "2030-01-01T12:00:00Z",
        "data": {
            "customer": {"id": 7, "external_id": "u-7", "email": "ana@example.com"},
            "event": {"name": "Order Completed", "properties": {"total": 12.5},
                      "occurred_at": "2030-01-01T12:00:00+00:00", "message_id": "m-1"},
        },
    }  # fmt: skip


def test_webhook_ids_are_sha256_of_the_dedupe_id():
    assert webhook_id_for("event:1") == "msg_" + hashlib.sha256(b"event:1").hexdigest()[:32]


def test_forward_wakes_the_endpoint_sender_after_commit(
    workspace, receiver, django_capture_on_commit_callbacks
):
    destination, _ = endpoint_for(workspace, receiver)
    with django_capture_on_commit_callbacks() as callbacks:
        forward(destination, [event_item(1)])
        forward(destination, [])  # nothing recorded: nothing to wake

    assert len(callbacks) == 1
    assert SEND_ENDPOINT_TASK == webhook_tasks.SEND_ENDPOINT_TASK


@pytest.mark.parametrize(
    ("topics", "event_names", "name", "topic", "skipped"),
    [
        (["message.opened"], [], "Message Opened", "message.opened", None),
        (["message.opened", "event.tracked"], [], "Message Opened", "message.opened", None),
        (["event.tracked"], [], "Message Bounced", "event.tracked", None),
        (["message.bounced"], [], "Message Bounced", "message.bounced", None),
        (["message.delivered"], [], "Message Delivered", "message.delivered", None),
        (["message.clicked"], [], "Message Clicked", "message.clicked", None),
        (["message.failed"], [], "Message Failed", "message.failed", None),
        (["event.tracked"], ["Signed Up"], "Signed Up", "event.tracked", None),
        (["event.tracked"], ["Signed Up"], "Order Completed", None,
         "event 'Order Completed' is not in the endpoint's event_names"),
        (["message.opened"], [], "Order Completed", None, "topic not subscribed"),
        (["customer.created"], [], "Message Opened", None, "topic not subscribed"),
    ],
)  # fmt: skip
def test_events_go_to_their_topic(workspace, receiver, topics, event_names, name, topic, skipped):
    destination, _ = endpoint_for(workspace, receiver, topics=topics, event_names=event_names)

    result = forward(destination, [event_item(1, name=name)])

    rows = deliveries(destination)
    assert [row.topic for row in rows] == ([topic] if topic else [])
    assert result.skipped == ({"event:1": skipped} if skipped else {})
    assert result.sent == (1 if topic else 0)


def test_profile_membership_and_deletion_payloads(workspace, receiver):
    destination, _ = endpoint_for(workspace, receiver)
    profile = {"external_id": "u-7", "email": "ana@example.com", "traits": {"tier": "gold"}}
    items = [
        ForwardItem("profile", "profile:1", 7, T0, customer=profile, kind="created"),
        ForwardItem("profile", "profile:2", 7, T0, customer=profile, kind="updated",
                    changed=["field:email"]),
        ForwardItem("profile", "profile:3", 7, T0, customer=None, kind="erased"),
        ForwardItem("profile", "profile:4", 8, T0, customer=None, kind="deleted"),
        ForwardItem("membership", "membership:5", 7, T0, customer=profile, kind="entered",
                    audience={"id": 3, "name": "VIP", "kind": "rules"}),
        ForwardItem("membership", "membership:6", 7, T0, customer=profile, kind="exit",
                    audience={"id": 3, "name": "VIP", "kind": "rules"}),
    ]  # fmt: skip

    result = forward(destination, items)

    customer = {"id": 7, "external_id": "u-7", "email": "ana@example.com"}
    assert result.sent == 6
    assert [(row.topic, row.payload["data"]) for row in deliveries(destination)] == [
        ("customer.created", {"customer": customer | {"traits": {"tier": "gold"}}}),
        ("customer.updated", {"customer": customer | {"traits": {"tier": "gold"}},
                              "changed": ["field:email"]}),
        ("customer.deleted", {"customer": {"id": 7}, "reason": "erased"}),
        ("customer.deleted", {"customer": {"id": 8}, "reason": "deleted"}),
        ("audience.entered", {"customer": customer, "audience": {"id": 3, "name": "VIP"}}),
        ("audience.exited", {"customer": customer, "audience": {"id": 3, "name": "VIP"}}),
    ]  # fmt: skip


def test_erasure_sends_customer_deleted_with_ids_only(workspace, receiver):
    destination, _ = endpoint_for(workspace, receiver, topics=["customer.deleted"])

    with workspace_scope(workspace.id), time_machine.travel(T0, tick=False):
        connector = connector_for(Destination.objects.get(id=destination.id))
        connector.customers_erased([ErasedCustomer(7, "7"), ErasedCustomer(9, "9")])
        connector.customers_erased([ErasedCustomer(7, "7")])

    assert [(row.webhook_id, row.payload) for row in deliveries(destination)] == [
        (webhook_id_for("erased:7"), {"type": "customer.deleted",
         "timestamp": "2030-01-01T12:00:00Z",
         "data": {"customer": {"id": 7}, "reason": "erased"}}),
        (webhook_id_for("erased:9"), {"type": "customer.deleted",
         "timestamp": "2030-01-01T12:00:00Z",
         "data": {"customer": {"id": 9}, "reason": "erased"}}),
    ]  # fmt: skip


# Signing and sending ----------------------------------------------------------------------------


def test_a_delivery_is_signed_and_the_receiver_verifies_it(workspace, receiver):
    destination, secret = endpoint_for(workspace, receiver)
    forward(destination, [event_item(1)])

    with time_machine.travel(T0, tick=False):
        report = webhooks.deliveries_send_due()

    assert (report.claimed, report.succeeded) == (1, 1)
    [request] = receiver.requests
    delivery = one(destination)
    assert request.path == "/hooks"
    assert request.header("webhook-id") == webhook_id_for("event:1")
    assert request.header("webhook-timestamp") == str(int(T0.timestamp()))
    assert request.header("content-type") == "application/json"
    assert request.header("user-agent") == "Masivo-Webhooks/1"
    assert request.body == payload_body(delivery.payload).encode()
    expected = Webhook(secret).sign(webhook_id_for("event:1"), T0, request.body.decode())
    assert request.header("webhook-signature") == expected
    with time_machine.travel(T0, tick=False):
        assert Webhook(secret).verify(request.body, request.headers) == delivery.payload
    assert receiver.applied == {webhook_id_for("event:1"): delivery.payload}
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (S.SUCCEEDED, 1, 200)
    assert delivery.delivered_at == T0
    assert delivery.next_attempt_at is None
    assert delivery.last_response == '{"ok": true}'
    assert [(h["attempt"], h["status_code"], h["error"]) for h in delivery.history] == [
        (1, 200, "")
    ]


def test_a_wrong_secret_is_refused_by_the_receiver(workspace, receiver):
    destination, _ = endpoint_for(workspace, receiver)
    receiver.trust("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=")
    forward(destination, [event_item(1)])

    webhooks.deliveries_send_due()

    delivery = one(destination)
    assert (delivery.status, delivery.last_status_code) == (S.FAILED, 401)
    assert delivery.last_error == "the endpoint answered 401"
    assert receiver.applied == {}


def schedule_run(destination, receiver, *, answers):
    """Attempt after attempt, each at its due time; returns (attempted at, next due) pairs."""
    receiver.script(*answers)
    moments = []
    at = T0
    for _ in answers:
        with time_machine.travel(at, tick=False):
            assert webhooks.deliveries_send_due().claimed == 1
        delivery = one(destination)
        moments.append((at, delivery.next_attempt_at))
        if delivery.next_attempt_at is None:
            break
        with time_machine.travel(delivery.next_attempt_at - timedelta(milliseconds=1), tick=False):
            assert webhooks.deliveries_send_due().claimed == 0  # not before it is due
        at = delivery.next_attempt_at
    return moments


def test_retries_follow_the_schedule_with_jitter_then_the_delivery_is_dead(workspace, receiver):
    destination, _ = endpoint_for(workspace, receiver)
    forward(destination, [event_item(1)])

    moments = schedule_run(destination, receiver, answers=[Answer(500)] * 10)

    delays = [(due - at).total_seconds() for at, due in moments[:-1]]
    for delay, scheduled in zip(delays, webhooks.SCHEDULE[1:], strict=True):
        assert scheduled <= delay <= scheduled * 1.1
    assert moments[-1][1] is None
    delivery = one(destination)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (S.DEAD, 10, 500)
    assert [h["attempt"] for h in delivery.history] == list(range(1, 11))
    assert {request.header("webhook-id") for request in receiver.requests} == {
        webhook_id_for("event:1")
    }
    assert len(receiver.requests) == 10


def test_a_retry_succeeds_with_the_same_webhook_id(workspace, receiver):
    destination, _ = endpoint_for(workspace, receiver)
    forward(destination, [event_item(1)])
    redirect = Answer(302, None, {"Location": "https://elsewhere.example/"})

    schedule_run(destination, receiver, answers=[Answer(503), redirect])
    with time_machine.travel(one(destination).next_attempt_at, tick=False):
        webhooks.deliveries_send_due()

    delivery = one(destination)
    assert [h["status_code"] for h in delivery.history] == [503, 302, 200]
    assert (delivery.status, delivery.attempts) == (S.SUCCEEDED, 3)
    ids = [request.header("webhook-id") for request in receiver.requests]
    timestamps = [request.header("webhook-timestamp") for request in receiver.requests]
    assert ids == [webhook_id_for("event:1")] * 3
    assert len(set(timestamps)) == 3  # signed again at each attempt
    assert receiver.seen[webhook_id_for("event:1")] == 1


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (429, "120", 120),
        (503, "600", 600),
        (502, "60", 60),
        (504, "60", 60),
        (500, "600", 5),  # a 500's Retry-After is not a throttle: the schedule
        (429, "Tue, 01 Jan 2030 13:00:00 GMT", 3600),
        (429, "1", 5),  # never earlier than the schedule
        (429, "999999", 24 * 3600),  # at most a day
    ],
)
def test_retry_after_is_honoured(workspace, receiver, status, retry_after, wait):
    destination, _ = endpoint_for(workspace, receiver)
    forward(destination, [event_item(1)])
    receiver.script(Answer(status, None, {"Retry-After": retry_after}))

    with time_machine.travel(T0, tick=False):
        webhooks.deliveries_send_due()

    delivery = one(destination)
    delay = (delivery.next_attempt_at - T0).total_seconds()
    assert delivery.status == S.FAILED
    assert wait <= delay <= max(wait, 5 * 1.1)


def test_a_410_disables_the_endpoint_and_its_deliveries_wait(workspace, receiver):
    destination, _ = endpoint_for(workspace, receiver)
    forward(destination, [event_item(1), event_item(2)])
    receiver.script(Answer(410))

    with time_machine.travel(T0, tick=False):
        report = webhooks.deliveries_send_due()
    later = webhooks.deliveries_send_due(now=T0 + timedelta(days=2))

    with workspace_scope(workspace.id):
        endpoint = Destination.objects.get(id=destination.id)
    assert report.disabled == [destination.id]
    assert later.claimed == 0
    assert endpoint.status == Destination.Status.DISABLED
    assert endpoint.disabled_reason == (
        "the endpoint answered 410 Gone on 2030-01-01 12:00 UTC: it asked to receive no more "
        "webhooks; enable it again to resume"
    )
    first, second = deliveries(destination)
    assert (first.status, first.attempts, first.last_error) == (
        S.FAILED, 1, "410 Gone: the endpoint is disabled")  # fmt: skip
    assert (second.status, second.attempts) == (S.PENDING, 0)
    assert len(receiver.requests) == 1

    with workspace_scope(workspace.id):
        webhooks.webhook_endpoint_set_active(destination=endpoint, actor=ADMIN, active=True)
    webhooks.deliveries_send_due(now=T0 + timedelta(days=2))

    assert [row.status for row in deliveries(destination)] == [S.SUCCEEDED, S.SUCCEEDED]


def test_replay_sends_a_dead_delivery_again_with_the_same_webhook_id(workspace, receiver):
    destination, _ = endpoint_for(workspace, receiver)
    forward(destination, [event_item(1)])
    with workspace_scope(workspace.id):
        WebhookDelivery.objects.filter(destination=destination).update(
            status=S.DEAD, attempts=10, next_attempt_at=None
        )
        dead = WebhookDelivery.objects.get(destination=destination)
        replayed = webhooks.delivery_replay(delivery=dead, actor=ADMIN)
    assert (replayed.status, replayed.attempts) == (S.PENDING, 0)

    webhooks.deliveries_send_due()
    with workspace_scope(workspace.id):
        webhooks.delivery_replay(delivery=one(destination), actor=ADMIN)
    webhooks.deliveries_send_due()

    delivery = one(destination)
    assert (delivery.status, delivery.attempts) == (S.SUCCEEDED, 1)
    assert [r.header("webhook-id") for r in receiver.requests] == [dead.webhook_id] * 2
    assert receiver.seen[dead.webhook_id] == 2
    assert list(receiver.applied) == [dead.webhook_id]  # the receiver applied it once


def test_replay_of_a_delivery_being_sent_is_a_conflict(workspace, receiver):
    destination, _ = endpoint_for(workspace, receiver)
    forward(destination, [event_item(1)])
    webhooks.deliveries_claim(now=T0)

    with workspace_scope(workspace.id), pytest.raises(Conflict) as refused:
        webhooks.delivery_replay(delivery=one(destination), actor=ADMIN)

    assert refused.value.message == "it is being sent right now; try again in a moment"


def test_a_stalled_claim_is_claimed_again(workspace, receiver):
    destination, _ = endpoint_for(workspace, receiver)
    forward(destination, [event_item(1)])
    webhooks.deliveries_claim(now=T0)

    assert webhooks.deliveries_claim(now=T0 + webhooks.STALL - timedelta(seconds=1)) == []
    report = webhooks.deliveries_send_due(now=T0 + webhooks.STALL + timedelta(seconds=1))

    assert (report.claimed, report.succeeded) == (1, 1)
    assert one(destination).status == S.SUCCEEDED


def test_one_endpoints_failures_do_not_delay_another(workspace, receiver):
    good, _ = endpoint_for(workspace, receiver, path="/good")
    bad, _ = endpoint_for(workspace, receiver, path="/bad")
    forward(good, [event_item(n) for n in range(1, 6)])
    forward(bad, [event_item(n) for n in range(1, 6)])
    receiver.answer_when(lambda request: request.path == "/bad", Answer(500))

    with time_machine.travel(T0, tick=False):
        report = webhooks.deliveries_send_due()

    assert (report.claimed, report.succeeded, report.failed, report.released) == (10, 5, 1, 4)
    assert [row.status for row in deliveries(good)] == [S.SUCCEEDED] * 5
    bad_rows = deliveries(bad)
    assert [(row.status, row.attempts) for row in bad_rows] == [(S.FAILED, 1)] + [
        (S.PENDING, 0)
    ] * 4
    assert {row.next_attempt_at for row in bad_rows[1:]} == {T0 + webhooks.PAUSE_AFTER_FAILURE}
    assert len(receiver.requests_to("/bad")) == 1


def test_a_timeout_is_a_failed_attempt(workspace, receiver, monkeypatch):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.3)
    try:
        with workspace_scope(workspace.id):
            created = webhooks.webhook_endpoint_create(
                workspace=workspace, actor=ADMIN, name="Silent", topics=["event.tracked"],
                url=f"http://127.0.0.1:{silent.getsockname()[1]}/hooks",
            )  # fmt: skip
        forward(created.destination, [event_item(1)])
        webhooks.deliveries_send_due()
    finally:
        silent.close()

    delivery = one(created.destination)
    assert (delivery.status, delivery.last_status_code) == (S.FAILED, None)
    assert delivery.last_error == "timed out after 0.3 s"


# Rotation ---------------------------------------------------------------------------------------


def test_rotation_signs_with_both_secrets_during_the_grace_then_drops_the_old(workspace, receiver):
    destination, old = endpoint_for(workspace, receiver)
    with workspace_scope(workspace.id), time_machine.travel(T0, tick=False):
        new = webhooks.webhook_secret_rotate(destination=destination, actor=ADMIN)
    forward(destination, [event_item(1), event_item(2)])

    with time_machine.travel(T0 + timedelta(hours=23), tick=False):
        webhooks.deliveries_send_due(destination_id=destination.id, delivery_ids=[
            deliveries(destination)[0].id])  # fmt: skip
    during = receiver.requests[-1]
    first, second = during.header("webhook-signature").split(" ")
    with time_machine.travel(T0 + timedelta(hours=23), tick=False):
        assert receiver.signature_verifies(during, new, first)
        assert receiver.signature_verifies(during, old, second)
        assert not receiver.signature_verifies(during, old, first)
        receiver.trust(old)
        assert receiver.verified(during) is not None  # a receiver not yet updated
        receiver.trust(new)
        assert receiver.verified(during) is not None  # one already updated

    with time_machine.travel(T0 + webhooks.ROTATION_GRACE + timedelta(seconds=1), tick=False):
        webhooks.deliveries_send_due()
        after = receiver.requests[-1]
        assert after.header("webhook-signature").count(" ") == 0
        assert receiver.signature_verifies(after, new, after.header("webhook-signature"))
    with workspace_scope(workspace.id):
        endpoint = Destination.objects.get(id=destination.id)
    assert endpoint.credentials == {"secrets": [new], "retired_at": None}
    assert endpoint.credential_hints == {"secret": f"whsec_…{new[-4:]}"}


def test_a_second_rotation_keeps_only_the_current_secret_next_to_the_new(workspace, receiver):
    destination, first = endpoint_for(workspace, receiver)
    with workspace_scope(workspace.id), time_machine.travel(T0, tick=False):
        second = webhooks.webhook_secret_rotate(destination=destination, actor=ADMIN)
        third = webhooks.webhook_secret_rotate(destination=destination, actor=ADMIN)
        endpoint = Destination.objects.get(id=destination.id)

    assert endpoint.credentials == {
        "secrets": [third, second],
        "retired_at": (T0 + timedelta(hours=24)).isoformat(),
    }
    assert first not in endpoint.credentials["secrets"]


def test_signed_headers_carry_one_signature_per_secret():
    secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RV"]
    headers = signed_headers(webhook_id="msg_1", body='{"a":1}', secrets=secrets, now=T0)

    assert headers["webhook-signature"] == " ".join(
        Webhook(secret).sign("msg_1", T0, '{"a":1}') for secret in secrets
    )
    assert headers["webhook-timestamp"] == str(int(T0.timestamp()))


# SSRF at send -----------------------------------------------------------------------------------


def test_an_address_refused_at_send_is_a_failed_attempt_and_nothing_is_sent(
    workspace, receiver, settings
):
    destination, _ = endpoint_for(workspace, receiver)
    forward(destination, [event_item(1)])
    settings.MASIVO_OUTBOUND_ALLOWLIST = []

    webhooks.deliveries_send_due()

    delivery = one(destination)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (S.FAILED, 1, None)
    assert delivery.last_error == (
        f"refused by the outbound guard: Refused '{receiver.url}/hooks': the host 127.0.0.1 is "
        "a loopback address."
    )
    assert receiver.requests == []


def test_a_redirect_to_a_private_address_is_not_followed(workspace, receiver):
    destination, _ = endpoint_for(workspace, receiver)
    forward(destination, [event_item(1)])
    receiver.script(Answer(307, None, {"Location": "http://10.0.0.1/internal"}))

    webhooks.deliveries_send_due()

    delivery = one(destination)
    assert (delivery.status, delivery.last_status_code) == (S.FAILED, 307)
    assert delivery.last_error == "redirects are not followed (307 to http://10.0.0.1/internal)"
    assert [request.path for request in receiver.requests] == ["/hooks"]


# Tasks ------------------------------------------------------------------------------------------


def test_the_tasks_send_due_deliveries(workspace, receiver):
    destination, _ = endpoint_for(workspace, receiver)
    forward(destination, [event_item(1), event_item(2)])

    woken = webhook_tasks.webhooks_send_endpoint(workspace_id=workspace.id,
                                                 destination_id=destination.id)  # fmt: skip
    swept = webhook_tasks.webhooks_send_due()

    assert (woken, swept) == (2, 0)
    assert webhook_tasks.beat_schedule() == {
        "send-due-webhooks": {"task": "destinations.webhooks_send_due", "schedule": 5.0}
    }


# Through the generic destination services ------------------------------------------------------


def test_the_generic_destination_test_posts_a_signed_webhook_test(workspace, receiver):
    destination, secret = endpoint_for(workspace, receiver)
    receiver.script(Answer(204), Answer(500))

    with workspace_scope(workspace.id):
        endpoint = Destination.objects.get(id=destination.id)
        ok = services.destination_test(destination=endpoint, actor=ADMIN)
        failing = services.destination_test(destination=endpoint, actor=ADMIN)

    assert (ok.is_ok, ok.detail) == (True, "the endpoint answered 204")
    assert (failing.is_ok, failing.detail) == (False, "the endpoint answered 500")
    first = receiver.requests[0]
    assert Webhook(secret).verify(first.body, first.headers)["type"] == "webhook.test"
    assert deliveries(destination) == []  # a connection test is not a delivery


def test_the_generic_destination_services_check_the_url(workspace, settings):
    settings.MASIVO_OUTBOUND_ALLOWLIST = []

    with workspace_scope(workspace.id), pytest.raises(InvalidInput) as refused:
        services.destination_create(
            workspace=workspace, kind="webhook", name="Hooks", actor=ADMIN,
            config={"url": "http://[::ffff:10.0.0.1]/", "topics": ["event.tracked"]},
            credentials={"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]},
        )  # fmt: skip

    assert refused.value.field == "config.url"
    assert refused.value.message == (
        "Refused 'http://[::ffff:10.0.0.1]/': the host ::ffff:10.0.0.1 is an IPv4-mapped form "
        "of a private address."
    )
