"""Recovery of messages left `sending`: never handed over, queued again; possibly handed over,
never sent again (Twilio looked up, SendGrid and FCM `unknown`, counted); and a worker that
recovery gave up on cannot hand over or overwrite what it no longer holds."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings

from masivo.tenancy.redis import get_redis
from messaging.sending import send_due, sending_recover, sending_unknown_total
from messaging.sending.outcomes import Sent
from messaging.sending.store import (
    messages_claim,
    messages_mark_handover,
    messages_record_outcomes,
)
from tests.messaging.test_sending_support import (
    AT,
    connect_twilio,
    customer,
    fresh,
    history,
    queue,
    template_version,
)

pytestmark = pytest.mark.django_db
LATER = AT + timedelta(minutes=10)  # past the 5 minute stall timeout
PHONE = "+5215512345678"


@pytest.fixture(autouse=True)
def _clean_counter():
    get_redis().delete(f"{settings.MASIVO_REDIS_PREFIX}metrics:messaging_send_unknown_total")


def _claim_and_mark(workspace, message, *, provider: str, payload=None):
    messages_claim(now=AT, limit=10)
    return messages_mark_handover(
        payloads={message.id: payload or {}}, provider=provider, claimed_at=AT, now=AT
    )


def test_a_message_never_handed_over_is_queued_again(workspace):
    message = queue(workspace, template_version(workspace, "email"), customer(workspace), key="k")
    messages_claim(now=AT, limit=10)

    report = sending_recover(now=LATER)

    stored = fresh(workspace, message)
    assert (stored.status, stored.due_at, stored.attempts) == ("queued", LATER, 1)
    assert history(workspace, message)[-1] == (
        "queued", "the worker stopped before handing it over: queued again",
    )  # fmt: skip
    assert (report.requeued, report.unknown) == (1, 0)


def test_a_message_sending_within_the_stall_timeout_is_left_alone(workspace):
    message = queue(workspace, template_version(workspace, "email"), customer(workspace), key="k")
    _claim_and_mark(workspace, message, provider="sendgrid")

    report = sending_recover(now=AT + timedelta(minutes=4))

    assert fresh(workspace, message).status == "sending"
    assert (report.requeued, report.unknown, report.resolved_sent) == (0, 0, 0)


@pytest.mark.parametrize(("channel", "provider", "label"),
                         [("email", "sendgrid", "SendGrid"), ("push", "fcm", "FCM")])  # fmt: skip
def test_a_possible_hand_over_to_sendgrid_or_fcm_is_unknown_and_counted(
    workspace, channel, provider, label
):
    message = queue(workspace, template_version(workspace, channel), customer(workspace), key="k")
    _claim_and_mark(workspace, message, provider=provider)

    report = sending_recover(now=LATER)

    stored = fresh(workspace, message)
    assert (stored.status, stored.error_code) == ("unknown", "handover_interrupted")
    assert stored.error == (
        f"the worker stopped during the hand-over to {label}, which cannot be asked whether it "
        "took the message; not sent again"
    )
    assert (report.unknown, dict(report.by_provider)) == (1, {provider: 1})
    assert sending_unknown_total() == 1
    assert sending_recover(now=LATER + timedelta(minutes=10)).unknown == 0  # final: left alone


def test_a_whatsapp_hand_over_twilio_holds_is_recorded_sent(workspace, twilio_fake):
    connect_twilio(workspace, twilio_fake)
    version = template_version(workspace, "whatsapp")
    message = queue(workspace, version, customer(workspace, phone=PHONE), key="k")
    with time_machine.travel(AT, tick=False):
        send_due()
    sid = fresh(workspace, message).provider_message_id
    # As if the worker died after Twilio took it, before recording: back to `sending`.
    other = queue(workspace, version, customer(workspace, phone="+5215500000001"), key="k2")
    with time_machine.travel(AT, tick=False):
        messages_claim(now=AT, limit=10)
        messages_mark_handover(
            payloads={other.id: {"to": "whatsapp:+5215500000001"}},
            provider="twilio", claimed_at=AT, now=AT,
        )  # fmt: skip
        send_due()  # nothing due: `other` stays sending, as a dead worker leaves it
    taken = {"sid": "SM" + "f" * 32, "to": "whatsapp:+5215500000001"}
    twilio_fake.messages.append(twilio_fake.messages[0] | taken)

    with time_machine.travel(LATER, tick=False):
        report = sending_recover(now=LATER)

    stored = fresh(workspace, other)
    assert (stored.status, stored.provider_message_id) == ("sent", "SM" + "f" * 32)
    assert history(workspace, other)[-1] == ("sent", "found at Twilio after the worker stopped")
    assert (report.resolved_sent, report.unknown) == (1, 0)
    assert fresh(workspace, message).provider_message_id == sid
    assert len(twilio_fake.messages_created) == 1  # nothing sent again


def test_a_whatsapp_hand_over_twilio_never_got_is_queued_again(workspace, twilio_fake):
    connect_twilio(workspace, twilio_fake)
    version = template_version(workspace, "whatsapp")
    message = queue(workspace, version, customer(workspace, phone=PHONE), key="k")
    _claim_and_mark(workspace, message, provider="twilio", payload={"to": f"whatsapp:{PHONE}"})

    report = sending_recover(now=LATER)

    stored = fresh(workspace, message)
    assert (stored.status, stored.handover_at, stored.attempts) == ("queued", None, 0)
    assert [r.query.get("To") for r in twilio_fake.requests_to("Messages.json", "GET")] == [
        [f"whatsapp:{PHONE}"]
    ]
    assert (report.requeued, report.unknown) == (1, 0)


def test_a_worker_recovery_gave_up_on_cannot_hand_over_or_overwrite(workspace):
    message = queue(workspace, template_version(workspace, "email"), customer(workspace), key="k")
    messages_claim(now=AT, limit=10)
    sending_recover(now=LATER)  # the worker seemed dead: queued again

    held = messages_mark_handover(
        payloads={message.id: {}}, provider="sendgrid", claimed_at=AT, now=LATER
    )
    written = messages_record_outcomes(
        outcomes={message.id: Sent("late")},
        attempts={message.id: 1},
        provider="sendgrid",
        claimed_at=AT,
        now=LATER,
    )

    assert (held, written) == (set(), set())
    assert fresh(workspace, message).status == "queued"


def test_a_slow_worker_that_learns_the_outcome_corrects_unknown(workspace):
    message = queue(workspace, template_version(workspace, "email"), customer(workspace), key="k")
    _claim_and_mark(workspace, message, provider="sendgrid")
    sending_recover(now=LATER)

    messages_record_outcomes(
        outcomes={message.id: Sent("fake-1", "SendGrid accepted it")},
        attempts={message.id: 1},
        provider="sendgrid",
        claimed_at=AT,
        now=LATER,
    )

    stored = fresh(workspace, message)
    assert (stored.status, stored.provider_message_id) == ("sent", "fake-1")
