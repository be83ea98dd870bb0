"""The SendGrid fake, driven by the real sendgrid SDK pointed at it by `host`."""

import json

import pytest
from python_http_client.exceptions import (
    BadRequestsError,
    InternalServerError,
    TooManyRequestsError,
    UnauthorizedError,
)
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail, Personalization, To

KEY = "SG.fake-key.0123456789abcdef"


def _mail(*recipients: str) -> Mail:
    mail = Mail(from_email="news@acme.example", subject="Hello", html_content="<p>Hi</p>")
    for index, recipient in enumerate(recipients):
        personalization = Personalization()
        personalization.add_to(To(recipient))
        personalization.add_custom_arg(CustomArg("msv_message_id", str(index + 1)))
        mail.add_personalization(personalization)
    return mail


@pytest.fixture
def client(sendgrid_fake):
    sendgrid_fake.add_key(KEY)
    return SendGridAPIClient(api_key=KEY, host=sendgrid_fake.url)


def test_a_send_is_accepted_and_recorded_parsed(client, sendgrid_fake):
    response = client.send(_mail("ana@example.com", "bo@example.com"))

    assert response.status_code == 202
    assert response.headers["X-Message-Id"].startswith("fake-")
    [request] = sendgrid_fake.mail_sends
    assert request.header("Authorization") == f"Bearer {KEY}"
    assert request.json["from"] == {"email": "news@acme.example"}
    # The SDK's add_personalization puts each new one first.
    assert request.json["personalizations"] == [
        {"to": [{"email": "bo@example.com"}], "custom_args": {"msv_message_id": "2"}},
        {"to": [{"email": "ana@example.com"}], "custom_args": {"msv_message_id": "1"}},
    ]
    assert request.json["content"] == [{"type": "text/html", "value": "<p>Hi</p>"}]


def test_scopes_answer_what_the_key_may_do(client, sendgrid_fake):
    response = client.client.scopes.get()

    assert response.status_code == 200
    assert json.loads(response.body) == {"scopes": ["mail.send", "user.profile.read"]}


def test_an_unknown_key_is_a_401(sendgrid_fake):
    client = SendGridAPIClient(api_key="SG.unknown", host=sendgrid_fake.url)

    with pytest.raises(UnauthorizedError) as raised:
        client.send(_mail("ana@example.com"))

    assert raised.value.status_code == 401
    assert raised.value.to_dict == {
        "errors": [{"field": None, "message": "The provided authorization grant is invalid"}]
    }


def test_scripted_answers_come_in_order_then_the_default(client, sendgrid_fake):
    sendgrid_fake.script(sendgrid_fake.rate_limited(retry_after=7), sendgrid_fake.server_error())

    with pytest.raises(TooManyRequestsError) as throttled:
        client.send(_mail("ana@example.com"))
    with pytest.raises(InternalServerError):
        client.send(_mail("ana@example.com"))
    assert client.send(_mail("ana@example.com")).status_code == 202

    assert throttled.value.headers["Retry-After"] == "7"
    assert int(throttled.value.headers["X-RateLimit-Reset"]) > 0
    assert len(sendgrid_fake.mail_sends) == 3


def test_a_rule_answers_a_permanent_error_for_one_recipient(client, sendgrid_fake):
    def to_bounced(request):
        return "bounced@example.com" in request.body.decode()

    sendgrid_fake.answer_when(
        to_bounced, sendgrid_fake.bad_request("Does not contain a valid address.", "to")
    )

    with pytest.raises(BadRequestsError) as refused:
        client.send(_mail("bounced@example.com"))
    assert client.send(_mail("ana@example.com")).status_code == 202
    with pytest.raises(BadRequestsError):
        client.send(_mail("bounced@example.com"))

    assert refused.value.to_dict == {
        "errors": [{"field": "to", "message": "Does not contain a valid address.", "help": None}]
    }


def test_a_send_without_personalizations_is_refused_as_sendgrid_does(client, sendgrid_fake):
    response = None
    with pytest.raises(BadRequestsError) as refused:
        response = client.client.mail.send.post(
            request_body={"from": {"email": "a@acme.example"}, "subject": "x"}
        )

    assert response is None
    assert refused.value.to_dict["errors"][0]["field"] == "personalizations"
