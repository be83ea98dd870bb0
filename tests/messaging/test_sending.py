"""The send pipeline with SendGrid: claim, render, hand over, record; retries, permanent
errors, a missing connection, a template that cannot render, in-app, and send-rate limits."""

import http.client
import socket
import urllib.error
from datetime import timedelta

import pytest
import time_machine

from masivo.tenancy.context import workspace_scope
from messaging.sending import send_due
from messaging.sending.ratelimit import bucket_key
from messaging.sending.retry import never_reached
from messaging.sending.store import messages_claim
from messaging.templating import render_version
from messaging.unsubscribe import message_links, unsubscribe_headers
from tests.fakes.sendgrid import SendGridFake
from tests.messaging.test_sending_support import (
    AT,
    connect_sendgrid,
    customer,
    fresh,
    history,
    queue,
    template_version,
)

pytestmark = pytest.mark.django_db

# Masivo tracks opens and clicks itself (with link_tracking consent), never SendGrid.
NO_SENDGRID_TRACKING = {
    "click_tracking": {"enable": False, "enable_text": False},
    "open_tracking": {"enable": False},
}


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(AT, tick=False):
        yield


@pytest.fixture(autouse=True)
def _roomy_rate(settings):
    settings.MASIVO_SEND_RATES = {"sendgrid": 1000, "fcm": 1000, "twilio": 1000, "in_app": 1000}


@pytest.fixture
def email(workspace):
    return template_version(workspace, "email")


def test_due_messages_are_handed_over_once_each_and_recorded_sent(workspace, sendgrid_fake, email):
    connect_sendgrid(workspace, sendgrid_fake)
    ana = customer(workspace, first_name="Ana", email="ana@example.com")
    luis = customer(workspace, first_name="Luis", email="luis@example.com")
    first = queue(workspace, email, ana, key="api:1")
    second = queue(workspace, email, luis, key="api:2")
    later = queue(workspace, email, luis, key="api:3", due_at=AT + timedelta(minutes=1))

    report = send_due()

    assert report.claimed == 2
    bodies = [request.json for request in sendgrid_fake.mail_sends]
    assert sorted(bodies, key=lambda body: body["subject"]) == [
        {
            "personalizations": [
                {
                    "to": [{"email": "ana@example.com"}],
                    "custom_args": {"masivo_message_id": str(first.id),
                                    "masivo_dedupe_key": "api:1"},
                }
            ],
            "from": {"email": "news@acme.example", "name": "Acme"},
            "reply_to": {"email": "help@acme.example"},
            "tracking_settings": NO_SENDGRID_TRACKING,
            "subject": "Hola Ana",
            "content": [
                {"type": "text/plain", "value": "Hola Ana"},
                {"type": "text/html", "value": _html(workspace, first)},
            ],
        },
        {
            "personalizations": [
                {
                    "to": [{"email": "luis@example.com"}],
                    "custom_args": {"masivo_message_id": str(second.id),
                                    "masivo_dedupe_key": "api:2"},
                }
            ],
            "from": {"email": "news@acme.example", "name": "Acme"},
            "reply_to": {"email": "help@acme.example"},
            "tracking_settings": NO_SENDGRID_TRACKING,
            "subject": "Hola Luis",
            "content": [
                {"type": "text/plain", "value": "Hola Luis"},
                {"type": "text/html", "value": _html(workspace, second)},
            ],
        },
    ]  # fmt: skip
    assert (
        sendgrid_fake.mail_sends[0].header("Authorization")
        == "Bearer SG.test-key-id.0123456789abcdefWXYZ"
    )
    for message in (first, second):
        stored = fresh(workspace, message)
        assert (stored.status, stored.attempts, stored.provider, stored.sent_at) == (
            "sent", 1, "sendgrid", AT,
        )  # fmt: skip
        assert stored.provider_message_id.startswith("fake-")
        assert stored.handover_at == AT
        assert stored.payload["subject"] in {"Hola Ana", "Hola Luis"}
        assert history(workspace, message) == [
            ("sending", "claimed by the sender (attempt 1)"),
            ("sent", "SendGrid accepted it"),
        ]
    assert fresh(workspace, later).status == "queued"
    assert send_due().claimed == 0
    assert len(sendgrid_fake.mail_sends) == 2


def _html(workspace, message):
    with workspace_scope(workspace.id):
        message = fresh(workspace, message)
        return render_version(
            message.template_version,
            customer=message.customer,
            workspace=workspace,
            links=message_links(message),
        ).fields["html"]


def test_a_marketing_email_carries_the_unsubscribe_headers(workspace, sendgrid_fake, email):
    connect_sendgrid(workspace, sendgrid_fake)
    message = queue(workspace, email, customer(workspace), key="c:1", kind="marketing")
    with workspace_scope(workspace.id):
        expected = unsubscribe_headers(fresh(workspace, message))

    send_due()

    personalization = sendgrid_fake.mail_sends[0].json["personalizations"][0]
    assert personalization.get("headers", {}) == expected
    assert fresh(workspace, message).payload["headers"] == expected


