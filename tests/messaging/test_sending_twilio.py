"""The send pipeline with Twilio: WhatsApp by approved template (ContentSid + ContentVariables),
SMS by Body, a StatusCallback naming our message, and Twilio's errors."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine

from messaging.sending import send_due
from tests.fakes.twilio import TwilioFake
from tests.messaging.helpers import TWILIO_SID
from tests.messaging.test_sending_support import (
    AT,
    WHATSAPP_SID,
    connect_twilio,
    customer,
    fresh,
    queue,
    template_version,
)

pytestmark = pytest.mark.django_db
PHONE = "+5215512345678"


@pytest.fixture(autouse=True)
def _clock(settings):
    settings.MASIVO_SEND_RATES = {"twilio": 1000}
    settings.MASIVO_PUBLIC_URL = "https://masivo.example"
    with time_machine.travel(AT, tick=False):
        yield


def _form(request) -> dict:
    return {name: values[-1] for name, values in request.form.items()}


def test_whatsapp_goes_by_approved_template_with_a_status_callback(workspace, twilio_fake):
    connection = connect_twilio(workspace, twilio_fake)
    version = template_version(workspace, "whatsapp")
    message = queue(workspace, version, customer(workspace, first_name="Ana", phone=PHONE), key="k")

    send_due()

    [created] = twilio_fake.messages_created
    assert created.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert _form(created) == {
        "To": f"whatsapp:{PHONE}",
        "From": "whatsapp:+14155238886",
        "ContentSid": WHATSAPP_SID,
        "ContentVariables": '{"1":"Ana"}',
        # The connection's own webhook URL (messaging.feedback.links), naming the message.
        "StatusCallback": "https://masivo.example/m/webhooks/twilio/"
        f"{connection.webhook_token}/status?message={message.id}",
    }
    stored = fresh(workspace, message)
    assert (stored.status, stored.provider) == ("sent", "twilio")
    assert stored.provider_message_id == twilio_fake.messages[0]["sid"]
    assert twilio_fake.delivered_keys == {str(message.id): 1}


def test_a_messaging_service_replaces_the_sender(workspace, twilio_fake):
    service = "MG" + "0123456789abcdef" * 2
    connect_twilio(workspace, twilio_fake, whatsapp_from="", messaging_service_sid=service)
    version = template_version(workspace, "whatsapp")
    queue(workspace, version, customer(workspace, phone=PHONE), key="k")

    send_due()

    form = _form(twilio_fake.messages_created[0])
    assert form["MessagingServiceSid"] == service
    assert "From" not in form


def test_sms_goes_by_body(workspace, twilio_fake):
    connection = connect_twilio(workspace, twilio_fake, sms_from="+14155550000")
    version = template_version(workspace, "sms")
    message = queue(workspace, version, customer(workspace, first_name="Ana", phone=PHONE), key="k")

    send_due()

    form = _form(twilio_fake.messages_created[0])
    assert {name: form[name] for name in ("To", "From", "Body")} == {
        "To": PHONE, "From": "+14155550000", "Body": "Hola Ana",
    }  # fmt: skip
    callback = urlsplit(form["StatusCallback"])
    assert callback.path == f"/m/webhooks/twilio/{connection.webhook_token}/status"
    assert parse_qs(callback.query) == {"message": [str(message.id)]}
    assert fresh(workspace, message).status == "sent"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (21211, "Twilio 21211: invalid To number"),
        (21610, "Twilio 21610: the recipient replied STOP (unsubscribed)"),
        (63016, "Twilio 63016: the template is not allowed outside the 24 h window"),
        (63049, "Twilio 63049: Meta chose not to deliver this marketing template"),
    ],
)
def test_permanent_errors_fail_with_the_reason(workspace, twilio_fake, code, reason):
    connect_twilio(workspace, twilio_fake)
    version = template_version(workspace, "whatsapp")
    message = queue(workspace, version, customer(workspace, phone=PHONE), key="k")
    twilio_fake.script(TwilioFake.error(400, code, "refused"))

    send_due()

    stored = fresh(workspace, message)
    assert (stored.status, stored.error_code, stored.error) == ("failed", f"twilio_{code}", reason)
    assert len(twilio_fake.messages_created) == 1


def test_a_429_waits_its_retry_after(workspace, twilio_fake):
    connect_twilio(workspace, twilio_fake)
    version = template_version(workspace, "whatsapp")
    message = queue(workspace, version, customer(workspace, phone=PHONE), key="k")
    twilio_fake.script(TwilioFake.rate_limited(retry_after=9))

    send_due()

    stored = fresh(workspace, message)
    assert (stored.status, stored.error_code, stored.due_at) == (
        "queued", "rate_limited", AT + timedelta(seconds=9),
    )  # fmt: skip
    with time_machine.travel(AT + timedelta(seconds=9), tick=False):
        send_due()
    assert fresh(workspace, message).status == "sent"
    assert twilio_fake.delivered_keys == {str(message.id): 1}


def test_a_5xx_backs_off(workspace, twilio_fake):
    connect_twilio(workspace, twilio_fake)
    version = template_version(workspace, "whatsapp")
    message = queue(workspace, version, customer(workspace, phone=PHONE), key="k")
    twilio_fake.script(TwilioFake.server_error(503))

    send_due()

    stored = fresh(workspace, message)
    assert (stored.status, stored.error_code) == ("queued", "provider_unavailable")
    assert AT + timedelta(seconds=15) <= stored.due_at <= AT + timedelta(seconds=30)
