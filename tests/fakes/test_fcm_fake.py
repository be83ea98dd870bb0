"""The FCM fake, driven by the real firebase-admin SDK with real service-account credentials:
the SDK signs a JWT, the fake's token endpoint verifies it, sends carry the token it issued."""

import pytest
from firebase_admin import exceptions, messaging
from google.auth.exceptions import RefreshError

from messaging.channels.push import firebase_app
from tests.fakes.fcm import FcmFake

PROJECT = "demo-project"


@pytest.fixture
def app(fcm_fake):
    with firebase_app(fcm_fake.service_account(PROJECT), PROJECT) as app:
        yield app


def test_send_obtains_a_token_then_sends(app, fcm_fake):
    name = messaging.send(
        messaging.Message(
            fid="device-1", notification=messaging.Notification(title="Hi", body="There")
        ),
        app=app,
    )

    assert name.startswith(f"projects/{PROJECT}/messages/")
    token_request, send_request = fcm_fake.requests
    assert token_request.path == "/token"
    assert token_request.form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert send_request.path == f"/v1/projects/{PROJECT}/messages:send"
    assert send_request.header("Authorization").startswith("Bearer ya29.fake-")
    assert send_request.json == {
        "message": {"fid": "device-1", "notification": {"title": "Hi", "body": "There"}}
    }


def test_dry_run_sets_validate_only(app, fcm_fake):
    messaging.send(messaging.Message(topic="news"), dry_run=True, app=app)

    assert fcm_fake.sends[0].json == {"message": {"topic": "news"}, "validate_only": True}


def test_send_each_reports_each_message_in_order(app, fcm_fake):
    fcm_fake.unregistered_tokens.add("gone")
    # The SDK retries a 429 that has Retry-After (4 times, after sleeping it): five answers.
    fcm_fake.script(
        *[fcm_fake.quota_exceeded(retry_after=0)] * 5,
        when=lambda request: b'"throttled"' in request.body,
    )
    messages = [messaging.Message(fid=fid) for fid in ("ok-1", "gone", "throttled", "ok-2")]

    batch = messaging.send_each(messages, app=app)

    assert (batch.success_count, batch.failure_count) == (2, 2)
    ok_1, gone, throttled, ok_2 = batch.responses
    assert ok_1.success and ok_2.success
    assert isinstance(gone.exception, messaging.UnregisteredError)
    assert isinstance(throttled.exception, messaging.QuotaExceededError)
    assert throttled.exception.http_response.headers["Retry-After"] == "0"
    assert sorted(r.json["message"]["fid"] for r in fcm_fake.sends) == [
        "gone", "ok-1", "ok-2", *["throttled"] * 5,
    ]  # fmt: skip


def test_a_429_with_retry_after_is_retried_by_the_sdk_itself(app, fcm_fake):
    fcm_fake.script(fcm_fake.quota_exceeded(retry_after=0))

    name = messaging.send(messaging.Message(fid="device-1"), app=app)

    assert name.startswith(f"projects/{PROJECT}/messages/")
    assert len(fcm_fake.sends) == 2


@pytest.mark.parametrize(
    ("answer", "error_class"),
    [
        (FcmFake.server_error(502), exceptions.InternalError),
        (FcmFake.invalid_token(), exceptions.InvalidArgumentError),
    ],
)
def test_scripted_errors(app, fcm_fake, answer, error_class):
    fcm_fake.script(answer)  # neither is retried by the SDK (500 and 503 are, below)

    with pytest.raises(error_class):
        messaging.send(messaging.Message(fid="device-1"), app=app)


def test_a_500_is_retried_by_the_sdk_itself(app, fcm_fake):
    fcm_fake.script(fcm_fake.server_error(500))

    messaging.send(messaging.Message(fid="device-1"), app=app)

    assert [request.path for request in fcm_fake.sends] == [
        f"/v1/projects/{PROJECT}/messages:send"
    ] * 2


def test_a_key_google_does_not_know_is_refused_at_the_token_endpoint(fcm_fake):
    account = fcm_fake.service_account(PROJECT, registered=False)

    with firebase_app(account, PROJECT) as app, pytest.raises(RefreshError) as raised:
        messaging.send(messaging.Message(fid="device-1"), app=app)

    assert raised.value.args[0].startswith("invalid_grant: Invalid JWT Signature.")
    assert fcm_fake.sends == []


def test_topic_subscriptions_through_the_v1_api(app, fcm_fake):
    fcm_fake.unregistered_tokens.add("gone")

    subscribed = messaging.subscribe_to_topic(["a", "b", "gone"], "ws1_audience_7", app=app)
    unsubscribed = messaging.unsubscribe_from_topic(["a"], "ws1_audience_7", app=app)

    assert (subscribed.success_count, subscribed.failure_count) == (2, 1)
    assert [(e.index, e.reason) for e in subscribed.errors] == [(2, "UNREGISTERED")]
    assert unsubscribed.success_count == 1
    assert fcm_fake.topics == {"ws1_audience_7": {"b"}}


def test_legacy_instance_id_batch_add_and_remove(app, fcm_fake, monkeypatch):
    # The legacy path's URL is a class attribute of the SDK's messaging service.
    monkeypatch.setattr(messaging._MessagingService, "IID_URL", fcm_fake.url)
    fcm_fake.unregistered_tokens.add("gone")

    with pytest.warns(DeprecationWarning):
        added = messaging.subscribe_to_topic_legacy(["a", "gone"], "news", app=app)
    with pytest.warns(DeprecationWarning):
        messaging.unsubscribe_from_topic_legacy(["a"], "news", app=app)

    assert (added.success_count, added.failure_count) == (1, 1)
    assert fcm_fake.requests_to("/iid/v1:batchAdd")[0].json == {
        "to": "/topics/news",
        "registration_tokens": ["a", "gone"],
    }
    assert fcm_fake.topics == {"news": set()}