def test_a_template_that_cannot_render_fails_that_message_only(workspace, sendgrid_fake, email):
    connect_sendgrid(workspace, sendgrid_fake)
    broken = template_version(workspace, "email", {"subject": "{{ 1 / 0 }}", "html": "<p>x</p>"})
    bad = queue(workspace, broken, customer(workspace), key="bad")
    good = queue(workspace, email, customer(workspace), key="good")

    send_due()

    stored = fresh(workspace, bad)
    assert (stored.status, stored.error_code) == ("failed", "render_error")
    assert stored.error != ""
    assert history(workspace, bad)[-1] == ("failed", stored.error)
    assert fresh(workspace, good).status == "sent"
    assert [r.json["personalizations"][0]["custom_args"]["masivo_dedupe_key"]
            for r in sendgrid_fake.mail_sends] == ["good"]  # fmt: skip


def test_without_a_connection_messages_fail_no_connection(workspace, sendgrid_fake, email):
    message = queue(workspace, email, customer(workspace), key="k")

    send_due()

    stored = fresh(workspace, message)
    assert (stored.status, stored.error_code, stored.error) == (
        "failed", "no_connection", "the workspace has no SendGrid connection",
    )  # fmt: skip
    assert sendgrid_fake.mail_sends == []


def test_a_message_without_an_address_fails(workspace, sendgrid_fake, email):
    connect_sendgrid(workspace, sendgrid_fake)
    message = queue(workspace, email, customer(workspace), key="k", address="")

    send_due()

    assert (fresh(workspace, message).status, fresh(workspace, message).error_code) == (
        "failed", "no_address",
    )  # fmt: skip
    assert sendgrid_fake.mail_sends == []


def test_a_429_waits_for_sendgrids_reset_time(workspace, sendgrid_fake, email):
    connect_sendgrid(workspace, sendgrid_fake)
    message = queue(workspace, email, customer(workspace), key="k")
    sendgrid_fake.script(SendGridFake.rate_limited(retry_after=42))

    send_due()

    stored = fresh(workspace, message)
    assert (stored.status, stored.attempts, stored.error_code) == ("queued", 1, "rate_limited")
    assert stored.due_at == AT + timedelta(seconds=42)  # X-RateLimit-Reset
    assert stored.handover_at is None
    assert history(workspace, message)[-1] == (
        "queued",
        "retry at 2026-12-01T15:00:42+00:00: SendGrid answered 429 (too many requests)",
    )
    assert send_due().claimed == 0  # not before the reset
    with time_machine.travel(AT + timedelta(seconds=42), tick=False):
        send_due()
    stored = fresh(workspace, message)
    assert (stored.status, stored.attempts) == ("sent", 2)
    assert len(sendgrid_fake.mail_sends) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_backs_off_exponentially_with_jitter(workspace, sendgrid_fake, email, status):
    connect_sendgrid(workspace, sendgrid_fake)
    message = queue(workspace, email, customer(workspace), key="k")
    sendgrid_fake.script(SendGridFake.server_error(status), SendGridFake.server_error(status))

    send_due()
    first = fresh(workspace, message)
    with time_machine.travel(first.due_at, tick=False):
        send_due()
    second = fresh(workspace, message)

    assert (first.status, first.error_code) == ("queued", "provider_unavailable")
    assert first.error == f"SendGrid answered {status}"
    # First backoff 30 s, then 60 s; "equal jitter" keeps between half and all of it.
    assert AT + timedelta(seconds=15) <= first.due_at <= AT + timedelta(seconds=30)
    assert first.due_at + timedelta(seconds=30) <= second.due_at
    assert second.due_at <= first.due_at + timedelta(seconds=60)
    assert second.attempts == 2


def test_after_the_maximum_of_attempts_the_message_fails(workspace, sendgrid_fake, email, settings):
    settings.MASIVO_SEND_MAX_ATTEMPTS = 2
    connect_sendgrid(workspace, sendgrid_fake)
    message = queue(workspace, email, customer(workspace), key="k")
    sendgrid_fake.answer_when(lambda r: True, SendGridFake.server_error(503))

    send_due()
    with time_machine.travel(fresh(workspace, message).due_at, tick=False):
        send_due()

    stored = fresh(workspace, message)
    assert (stored.status, stored.attempts, stored.error_code, stored.error) == (
        "failed", 2, "provider_unavailable", "gave up after 2 attempts: SendGrid answered 503",
    )  # fmt: skip
    assert len(sendgrid_fake.mail_sends) == 2


def test_an_invalid_address_fails_with_sendgrids_reason(workspace, sendgrid_fake, email):
    connect_sendgrid(workspace, sendgrid_fake)
    message = queue(workspace, email, customer(workspace), key="k", address="not-an-address")
    sendgrid_fake.script(
        SendGridFake.bad_request("Does not contain a valid address.", "personalizations.0.to")
    )

    send_due()

    stored = fresh(workspace, message)
    assert (stored.status, stored.error_code, stored.error) == (
        "failed",
        "invalid_request",
        "SendGrid refused it (400): Does not contain a valid address. (personalizations.0.to)",
    )
    assert len(sendgrid_fake.mail_sends) == 1


