"""Twilio's webhooks: status callbacks and inbound STOP, signed as Twilio signs them (the SDK's
RequestValidator computes the signature over the public URL and the form)."""

import pytest
from django.test import Client, override_settings
from twilio.request_validator import RequestValidator

from masivo.tenancy.context import workspace_scope
from messaging.feedback.links import twilio_inbound_url, twilio_status_callback_url
from messaging.models import Message, MessageStatusChange, Suppression
from profiles.models import ConsentChange, Event
from tests.factories import CustomerFactory
from tests.messaging.helpers import TWILIO_TOKEN, TWILIO_VALUES, connect

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public_url")]

PUBLIC = "https://cdp.example.com"
PHONE = "+525512345678"


@pytest.fixture
def public_url():
    with override_settings(MASIVO_PUBLIC_URL=PUBLIC):
        yield


@pytest.fixture
def twilio(workspace):
    return connect(workspace, "twilio", TWILIO_VALUES)


def make_message(workspace, channel="whatsapp", **fields) -> Message:
    with workspace_scope(workspace.id):
        customer = CustomerFactory(workspace=workspace, phone=PHONE)
        return Message.objects.create(
            **{
                "workspace": workspace,
                "customer": customer,
                "channel": channel,
                "kind": "marketing",
                "dedupe_key": f"campaign:3:{customer.id}",
                "origin": {"source": "journey", "journey": 4, "step": "welcome"},
                "address": PHONE,
                "status": "sent",
                "provider": "twilio",
                "provider_message_id": "SM" + "a" * 32,
            }
            | fields
        )


def post(url: str, form: dict, *, token=TWILIO_TOKEN, signature=None, signed_url=None):
    if signature is None:
        signature = RequestValidator(token).compute_signature(signed_url or url, form)
    path = url.removeprefix(PUBLIC)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return Client().post(path, data=form, headers=headers)


def status_form(status: str, **extra) -> dict:
    return {
        "MessageSid": "SM" + "a" * 32,
        "MessageStatus": status,
        "AccountSid": TWILIO_VALUES["account_sid"],
        "From": "whatsapp:+14155238886",
        "To": f"whatsapp:{PHONE}",
        **extra,
    }


def history(workspace, message):
    with workspace_scope(workspace.id):
        message.refresh_from_db()
        rows = list(
            MessageStatusChange.objects.filter(message=message)
            .order_by("id")
            .values_list("status", "detail", "provider_event_id")
        )
        events = list(
            Event.objects.filter(customer_id=message.customer_id)
            .order_by("id")
            .values_list("name", "properties")
        )
    return message.status, rows, events


def callback_url(workspace, connection, message):
    with workspace_scope(workspace.id):
        return twilio_status_callback_url(connection, message.id)


def test_a_signed_status_callback_moves_the_message(workspace, twilio):
    message = make_message(workspace)
    url = callback_url(workspace, twilio, message)
    assert url == f"{PUBLIC}/m/webhooks/twilio/{twilio.webhook_token}/status?message={message.id}"

    response = post(url, status_form("delivered"))
    assert (response.status_code, response.json()) == (200, {"result": "recorded"})
    status, rows, events = history(workspace, message)
    assert status == "delivered"
    assert rows == [("delivered", "Twilio: delivered", f"twilio:SM{'a' * 32}:delivered")]
    assert events == [
        (
            "Message Delivered",
            {
                "message_id": message.id,
                "channel": "whatsapp",
                "kind": "marketing",
                "template_id": None,
                "template_version": None,
                "source": "journey",
                "journey_id": 4,
                "step": "welcome",
                "provider_status": "delivered",
            },
        )
    ]


def test_read_then_a_late_delivered_and_a_repeat(workspace, twilio):
    message = make_message(workspace)
    url = callback_url(workspace, twilio, message)
    post(url, status_form("read"))
    assert post(url, status_form("delivered")).json() == {"result": "recorded"}
    assert post(url, status_form("read")).json() == {"result": "duplicate"}
    status, rows, events = history(workspace, message)
    assert status == "read"
    assert [row[0] for row in rows] == ["read", "delivered"]
    assert [name for name, _ in events] == ["Message Read", "Message Delivered"]


def test_undelivered_fails_the_message_with_its_error_code(workspace, twilio):
    message = make_message(workspace)
    post(callback_url(workspace, twilio, message), status_form("undelivered", ErrorCode="63016"))
    status, _, events = history(workspace, message)
    assert (status, message.error_code, message.error) == (
        "failed",
        "63016",
        "Twilio: undelivered (error 63016)",
    )
    assert events[0][0] == "Message Failed"
    assert events[0][1]["error_code"] == "63016"
    with workspace_scope(workspace.id):
        assert not Suppression.objects.exists()


