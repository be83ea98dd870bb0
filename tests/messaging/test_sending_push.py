"""The send pipeline with FCM: one FCM message per active device, devices FCM no longer knows
disabled, 429 with Retry-After scheduled by us (not slept in the SDK), 500 retried by the SDK
itself, a bad payload failing the message."""

from datetime import timedelta

import pytest
import time_machine

from masivo.tenancy.context import workspace_scope
from messaging.sending import send_due
from profiles.models import Device
from tests.fakes.base import Answer
from tests.fakes.fcm import FcmFake
from tests.messaging.test_sending_support import (
    AT,
    connect_fcm,
    customer,
    device,
    fresh,
    history,
    queue,
    template_version,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clock(settings):
    settings.MASIVO_SEND_RATES = {"fcm": 1000}
    settings.MASIVO_FCM_RETRY_BACKOFF = 0
    with time_machine.travel(AT, tick=False):
        yield


@pytest.fixture
def push(workspace):
    return template_version(workspace, "push")


@pytest.fixture
def ana(workspace):
    return customer(workspace, first_name="Ana")


def _targets(fcm_fake) -> list[str]:
    return sorted(
        request.json["message"].get("fid") or request.json["message"].get("token")
        for request in fcm_fake.sends
    )


def test_each_active_device_gets_the_push_with_our_ids(workspace, fcm_fake, push, ana):
    connect_fcm(workspace, fcm_fake)
    device(workspace, ana, "tok-a")
    device(workspace, ana, "tok-b")
    device(workspace, ana, "tok-off", push_enabled=False)
    device(workspace, ana, "tok-old", expires_at=AT - timedelta(days=1))
    message = queue(workspace, push, ana, key="api:9")

    send_due()

    assert _targets(fcm_fake) == ["tok-a", "tok-b"]
    sent = fcm_fake.sends[0].json["message"]
    assert sent["notification"] == {"title": "Hola Ana", "body": "Tu pedido salió"}
    assert sent["data"] == {
        "order": "9",
        "deep_link": "acme://orders",
        "masivo_message_id": str(message.id),
        "masivo_dedupe_key": "api:9",
    }
    stored = fresh(workspace, message)
    assert (stored.status, stored.provider) == ("sent", "fcm")
    assert stored.provider_message_id.startswith("projects/demo-project/messages/")
    assert stored.payload["devices"] == 2
    assert history(workspace, message)[-1] == ("sent", "FCM accepted it for 2 of 2 devices")
    assert fcm_fake.delivered_keys == {("api:9", "tok-a"): 1, ("api:9", "tok-b"): 1}


def test_an_unregistered_device_is_disabled_and_the_others_still_count(
    workspace, fcm_fake, push, ana
):
    connect_fcm(workspace, fcm_fake)
    gone = device(workspace, ana, "tok-gone")
    kept = device(workspace, ana, "tok-kept")
    fcm_fake.unregistered_tokens.add("tok-gone")
    message = queue(workspace, push, ana, key="k")

    send_due()

    assert fresh(workspace, message).status == "sent"
    assert history(workspace, message)[-1] == ("sent", "FCM accepted it for 1 of 2 devices")
    with workspace_scope(workspace.id):
        assert Device.objects.get(id=gone.id).push_enabled is False
        assert Device.objects.get(id=kept.id).push_enabled is True


def test_when_every_device_is_unregistered_the_message_fails(workspace, fcm_fake, push, ana):
    connect_fcm(workspace, fcm_fake)
    gone = device(workspace, ana, "tok-gone")
    fcm_fake.unregistered_tokens.add("tok-gone")
    message = queue(workspace, push, ana, key="k")

    send_due()

    stored = fresh(workspace, message)
    assert (stored.status, stored.error_code, stored.error) == (
        "failed", "unregistered", "FCM no longer knows any of the customer's devices",
    )  # fmt: skip
    with workspace_scope(workspace.id):
        assert Device.objects.get(id=gone.id).push_enabled is False


def test_an_invalid_token_is_disabled_like_an_unregistered_one(workspace, fcm_fake, push, ana):
    connect_fcm(workspace, fcm_fake)
    bad = device(workspace, ana, "tok-bad")
    fcm_fake.script(FcmFake.invalid_token())
    message = queue(workspace, push, ana, key="k")

    send_due()

    assert fresh(workspace, message).error_code == "unregistered"
    with workspace_scope(workspace.id):
        assert Device.objects.get(id=bad.id).push_enabled is False


def test_a_bad_payload_fails_the_message_and_keeps_the_device(workspace, fcm_fake, push, ana):
    connect_fcm(workspace, fcm_fake)
    kept = device(workspace, ana, "tok-a")
    fcm_fake.script(
        Answer(
            400,
            {"error": {"code": 400, "message": "Invalid JSON payload", "status": "INVALID_ARGUMENT",
                       "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                    "fieldViolations": [{"field": "message.data"}]}]}},
        )
    )  # fmt: skip
    message = queue(workspace, push, ana, key="k")

    send_due()

    stored = fresh(workspace, message)
    assert (stored.status, stored.error_code) == ("failed", "invalid_argument")
    assert stored.error == "FCM refused the message: Invalid JSON payload"
    with workspace_scope(workspace.id):
        assert Device.objects.get(id=kept.id).push_enabled is True


def test_a_429_is_retried_by_us_after_its_retry_after(workspace, fcm_fake, push, ana):
    connect_fcm(workspace, fcm_fake)
    device(workspace, ana, "tok-a")
    fcm_fake.script(FcmFake.quota_exceeded(retry_after=7))
    message = queue(workspace, push, ana, key="k")

    send_due()

    assert len(fcm_fake.sends) == 1  # the SDK did not sleep it out and try again
    stored = fresh(workspace, message)
    assert (stored.status, stored.error_code, stored.due_at) == (
        "queued", "rate_limited", AT + timedelta(seconds=7),
    )  # fmt: skip
    with time_machine.travel(AT + timedelta(seconds=7), tick=False):
        send_due()
    assert fresh(workspace, message).status == "sent"
    assert fcm_fake.delivered_keys == {("k", "tok-a"): 1}


def test_a_500_is_retried_by_the_sdk_within_the_attempt(workspace, fcm_fake, push, ana):
    connect_fcm(workspace, fcm_fake)
    device(workspace, ana, "tok-a")
    fcm_fake.script(FcmFake.server_error(500))
    message = queue(workspace, push, ana, key="k")

    send_due()

    assert len(fcm_fake.sends) == 2
    assert (fresh(workspace, message).status, fresh(workspace, message).attempts) == ("sent", 1)


def test_5xx_beyond_the_sdks_retries_backs_off(workspace, fcm_fake, push, ana):
    connect_fcm(workspace, fcm_fake)
    device(workspace, ana, "tok-a")
    fcm_fake.script(*[FcmFake.server_error(503)] * 5)
    message = queue(workspace, push, ana, key="k")

    send_due()

    assert len(fcm_fake.sends) == 5
    stored = fresh(workspace, message)
    assert (stored.status, stored.error_code) == ("queued", "provider_unavailable")
    assert AT + timedelta(seconds=15) <= stored.due_at <= AT + timedelta(seconds=30)


def test_a_customer_without_devices_fails_no_device(workspace, fcm_fake, push, ana):
    connect_fcm(workspace, fcm_fake)
    message = queue(workspace, push, ana, key="k")

    send_due()

    assert (fresh(workspace, message).status, fresh(workspace, message).error_code) == (
        "failed", "no_device",
    )  # fmt: skip
    assert fcm_fake.sends == []
