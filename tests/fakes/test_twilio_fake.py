"""The Twilio fake, driven by the real twilio SDK through the redirecting HTTP client that
messaging uses (every *.twilio.com domain goes to the fake)."""

import json

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from messaging.channels.whatsapp import RedirectingHttpClient

SID = "AC" + "1" * 32
TOKEN = "f" * 32
CONTENT_SID = "HX" + "a" * 32


@pytest.fixture
def client(twilio_fake):
    twilio_fake.add_account(SID, TOKEN)
    return Client(SID, TOKEN, http_client=RedirectingHttpClient(twilio_fake.url, timeout=5))


def test_a_whatsapp_template_message_is_created_and_recorded(client, twilio_fake):
    message = client.messages.create(
        to="whatsapp:+5215512345678",
        from_="whatsapp:+14155238886",
        content_sid=CONTENT_SID,
        content_variables=json.dumps({"1": "Ana"}),
        status_callback="https://masivo.example/webhooks/twilio",
    )

    assert message.sid.startswith("SM")
    assert message.status == "queued"
    [request] = twilio_fake.messages_created
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.form == {
        "To": ["whatsapp:+5215512345678"],
        "From": ["whatsapp:+14155238886"],
        "ContentSid": [CONTENT_SID],
        "ContentVariables": ['{"1": "Ana"}'],
        "StatusCallback": ["https://masivo.example/webhooks/twilio"],
    }


def test_an_sms_through_a_messaging_service_is_accepted(client, twilio_fake):
    message = client.messages.create(
        to="+5215512345678", messaging_service_sid="MG" + "2" * 32, body="Hi"
    )

    assert message.status == "accepted"
    assert twilio_fake.messages_created[0].form["MessagingServiceSid"] == ["MG" + "2" * 32]


def test_the_account_fetch_that_test_connection_makes(client, twilio_fake):
    account = client.api.v2010.accounts(SID).fetch()

    assert (account.sid, account.status, account.friendly_name) == (SID, "active", "Fake account")
    assert twilio_fake.requests[0].path == f"/2010-04-01/Accounts/{SID}.json"


def test_a_wrong_token_is_twilios_20003(twilio_fake):
    twilio_fake.add_account(SID, TOKEN)
    client = Client(SID, "0" * 32, http_client=RedirectingHttpClient(twilio_fake.url))

    with pytest.raises(TwilioRestException) as raised:
        client.api.v2010.accounts(SID).fetch()

    assert (raised.value.status, raised.value.code) == (401, 20003)


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        ("rate_limited", 429, 20429),
        ("server_error", 500, 20500),
    ],
)
def test_scripted_errors(client, twilio_fake, answer, status, code):
    twilio_fake.script(getattr(twilio_fake, answer)())

    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to="+5215512345678", from_="+14155238886", body="Hi")

    assert (raised.value.status, raised.value.code) == (status, code)
    assert client.messages.create(to="+5215512345678", from_="+14155238886", body="Hi").sid


def test_a_permanent_error_by_recipient(client, twilio_fake):
    twilio_fake.answer_when(
        lambda request: (request.form or {}).get("To") == ["whatsapp:+15005550001"],
        twilio_fake.error(400, 63016, "Outside the allowed window"),
    )

    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to="whatsapp:+15005550001", from_="whatsapp:+1415", body="x")

    assert (raised.value.status, raised.value.code) == (400, 63016)


def test_content_lookup_by_sid(client, twilio_fake):
    twilio_fake.add_content(CONTENT_SID, "order_shipped", {"1": "name"})

    content = client.content.v1.contents(CONTENT_SID).fetch()

    assert (content.sid, content.friendly_name, content.variables) == (
        CONTENT_SID,
        "order_shipped",
        {"1": "name"},
    )
    assert twilio_fake.requests[-1].path == f"/v1/Content/{CONTENT_SID}"