def test_an_unreachable_number_is_suppressed_on_its_channel(workspace, twilio):
    message = make_message(workspace)
    post(callback_url(workspace, twilio, message), status_form("failed", ErrorCode="63003"))
    with workspace_scope(workspace.id):
        assert list(Suppression.objects.values_list("channel", "address", "reason")) == [
            ("whatsapp", PHONE, "invalid_address")
        ]


def test_the_message_sid_finds_the_message_without_the_query(workspace, twilio):
    message = make_message(workspace, channel="sms")
    with workspace_scope(workspace.id):
        url = twilio_status_callback_url(twilio)
    assert post(url, status_form("sent")).json() == {"result": "recorded"}
    assert post(url, status_form("delivered", MessageSid="SM" + "b" * 32)).json() == {
        "result": "ignored",
        "reason": "unknown message",
    }
    assert post(url, status_form("queued")).json() == {
        "result": "ignored",
        "reason": "queued: nothing to record",
    }
    response = post(url, {"MessageSid": "SM1"})
    assert (response.status_code, response.json()["field"]) == (400, "MessageStatus")
    assert history(workspace, message)[1] == [("sent", "Twilio: sent", f"twilio:SM{'a' * 32}:sent")]


def test_bad_missing_and_misaddressed_signatures_are_refused(workspace, twilio):
    message = make_message(workspace)
    url = callback_url(workspace, twilio, message)
    form = status_form("delivered")
    wrong_token = post(url, form, token="f" * 32)
    assert (wrong_token.status_code, wrong_token.json()["code"]) == (403, "permission_denied")
    assert wrong_token.json()["detail"].startswith("invalid signature")
    unsigned = post(url, form, signature="")
    assert unsigned.json()["detail"] == "unsigned: the X-Twilio-Signature header is required"
    # Signed for the URL without TLS (a proxy's view): not the public URL Twilio called.
    insecure = post(url, form, signed_url=url.replace("https://", "http://"))
    assert insecure.status_code == 403
    # The form changed after signing.
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    tampered = post(url, form | {"MessageStatus": "read"}, signature=signature)
    assert tampered.status_code == 403
    assert history(workspace, message)[0] == "sent"
    response = Client().post(f"/m/webhooks/twilio/{workspace.id}-{'0' * 40}/status", data=form)
    assert response.status_code == 404


def inbound(body: str, sender: str = f"whatsapp:{PHONE}") -> dict:
    return {
        "MessageSid": "SM" + "c" * 32,
        "AccountSid": TWILIO_VALUES["account_sid"],
        "From": sender,
        "To": "whatsapp:+14155238886",
        "Body": body,
        "WaId": sender.removeprefix("whatsapp:+"),
    }


def consent(workspace):
    with workspace_scope(workspace.id):
        return list(ConsentChange.objects.order_by("id").values_list("purpose", "status", "source"))


@pytest.mark.parametrize("body", ["STOP", "  stop\n", "Unsubscribe", "cancel", "END", "quit"])
def test_stop_on_whatsapp_withdraws_whatsapp_consent(workspace, twilio, body):
    with workspace_scope(workspace.id):
        CustomerFactory(workspace=workspace, phone=PHONE)
        url = twilio_inbound_url(twilio)
    response = post(url, inbound(body))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content.decode().endswith("<Response></Response>")
    said = body.strip().upper()
    assert consent(workspace) == [("whatsapp_marketing", "denied", f"twilio:inbound {said}")]


def test_stop_by_sms_withdraws_sms_consent_and_start_grants_it_again(workspace, twilio):
    message = make_message(workspace, channel="sms")
    with workspace_scope(workspace.id):
        url = twilio_inbound_url(twilio)
    post(url, inbound("STOPALL", sender=PHONE))
    post(url, inbound("start", sender=PHONE))
    assert consent(workspace) == [
        ("sms_marketing", "denied", "twilio:inbound STOPALL"),
        ("sms_marketing", "granted", "twilio:inbound START"),
    ]
    with workspace_scope(workspace.id):
        message.customer.refresh_from_db()
        assert message.customer.consent["sms_marketing"]["status"] == "granted"


def test_other_replies_and_unsigned_inbound_change_nothing(workspace, twilio):
    with workspace_scope(workspace.id):
        CustomerFactory(workspace=workspace, phone=PHONE)
        url = twilio_inbound_url(twilio)
    assert post(url, inbound("please stop sending me these")).status_code == 200
    assert post(url, inbound("STOP"), signature="").status_code == 403
    assert post(url, inbound("STOP"), token="e" * 32).status_code == 403
    assert consent(workspace) == []