def test_a_revoked_key_fails_unauthorized(workspace, sendgrid_fake, email):
    connect_sendgrid(workspace, sendgrid_fake)
    sendgrid_fake.keys.clear()
    message = queue(workspace, email, customer(workspace), key="k")

    send_due()

    assert fresh(workspace, message).error_code == "unauthorized"
    assert fresh(workspace, message).status == "failed"


def test_in_app_messages_are_sent_without_a_provider(workspace):
    version = template_version(workspace, "in_app")
    message = queue(workspace, version, customer(workspace, first_name="Ana"), key="k")

    send_due()

    stored = fresh(workspace, message)
    assert (stored.status, stored.provider, stored.sent_at) == ("sent", "in_app", AT)
    assert stored.payload["title"] == "Hola Ana"
    assert history(workspace, message)[-1] == ("sent", "stored for the app to fetch")


def test_the_claim_takes_due_pending_messages_oldest_first_up_to_the_limit(workspace, email):
    ana = customer(workspace)
    newest = queue(workspace, email, ana, key="a", due_at=AT - timedelta(seconds=1))
    oldest = queue(workspace, email, ana, key="b", due_at=AT - timedelta(seconds=3))
    deferred = queue(workspace, email, ana, key="c", status="deferred",
                     due_at=AT - timedelta(seconds=2))  # fmt: skip
    queue(workspace, email, ana, key="d", status="sent", due_at=AT - timedelta(seconds=9))
    queue(workspace, email, ana, key="e", due_at=AT + timedelta(seconds=1))

    claimed = messages_claim(now=AT, limit=2)

    assert [row.id for row in claimed] == sorted([oldest.id, deferred.id])
    assert fresh(workspace, oldest).status == "sending"
    assert fresh(workspace, oldest).sending_at == AT
    assert fresh(workspace, newest).status == "queued"
    assert [row.id for row in messages_claim(now=AT, limit=10)] == [newest.id]


def test_the_claim_of_one_workspace_leaves_the_others(workspace, other_workspace, email):
    mine = queue(workspace, email, customer(workspace), key="a")
    other_version = template_version(other_workspace, "email")
    theirs = queue(other_workspace, other_version, customer(other_workspace), key="a")

    claimed = messages_claim(now=AT, limit=10, workspace_id=workspace.id)

    assert [row.id for row in claimed] == [mine.id]
    assert fresh(other_workspace, theirs).status == "queued"


def test_messages_over_the_send_rate_go_back_to_the_queue_uncounted(
    workspace, sendgrid_fake, email, settings
):
    settings.MASIVO_SEND_RATES = {"sendgrid": 2}
    connect_sendgrid(workspace, sendgrid_fake)
    from masivo.tenancy.redis import get_redis

    get_redis().delete(bucket_key(workspace.id, "sendgrid"))
    ana = customer(workspace)
    messages = [queue(workspace, email, ana, key=f"k{n}") for n in range(5)]

    send_due()

    stored = [fresh(workspace, message) for message in messages]
    assert [m.status for m in stored] == ["sent", "sent", "queued", "queued", "queued"]
    assert [m.attempts for m in stored] == [1, 1, 0, 0, 0]
    assert [m.due_at - AT for m in stored[2:]] == [
        timedelta(seconds=0.5), timedelta(seconds=1), timedelta(seconds=1.5),
    ]  # fmt: skip
    assert history(workspace, messages[2])[-1] == (
        "queued", "over the SendGrid send rate: back in the queue",
    )  # fmt: skip
    assert len(sendgrid_fake.mail_sends) == 2
    with time_machine.travel(AT + timedelta(seconds=1), tick=False):
        send_due()
    assert [fresh(workspace, m).status for m in messages] == ["sent"] * 4 + ["queued"]


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_refused_connection_is_retried(workspace, sendgrid_fake, email, settings):
    connect_sendgrid(workspace, sendgrid_fake)
    settings.MASIVO_SENDGRID_API_URL = _closed_port_url()
    message = queue(workspace, email, customer(workspace), key="k")

    send_due()

    stored = fresh(workspace, message)
    assert (stored.status, stored.error_code) == ("queued", "connection_error")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (urllib.error.URLError(ConnectionRefusedError(111, "x")), True),
        (ConnectionResetError(104, "reset"), False),
        (TimeoutError("timed out"), False),
        (http.client.RemoteDisconnected("closed"), False),
    ],
)
def test_only_errors_that_prove_nothing_was_sent_allow_another_try(error, expected):
    assert never_reached(error) is expected


def test_the_beat_tasks_send_and_recover_by_their_names(workspace, sendgrid_fake, email):
    from celery import current_app

    from messaging import tasks

    connect_sendgrid(workspace, sendgrid_fake)
    message = queue(workspace, email, customer(workspace), key="k")

    assert (tasks.send_due.name, tasks.recover_sending.name) == (
        "messaging.send_due", "messaging.recover_sending",
    )  # fmt: skip
    assert {"messaging.send_due", "messaging.recover_sending"} <= set(current_app.tasks)
    assert tasks.send_due(workspace_id=workspace.id) == 1
    assert fresh(workspace, message).status == "sent"
    assert tasks.recover_sending() == 0
