"""Push topics per audience (messaging.topics) against the FCM fake, driven by the real
firebase-admin SDK: backfill, enter and exit, push consent, devices registered, removed and
expired, a refused token, a missing connection, a failed call replayed, removal, a deleted
audience, and the API."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from audiences.membership import cause_list, membership_apply
from audiences.services import audience_delete
from masivo.tenancy.context import workspace_scope
from messaging.models import AudienceTopic, ChannelConnection, TopicSubscription
from messaging.topics import push_topics_sync, topic_enable, topic_name, topic_remove
from profiles.consent import consent_update
from profiles.models import Device
from profiles.services.devices import device_register, device_remove
from tests.factories import AudienceFactory, CustomerFactory
from tests.feeds.support import wait_until_committed_rows_readable
from tests.messaging.helpers import ADMIN, connect

# The feeds show a row once its transaction has committed: every test commits.
pytestmark = pytest.mark.django_db(transaction=True)

LIST = cause_list("test")


@pytest.fixture
def fcm(workspace, fcm_fake):
    connect(workspace, "fcm", {"service_account": fcm_fake.service_account("acme-push")})
    return fcm_fake


def granted(workspace, **fields):
    customer = CustomerFactory(workspace=workspace, **fields)
    return consent_update(
        customer=customer, changes={"push_notifications": "granted"}, source="test"
    )


def device(customer, token: str):
    return device_register(
        customer=customer, data={"device_token": token, "device_info": {"platform": "android"}}
    )


def enter(workspace, audience, *customers):
    membership_apply(
        workspace_id=workspace.id,
        audience_id=audience.id,
        entering=[c.id for c in customers],
        leaving=(),
        cause=LIST,
        now=timezone.now(),
    )


def leave(workspace, audience, *customers):
    membership_apply(
        workspace_id=workspace.id,
        audience_id=audience.id,
        entering=(),
        leaving=[c.id for c in customers],
        cause=LIST,
        now=timezone.now(),
    )


def sync(workspace):
    # Every transaction in the cluster that began before must end before a feed shows its rows
    # (other test runs hold them back too).
    wait_until_committed_rows_readable()
    with workspace_scope(workspace.id):
        return push_topics_sync(workspace=workspace)


def at_fcm(fake, workspace, audience) -> set[str]:
    return set(fake.topics.get(topic_name(workspace.id, audience.id), set()))


def recorded(workspace) -> set[tuple[int, str]]:
    with workspace_scope(workspace.id):
        return set(TopicSubscription.objects.values_list("customer_id", "token"))


def test_the_members_devices_with_push_consent_are_subscribed_by_the_backfill(workspace, fcm):
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, kind="list", rules=None)
        ana, luis = granted(workspace), granted(workspace)
        silent = CustomerFactory(workspace=workspace)  # no push consent (opt-in regime)
        outsider = granted(workspace)
        device(ana, "ana-phone")
        device(ana, "ana-tablet")
        expired = device(luis, "luis-old")
        Device.objects.filter(id=expired.id).update(expires_at=timezone.now() - timedelta(days=1))
        device(luis, "luis-new")
        device(silent, "silent-phone")
        device(outsider, "outsider-phone")
        enter(workspace, audience, ana, luis, silent)
        topic = topic_enable(workspace=workspace, audience_id=audience.id, actor=ADMIN)

    result = sync(workspace)

    assert topic.topic == f"{workspace.id}_audience_{audience.id}"
    assert at_fcm(fcm, workspace, audience) == {"ana-phone", "ana-tablet", "luis-new"}
    assert recorded(workspace) == {
        (ana.id, "ana-phone"),
        (ana.id, "ana-tablet"),
        (luis.id, "luis-new"),
    }
    assert (result.backfilled, result.reconciled.subscribed) == (3, 3)
    with workspace_scope(workspace.id):
        topic.refresh_from_db()
    assert topic.backfilled_at is not None and topic.last_error == ""
    # Nothing changed: nothing is called again.
    calls = len(fcm.requests)
    assert sync(workspace).reconciled.subscribed == 0
    assert len(fcm.requests) == calls


def test_enter_exit_consent_and_device_changes_follow_the_feeds(workspace, fcm):
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, kind="list", rules=None)
        topic_enable(workspace=workspace, audience_id=audience.id, actor=ADMIN)
        ana, luis = granted(workspace), granted(workspace)
        device(ana, "ana-phone")
        device(luis, "luis-phone")
    sync(workspace)

    with workspace_scope(workspace.id):
        enter(workspace, audience, ana, luis)
    sync(workspace)
    assert at_fcm(fcm, workspace, audience) == {"ana-phone", "luis-phone"}

    with workspace_scope(workspace.id):
        leave(workspace, audience, luis)
    sync(workspace)
    assert at_fcm(fcm, workspace, audience) == {"ana-phone"}

    with workspace_scope(workspace.id):
        device(ana, "ana-new-phone")  # a new device: subscribed to her audiences' topics
    sync(workspace)
    assert at_fcm(fcm, workspace, audience) == {"ana-phone", "ana-new-phone"}

    with workspace_scope(workspace.id):
        device_remove(customer=ana, token="ana-phone")  # the old token goes
    sync(workspace)
    assert at_fcm(fcm, workspace, audience) == {"ana-new-phone"}

    with workspace_scope(workspace.id):
        consent_update(customer=ana, changes={"push_notifications": "denied"}, source="test")
    sync(workspace)
    assert at_fcm(fcm, workspace, audience) == set()
    assert recorded(workspace) == set()

    with workspace_scope(workspace.id):
        consent_update(customer=ana, changes={"push_notifications": "granted"}, source="test")
    sync(workspace)
    assert at_fcm(fcm, workspace, audience) == {"ana-new-phone"}
    assert recorded(workspace) == {(ana.id, "ana-new-phone")}


def test_a_token_fcm_refuses_is_counted_and_left_unsubscribed(workspace, fcm):
    fcm.unregistered_tokens.add("gone-token")
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, kind="list", rules=None)
        ana = granted(workspace)
        device(ana, "gone-token")
        device(ana, "ana-phone")
        enter(workspace, audience, ana)
        topic_enable(workspace=workspace, audience_id=audience.id, actor=ADMIN)

    result = sync(workspace)

    assert (result.reconciled.subscribed, result.reconciled.failed) == (1, 1)
    assert result.reconciled.errors and "audience" in result.reconciled.errors[0]
    assert recorded(workspace) == {(ana.id, "ana-phone")}


def test_a_failed_call_rolls_back_and_the_next_run_applies_the_batch_once(workspace, fcm):
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, kind="list", rules=None)
        topic = topic_enable(workspace=workspace, audience_id=audience.id, actor=ADMIN)
        ana, luis = granted(workspace), granted(workspace)
        device(ana, "ana-phone")
        device(luis, "luis-phone")
    sync(workspace)
    with workspace_scope(workspace.id):
        enter(workspace, audience, ana, luis)
    # FCM takes Ana's token and throttles Luis's (429 without Retry-After: the SDK does not
    # retry it itself).
    fcm.answer_when(
        lambda r: "luis-phone" in r.path,
        fcm.error(429, "RESOURCE_EXHAUSTED", "Quota exceeded."),
    )

    failed = sync(workspace)

    assert failed.has_failed
    assert recorded(workspace) == set()  # rolled back with the cursor
    with workspace_scope(workspace.id):
        topic.refresh_from_db()
    assert "RESOURCE_EXHAUSTED" in topic.last_error
    fcm._rules.clear()
    result = sync(workspace)
    assert (result.has_failed, result.reconciled.subscribed) == (False, 2)
    assert recorded(workspace) == {(ana.id, "ana-phone"), (luis.id, "luis-phone")}
    assert at_fcm(fcm, workspace, audience) == {"ana-phone", "luis-phone"}
    with workspace_scope(workspace.id):
        topic.refresh_from_db()
    assert topic.last_error == ""


def test_without_fcm_the_reason_is_recorded_and_the_feed_waits(workspace, fcm):
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, kind="list", rules=None)
        topic = topic_enable(workspace=workspace, audience_id=audience.id, actor=ADMIN)
        ana = granted(workspace)
        device(ana, "ana-phone")
        enter(workspace, audience, ana)
        ChannelConnection.objects.all().delete()

    sync(workspace)

    with workspace_scope(workspace.id):
        topic.refresh_from_db()
        assert topic.last_error == "Firebase Cloud Messaging is not connected"
        connect(workspace, "fcm", {"service_account": fcm.service_account("acme-push")})
    sync(workspace)
    assert at_fcm(fcm, workspace, audience) == {"ana-phone"}


def test_enabling_needs_fcm_an_audience_of_the_workspace_and_one_topic_each(
    workspace, other_workspace, fcm_fake
):
    from masivo.tenancy.errors import Conflict, InvalidInput

    with workspace_scope(other_workspace.id):
        foreign = AudienceFactory(workspace=other_workspace)
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace)
        with pytest.raises(Conflict, match="connect Firebase Cloud Messaging first"):
            topic_enable(workspace=workspace, audience_id=audience.id, actor=ADMIN)
        connect(workspace, "fcm", {"service_account": fcm_fake.service_account("acme-push")})
        with pytest.raises(InvalidInput, match="no such audience") as error:
            topic_enable(workspace=workspace, audience_id=foreign.id, actor=ADMIN)
        assert error.value.field == "audience_id"
        topic_enable(workspace=workspace, audience_id=audience.id, actor=ADMIN)
        with pytest.raises(Conflict, match="already has a push topic"):
            with transaction.atomic():
                topic_enable(workspace=workspace, audience_id=audience.id, actor=ADMIN)


def test_removing_a_topic_unsubscribes_everyone_then_deletes_it(workspace, fcm):
    from masivo.feeds.models import FeedCursor

    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, kind="list", rules=None)
        ana = granted(workspace)
        device(ana, "ana-phone")
        enter(workspace, audience, ana)
        topic = topic_enable(workspace=workspace, audience_id=audience.id, actor=ADMIN)
    sync(workspace)
    assert at_fcm(fcm, workspace, audience) == {"ana-phone"}

    with workspace_scope(workspace.id):
        topic_remove(topic=topic, actor=ADMIN)
    result = sync(workspace)

    assert result.removed_topics == 1
    assert at_fcm(fcm, workspace, audience) == set()
    with workspace_scope(workspace.id):
        assert not AudienceTopic.objects.exists()
        assert not TopicSubscription.objects.exists()
        # The last topic gone, no cursor holds back either feed's retention.
        assert not FeedCursor.objects.filter(consumer="messaging.push_topics").exists()


def test_removing_one_of_two_topics_keeps_following_devices_for_the_other(workspace, fcm):
    from masivo.feeds.models import FeedCursor

    with workspace_scope(workspace.id):
        first = AudienceFactory(workspace=workspace, kind="list", rules=None)
        second = AudienceFactory(workspace=workspace, kind="list", rules=None)
        topic_enable(workspace=workspace, audience_id=first.id, actor=ADMIN)
        topic = topic_enable(workspace=workspace, audience_id=second.id, actor=ADMIN)
        topic_remove(topic=topic, actor=ADMIN)
    sync(workspace)

    with workspace_scope(workspace.id):
        kept = set(FeedCursor.objects.values_list("feed", "scope"))
    assert kept == {("membership_changes", first.id), ("profile_changes", 0)}


def test_a_deleted_audiences_topic_is_removed(workspace, fcm):
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, kind="list", rules=None)
        ana = granted(workspace)
        device(ana, "ana-phone")
        enter(workspace, audience, ana)
        topic_enable(workspace=workspace, audience_id=audience.id, actor=ADMIN)
    sync(workspace)
    with workspace_scope(workspace.id):
        audience_delete(audience=audience)

    sync(workspace)

    assert at_fcm(fcm, workspace, audience) == set()
    with workspace_scope(workspace.id):
        assert not AudienceTopic.objects.exists()


def test_the_api_creates_lists_shows_and_removes_topics(api, workspace, fcm):
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, kind="list", rules=None)

    bad = api.post(
        "/api/v1/messaging/push-topics", {"audience_id": "x"}, content_type="application/json"
    )
    missing = api.post(
        "/api/v1/messaging/push-topics", {"audience_id": 999999}, content_type="application/json"
    )
    created = api.post(
        "/api/v1/messaging/push-topics",
        {"audience_id": audience.id},
        content_type="application/json",
    )
    again = api.post(
        "/api/v1/messaging/push-topics",
        {"audience_id": audience.id},
        content_type="application/json",
    )

    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["audience_id"]
    assert missing.status_code == 400
    assert missing.json()["errors"] == {"audience_id": ["no such audience in this workspace"]}
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body | {"created_at": None, "id": None} == {
        "id": None,
        "audience_id": audience.id,
        "topic": f"{workspace.id}_audience_{audience.id}",
        "status": "active",
        "subscriptions": 0,
        "backfill_done": False,
        "last_error": "",
        "last_synced_at": None,
        "created_by": body["created_by"],
        "created_at": None,
    }
    assert again.status_code == 409
    with workspace_scope(workspace.id):
        assert AudienceTopic.objects.count() == 1
    listed = api.get("/api/v1/messaging/push-topics").json()
    assert [t["id"] for t in listed["results"]] == [body["id"]]
    assert api.get(f"/api/v1/messaging/push-topics/{body['id']}").json()["topic"] == body["topic"]
    removed = api.delete(f"/api/v1/messaging/push-topics/{body['id']}")
    assert removed.status_code == 202 and removed.json()["status"] == "removing"


def test_a_token_registered_to_another_member_stays_subscribed_under_its_new_owner(workspace, fcm):
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, kind="list", rules=None)
        ana, luis = granted(workspace), granted(workspace)
        device(ana, "shared-tablet")
        enter(workspace, audience, ana, luis)
        topic_enable(workspace=workspace, audience_id=audience.id, actor=ADMIN)
    sync(workspace)
    calls = len(fcm.requests)

    with workspace_scope(workspace.id):
        device(luis, "shared-tablet")  # the tablet now belongs to Luis
    result = sync(workspace)

    assert (result.reconciled.moved, result.reconciled.subscribed) == (1, 0)
    assert recorded(workspace) == {(luis.id, "shared-tablet")}
    assert at_fcm(fcm, workspace, audience) == {"shared-tablet"}
    assert len(fcm.requests) == calls  # nothing to ask FCM: the token was subscribed already
