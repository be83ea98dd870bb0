"""A delivery webhook can arrive before the sender hears back from the provider (SendGrid and
Twilio call back within milliseconds). The sender's outcome then keeps the status the webhook
set, and fills in what only the hand-over knows: the provider's id and the time sent."""

from datetime import timedelta

import pytest

from masivo.tenancy.context import workspace_scope
from messaging.models import Message
from messaging.sending.outcomes import Sent
from messaging.sending.store import messages_claim, messages_record_outcomes
from tests.messaging.test_sending_support import (
    AT,
    customer,
    fresh,
    history,
    queue,
    template_version,
)

pytestmark = pytest.mark.django_db


def test_an_early_delivered_webhook_keeps_its_status_and_the_hand_over_fills_the_rest(workspace):
    version = template_version(workspace, "email")
    message = queue(workspace, version, customer(workspace, email="ana@example.com"), key="k")
    [claimed] = messages_claim(now=AT, limit=10)
    with workspace_scope(workspace.id):  # what the SendGrid webhook did meanwhile
        Message.objects.filter(id=message.id).update(status="delivered")

    written = messages_record_outcomes(
        outcomes={message.id: Sent(provider_message_id="sg-1", detail="SendGrid accepted it")},
        attempts={message.id: claimed.attempts},
        provider="sendgrid",
        claimed_at=AT,
        now=AT + timedelta(seconds=1),
    )

    stored = fresh(workspace, message)
    assert written == {message.id}
    assert (stored.status, stored.provider_message_id, stored.provider) == (
        "delivered", "sg-1", "sendgrid",
    )  # fmt: skip
    assert stored.sent_at == AT + timedelta(seconds=1)
    assert [status for status, _ in history(workspace, message)] == ["sending"]


def test_a_final_failure_reported_early_is_not_overwritten(workspace):
    version = template_version(workspace, "email")
    message = queue(workspace, version, customer(workspace, email="ana@example.com"), key="k")
    messages_claim(now=AT, limit=10)
    with workspace_scope(workspace.id):
        Message.objects.filter(id=message.id).update(status="bounced")

    written = messages_record_outcomes(
        outcomes={message.id: Sent(provider_message_id="sg-1")},
        attempts={message.id: 1},
        provider="sendgrid",
        claimed_at=AT,
        now=AT,
    )

    assert written == set()
    assert fresh(workspace, message).status == "bounced"
