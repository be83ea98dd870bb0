"""SendGrid's Event Webhook: signatures (valid, invalid, missing, stale, replayed), each event
type's effect on the message, the suppression list, consent and the customer's events."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from sendgrid.helpers.eventwebhook import EventWebhookHeader

from masivo.tenancy.context import workspace_scope
from messaging.feedback.links import sendgrid_webhook_url
from messaging.models import Message, MessageStatusChange, Suppression, Template, TemplateVersion
from profiles.models import ConsentChange, Event
from tests.factories import CustomerFactory
from tests.messaging.helpers import SENDGRID_VALUES, connect

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NOW_TS = str(int(NOW.timestamp()))


@pytest.fixture
def signing_key():
    return ec.generate_private_key(ec.SECP256R1())


def public_key_b64(private_key) -> str:
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sign(private_key, timestamp: str, body: bytes) -> str:
    """As SendGrid does: ECDSA P-256 / SHA-256 over timestamp + raw body, base64 DER."""
    signature = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


@pytest.fixture
def sendgrid(workspace, signing_key):
    return connect(
        workspace,
        "sendgrid",
        SENDGRID_VALUES | {"event_webhook_public_key": public_key_b64(signing_key)},
    )


def make_message(workspace, customer=None, **fields) -> Message:
    with workspace_scope(workspace.id):
        customer = customer or CustomerFactory(workspace=workspace, email="ana@example.com")
        defaults = {
            "workspace": workspace,
            "customer": customer,
            "channel": "email",
            "kind": "marketing",
            "dedupe_key": f"campaign:7:{customer.id}",
            "origin": {"source": "campaign", "campaign": 7},
            "address": customer.email or "ana@example.com",
            "status": "sent",
            "provider": "sendgrid",
            "provider_message_id": "x-msg-1",
        }
        return Message.objects.create(**(defaults | fields))


def post(
    workspace, connection, events, *, key=None, timestamp=None, body=None, headers=None, at=NOW
):
    body = body if body is not None else (json.dumps(events) + "\r\n").encode()
    timestamp = timestamp or str(int(at.timestamp()))
    if headers is None:
        headers = {
            EventWebhookHeader.SIGNATURE: sign(key, timestamp, body),
            EventWebhookHeader.TIMESTAMP: timestamp,
        }
    with workspace_scope(workspace.id):
        url = sendgrid_webhook_url(connection)
    path = url.split("://", 1)[1].split("/", 1)[1]
    with time_machine.travel(at, tick=False):
        return Client().post(
            "/" + path,
            data=body,
            content_type="application/json",
            headers=headers,
        )


def event(message, kind, event_id, **fields):
    return {
        "email": message.address,
        "timestamp": int(NOW.timestamp()) - 30,
        "event": kind,
        "sg_event_id": event_id,
        "sg_message_id": "x-msg-1.filter0001",
        "masivo_message_id": str(message.id),
        **fields,
    }


def state(workspace, message):
    with workspace_scope(workspace.id):
        message.refresh_from_db()
        history = list(
            MessageStatusChange.objects.filter(message=message)
            .order_by("id")
            .values_list("status", "detail", "provider_event_id")
        )
        events = list(
            Event.objects.filter(customer_id=message.customer_id)
            .order_by("id")
            .values_list("name", "properties")
        )
    return message.status, history, events


# Signatures ------------------------------------------------------------------------------


def test_a_signed_batch_is_recorded(workspace, sendgrid, signing_key):
    message = make_message(workspace)
    response = post(workspace, sendgrid, [event(message, "delivered", "e1", response="250 OK")],
                    key=signing_key)  # fmt: skip
    assert response.status_code == 200
    assert response.json() == {
        "received": 1, "recorded": 1, "duplicates": 0, "ignored": 0, "ignored_reasons": {}
    }  # fmt: skip
    status, history, events = state(workspace, message)
    assert status == "delivered"
    assert history == [("delivered", "SendGrid delivered: 250 OK", "sendgrid:e1")]
    assert [name for name, _ in events] == ["Message Delivered"]


def test_another_key_is_refused_and_nothing_changes(workspace, sendgrid):
    message = make_message(workspace)
    stranger = ec.generate_private_key(ec.SECP256R1())
    response = post(workspace, sendgrid, [event(message, "delivered", "e1")], key=stranger)
    assert response.status_code == 403
    assert response.json() == {
        "detail": "invalid signature: check the verification key of this Event Webhook",
        "code": "permission_denied",
    }
    assert state(workspace, message) == ("sent", [], [])


def test_a_body_changed_after_signing_is_refused(workspace, sendgrid, signing_key):
    message = make_message(workspace)
    body = (json.dumps([event(message, "delivered", "e1")]) + "\r\n").encode()
    timestamp = str(int(NOW.timestamp()))
    headers = {
        EventWebhookHeader.SIGNATURE: sign(signing_key, timestamp, body),
        EventWebhookHeader.TIMESTAMP: timestamp,
    }
    tampered = body.replace(b"delivered", b"bounce")
    response = post(workspace, sendgrid, None, body=tampered, headers=headers)
    assert response.status_code == 403
    assert state(workspace, message)[0] == "sent"


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "unsigned: the X-Twilio-Email-Event-Webhook-Signature and "
             "X-Twilio-Email-Event-Webhook-Timestamp headers are required"),
        ({EventWebhookHeader.TIMESTAMP: NOW_TS}, "unsigned: the "
         "X-Twilio-Email-Event-Webhook-Signature and X-Twilio-Email-Event-Webhook-Timestamp "
         "headers are required"),
        ({EventWebhookHeader.SIGNATURE: "not base64!!", EventWebhookHeader.TIMESTAMP: NOW_TS},
         "invalid signature: check the verification key of this Event Webhook"),
        ({EventWebhookHeader.SIGNATURE: "QUJD", EventWebhookHeader.TIMESTAMP: "soon"},
         "X-Twilio-Email-Event-Webhook-Timestamp must be unix seconds"),
    ],
)  # fmt: skip
def test_unsigned_and_malformed_signatures_are_refused(workspace, sendgrid, headers, detail):
    message = make_message(workspace)
    response = post(workspace, sendgrid, [event(message, "delivered", "e1")], headers=headers)
    assert (response.status_code, response.json()["detail"]) == (403, detail)
    assert state(workspace, message)[0] == "sent"


def test_a_stale_or_future_timestamp_is_refused_even_when_signed(workspace, sendgrid, signing_key):
    message = make_message(workspace)
    events = [event(message, "delivered", "e1")]
    old = str(int((NOW - timedelta(minutes=11)).timestamp()))
    response = post(workspace, sendgrid, events, key=signing_key, timestamp=old)
    assert (response.status_code, response.json()["detail"]) == (
        403,
        "stale: signed 660 seconds ago, more than 600",
    )
    future = str(int((NOW + timedelta(minutes=5)).timestamp()))
    response = post(workspace, sendgrid, events, key=signing_key, timestamp=future)
    assert (response.status_code, response.json()["detail"]) == (
        403,
        "the signature's timestamp is in the future",
    )
    recent = str(int((NOW - timedelta(minutes=9)).timestamp()))
    assert post(workspace, sendgrid, events, key=signing_key, timestamp=recent).status_code == 200


def test_without_a_verification_key_nothing_is_accepted(workspace, signing_key):
    connection = connect(workspace, "sendgrid", SENDGRID_VALUES)
    message = make_message(workspace)
    response = post(workspace, connection, [event(message, "delivered", "e1")], key=signing_key)
    assert response.status_code == 403
    assert response.json()["detail"].startswith("signature verification is not set up")
    assert state(workspace, message)[0] == "sent"


def test_an_unknown_token_is_a_404(workspace, sendgrid, signing_key, other_workspace):
    with time_machine.travel(NOW, tick=False):
        for token in ["nope", f"{workspace.id}-{'0' * 40}", f"{other_workspace.id}-{'a' * 40}"]:
            response = Client().post(f"/m/webhooks/sendgrid/{token}", data=b"[]",
                                     content_type="application/json")  # fmt: skip
            assert response.status_code == 404
    assert sendgrid.webhook_token.startswith(f"{workspace.id}-")


def test_a_replayed_event_is_recorded_once(workspace, sendgrid, signing_key):
    message = make_message(workspace)
    batch = [event(message, "open", "e-open"), event(message, "open", "e-open")]
    first = post(workspace, sendgrid, batch, key=signing_key).json()
    again = post(workspace, sendgrid, batch[:1], key=signing_key).json()
    assert (first["recorded"], first["duplicates"]) == (1, 1)
    assert (again["recorded"], again["duplicates"]) == (0, 1)
    status, history, events = state(workspace, message)
    assert status == "opened"
    assert history == [("opened", "SendGrid: opened", "sendgrid:e-open")]
    assert [name for name, _ in events] == ["Message Opened"]


def test_bad_bodies_are_400_and_unknown_messages_are_counted(workspace, sendgrid, signing_key):
    response = post(workspace, sendgrid, None, key=signing_key, body=b'{"event": "open"}')
    assert (response.status_code, response.json()["detail"]) == (
        400,
        "the body must be a JSON array of events",
    )
    response = post(workspace, sendgrid, None, key=signing_key, body=b"[{")
    assert response.status_code == 400
    response = post(workspace, sendgrid, None, key=signing_key, body=b"\xff\xfe")
    assert response.status_code == 403
    message = make_message(workspace)
    events = [
        {"event": "delivered", "sg_event_id": "a", "masivo_message_id": "999999"},
        {"event": "delivered", "sg_event_id": "b"},
        {"event": "delivered", "sg_event_id": "c", "masivo_message_id": ["x"]},
        "not an object",
        event(message, "processed", "d"),
        event(message, "brand_new_event", "e"),
        event(message, "delivered", ""),
    ]
    response = post(workspace, sendgrid, events, key=signing_key)
    assert response.status_code == 200
    assert response.json() == {
        "received": 7,
        "recorded": 0,
        "duplicates": 0,
        "ignored": 7,
        "ignored_reasons": {
            "unknown message": 3,
            "not an object": 1,
            "processed": 1,
            "unknown event type": 1,
            "no sg_event_id": 1,
        },
    }


def test_another_workspaces_message_is_unknown(workspace, other_workspace, sendgrid, signing_key):
    theirs = make_message(other_workspace)
    body = post(workspace, sendgrid, [event(theirs, "delivered", "e1")], key=signing_key).json()
    assert body["ignored_reasons"] == {"unknown message": 1}
    assert state(other_workspace, theirs)[0] == "sent"


# Events --------------------------------------------------------------------------------


def test_status_moves_forward_only(workspace, sendgrid, signing_key):
    message = make_message(workspace)
    batch = [
        event(message, "click", "e3", url="https://shop.example/a"),
        event(message, "open", "e2"),
        event(message, "delivered", "e1", response="250 OK"),
    ]
    post(workspace, sendgrid, batch, key=signing_key)
    status, history, events = state(workspace, message)
    assert status == "clicked"
    assert [row[0] for row in history] == ["clicked", "opened", "delivered"]
    names = [name for name, _ in events]
    assert names == ["Message Clicked", "Message Opened", "Message Delivered"]
    # A bounce after the customer engaged does not end the message.
    post(workspace, sendgrid, [event(message, "bounce", "e4", type="bounce")], key=signing_key)
    assert state(workspace, message)[0] == "clicked"


def test_event_properties_name_the_message_template_and_campaign(workspace, sendgrid, signing_key):
    with workspace_scope(workspace.id):
        template = Template.objects.create(workspace=workspace, name="Welcome", channel="email")
        version = TemplateVersion.objects.create(workspace=workspace, template=template, number=3)
    message = make_message(workspace, template=template, template_version=version)
    post(workspace, sendgrid, [event(message, "click", "e1", url="https://shop.example/a")],
         key=signing_key)  # fmt: skip
    [(name, properties)] = state(workspace, message)[2]
    assert name == "Message Clicked"
    assert properties == {
        "message_id": message.id,
        "channel": "email",
        "kind": "marketing",
        "template_id": template.id,
        "template_version": 3,
        "source": "campaign",
        "campaign_id": 7,
        "url": "https://shop.example/a",
    }


def suppressions(workspace):
    with workspace_scope(workspace.id):
        return list(
            Suppression.objects.order_by("id").values_list("channel", "address", "reason", "source")
        )


def consent_of(workspace, message):
    with workspace_scope(workspace.id):
        message.customer.refresh_from_db()
        changes = list(ConsentChange.objects.values_list("purpose", "status", "source"))
        return message.customer.consent.get("email_marketing", {}).get("status"), changes


def test_a_hard_bounce_ends_the_message_and_suppresses_the_address(
    workspace, sendgrid, signing_key
):
    message = make_message(workspace, status="delivered")
    bounce = event(message, "bounce", "e1", type="bounce", status="5.1.1",
                   reason="550 5.1.1 user unknown")  # fmt: skip
    post(workspace, sendgrid, [bounce], key=signing_key)
    status, history, events = state(workspace, message)
    assert status == "bounced"
    assert history == [("bounced", "SendGrid bounce 5.1.1: 550 5.1.1 user unknown", "sendgrid:e1")]
    assert message.error_code == "5.1.1"
    assert events[0][0] == "Message Bounced"
    assert events[0][1]["bounce_type"] == "hard"
    assert suppressions(workspace) == [("email", "ana@example.com", "hard_bounce", "sendgrid")]


def test_bounce_classifications_decide_whether_to_suppress(workspace, sendgrid, signing_key):
    ana = make_message(workspace)
    with workspace_scope(workspace.id):
        bo_customer = CustomerFactory(workspace=workspace, email="bo@example.com")
    bo = make_message(workspace, customer=bo_customer)
    post(workspace, sendgrid, [
        event(ana, "bounce", "e1", type="bounce", bounce_classification="Invalid Address"),
        event(bo, "bounce", "e2", type="bounce", bounce_classification="Reputation"),
    ], key=signing_key)  # fmt: skip
    assert state(workspace, bo)[0] == "bounced"
    assert suppressions(workspace) == [("email", "ana@example.com", "invalid_address", "sendgrid")]


def test_a_blocked_message_is_a_soft_bounce_without_suppression(workspace, sendgrid, signing_key):
    message = make_message(workspace)
    post(workspace, sendgrid, [event(message, "bounce", "e1", type="blocked", reason="busy")],
         key=signing_key)  # fmt: skip
    status, history, events = state(workspace, message)
    assert (status, history[0][1]) == ("bounced", "SendGrid blocked: busy")
    assert events[0][1]["bounce_type"] == "soft"
    assert suppressions(workspace) == []


def test_a_drop_fails_the_message_and_mirrors_sendgrids_list(workspace, sendgrid, signing_key):
    message = make_message(workspace)
    post(workspace, sendgrid, [event(message, "dropped", "e1", reason="Bounced Address")],
         key=signing_key)  # fmt: skip
    status, history, events = state(workspace, message)
    assert (status, history[0][1]) == ("failed", "SendGrid dropped: Bounced Address")
    assert events[0][0] == "Message Failed"
    assert suppressions(workspace) == [("email", "ana@example.com", "hard_bounce", "sendgrid")]


def test_a_deferral_is_history_only(workspace, sendgrid, signing_key):
    message = make_message(workspace)
    post(workspace, sendgrid, [event(message, "deferred", "e1", attempt="2",
                                     response="450 try later")], key=signing_key)  # fmt: skip
    assert state(workspace, message) == (
        "sent",
        [("sent", "SendGrid deferred (attempt 2): 450 try later", "sendgrid:e1")],
        [],
    )


def test_a_spam_report_suppresses_and_withdraws_email_consent(workspace, sendgrid, signing_key):
    message = make_message(workspace, status="opened")
    post(workspace, sendgrid, [event(message, "spamreport", "e1")], key=signing_key)
    status, _, events = state(workspace, message)
    assert status == "opened"
    assert [name for name, _ in events] == ["Message Spam Reported"]
    assert suppressions(workspace) == [("email", "ana@example.com", "spam_report", "sendgrid")]
    assert consent_of(workspace, message) == (
        "denied",
        [("email_marketing", "denied", "sendgrid:spamreport")],
    )


@pytest.mark.parametrize("kind", ["unsubscribe", "group_unsubscribe"])
def test_an_unsubscribe_withdraws_email_consent(workspace, sendgrid, signing_key, kind):
    message = make_message(workspace)
    extra = {"asm_group_id": 12} if kind == "group_unsubscribe" else {}
    post(workspace, sendgrid, [event(message, kind, "e1", **extra)], key=signing_key)
    status, _, events = state(workspace, message)
    assert status == "sent"
    assert events[0][0] == "Message Unsubscribed"
    assert events[0][1]["via"] == kind
    assert consent_of(workspace, message) == (
        "denied",
        [("email_marketing", "denied", f"sendgrid:{kind}")],
    )
    assert suppressions(workspace) == []
