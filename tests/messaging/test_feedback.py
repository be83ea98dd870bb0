"""record_engagement, the shared part of every delivery and engagement report: forward-only
status, history, the customer event; and an audience on engagement matching after a webhook."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone

from audiences.models import Membership
from audiences.services import audience_create
from masivo.tenancy.context import workspace_scope
from messaging.feedback.engagement import record_engagement, status_moves
from messaging.models import Message, MessageStatusChange
from profiles.models import Event
from tests.dashboard.conftest import client_for
from tests.factories import CustomerFactory
from tests.messaging.helpers import SENDGRID_VALUES, TWILIO_VALUES, connect
from tests.messaging.test_feedback_sendgrid import (  # the signed webhook, as SendGrid sends it
    event,
    make_message,
    post,
    public_key_b64,
)
from tests.profiles.helpers import settle

pytestmark = pytest.mark.django_db


@pytest.fixture
def signing_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize(
    ("current", "reported", "moves"),
    [
        ("sent", "delivered", True),
        ("delivered", "opened", True),
        ("opened", "clicked", True),
        ("opened", "delivered", False),
        ("clicked", "opened", False),
        ("delivered", "read", True),
        ("read", "delivered", False),
        ("opened", "read", False),  # the same rank
        ("sending", "sent", True),
        ("unknown", "delivered", True),  # feedback resolves an unknown hand-over
        ("sent", "bounced", True),
        ("delivered", "bounced", True),  # an asynchronous bounce
        ("opened", "bounced", False),
        ("read", "failed", False),
        ("bounced", "delivered", False),
        ("failed", "clicked", False),
        ("suppressed", "delivered", False),
        ("canceled", "opened", False),
        ("delivered", "delivered", False),
    ],
)
def test_status_moves_forward_only(current, reported, moves):
    assert status_moves(current, reported) is moves


def rows(workspace, message):
    with workspace_scope(workspace.id):
        message.refresh_from_db()
        history = list(
            MessageStatusChange.objects.filter(message=message)
            .order_by("id")
            .values_list("status", "detail", "provider_event_id")
        )
        events = list(Event.objects.order_by("id").values_list("name", "message_id"))
    return message.status, history, events


def test_without_a_provider_id_only_a_move_is_history(workspace):
    message = make_message(workspace, channel="in_app", address="")
    with workspace_scope(workspace.id):
        first = record_engagement(message, "opened", detail="in-app impression")
        again = record_engagement(message, "opened", detail="in-app impression")
        dismissed = record_engagement(message, None, detail="dismissed", event="Message Dismissed")
    assert (first.moved, first.status, again.moved, again.is_duplicate) == (
        True,
        "opened",
        False,
        False,
    )
    assert dismissed.status == "opened"
    assert rows(workspace, message) == (
        "opened",
        [("opened", "in-app impression", "")],
        [
            ("Message Opened", f"msv:{message.id}:message-opened"),
            ("Message Dismissed", f"msv:{message.id}:message-dismissed"),
        ],
    )


def test_a_provider_event_id_is_recorded_once_per_workspace(workspace, other_workspace):
    message = make_message(workspace)
    theirs = make_message(other_workspace)
    with workspace_scope(workspace.id):
        first = record_engagement(
            message, "delivered", detail="250 OK", provider_event_id="sendgrid:x"
        )
        second = record_engagement(
            message, "delivered", detail="250 OK", provider_event_id="sendgrid:x"
        )
    with workspace_scope(other_workspace.id):
        elsewhere = record_engagement(
            theirs, "delivered", detail="250 OK", provider_event_id="sendgrid:x"
        )
    assert (first.is_duplicate, second.is_duplicate, elsewhere.is_duplicate) == (
        False,
        True,
        False,
    )
    assert rows(workspace, message)[1] == [("delivered", "250 OK", "sendgrid:x")]


def test_an_event_is_none_for_statuses_without_one_and_empty_for_none(workspace):
    message = make_message(workspace, status="sending")
    with workspace_scope(workspace.id):
        record_engagement(message, "sent", detail="handed over")
        record_engagement(message, "delivered", detail="quiet", event="")
    assert rows(workspace, message) == (
        "delivered",
        [("sent", "handed over", ""), ("delivered", "quiet", "")],
        [],
    )


def test_opened_any_email_in_the_last_30_days_matches_after_the_webhook(workspace, signing_key):
    connection = connect(
        workspace,
        "sendgrid",
        SENDGRID_VALUES | {"event_webhook_public_key": public_key_b64(signing_key)},
    )
    with workspace_scope(workspace.id):
        engaged = audience_create(
            workspace=workspace,
            data={
                "name": "Opened an email lately",
                "is_realtime": True,
                "rules": {
                    "version": 1,
                    "root": {
                        "event": {
                            "name": "Message Opened",
                            "where": [{"property": "channel", "op": "eq", "value": "email"}],
                            "within": {"last": 30, "unit": "days"},
                        }
                    },
                },
            },
        )
        ana = CustomerFactory(workspace=workspace, external_id="ana", email="ana@example.com")
        bo = CustomerFactory(workspace=workspace, external_id="bo", email="bo@example.com")
    to_ana = make_message(workspace, customer=ana)
    # The audience's window ends at the database's now, so the webhook arrives now.
    now = timezone.now()
    to_bo = make_message(workspace, customer=bo)
    response = post(
        workspace,
        connection,
        [
            event(to_ana, "open", "e1", timestamp=int(now.timestamp()) - 60),
            event(to_bo, "delivered", "e2", timestamp=int(now.timestamp()) - 60),
        ],
        key=signing_key,
        at=now,
    )
    assert response.json()["recorded"] == 2
    settle(workspace)
    with workspace_scope(workspace.id):
        members = list(
            Membership.objects.filter(audience=engaged).values_list("customer__external_id")
        )
        assert Message.objects.get(id=to_ana.id).status == "opened"
    assert members == [("ana",)]


def test_the_channels_page_shows_the_webhook_urls_to_paste(owner, workspace, settings):
    settings.MASIVO_PUBLIC_URL = "https://cdp.example.com"
    sendgrid = connect(workspace, "sendgrid", SENDGRID_VALUES)
    twilio = connect(workspace, "twilio", TWILIO_VALUES)

    response = client_for(owner).get(f"/w/{workspace.id}/settings/channels/")

    content = response.content.decode()
    base = "https://cdp.example.com/m/webhooks"
    assert f"<code>{base}/sendgrid/{sendgrid.webhook_token}</code>" in content
    assert f"<code>{base}/twilio/{twilio.webhook_token}/status</code>" in content
    assert f"<code>{base}/twilio/{twilio.webhook_token}/inbound</code>" in content
    assert content.count("Webhook URLs") == 2  # not for FCM, which is not connected
