"""The Segment-compatible tracking API."""

import base64
import json
import logging
from datetime import UTC, datetime

import pytest
from django.test import Client

from masivo.pipeline import process_events_now
from masivo.tenancy.context import workspace_scope
from profiles.models import Customer, Event, Identity
from tests.profiles.helpers import settle

pytestmark = pytest.mark.django_db


def events(workspace):
    """The events once the follow-up has run (it decides who each is about)."""
    settle(workspace)
    with workspace_scope(workspace.id):
        return list(
            Event.objects.order_by("id").values_list(
                "type", "name", "message_id", "customer__external_id", "anonymous_id"
            )
        )


def customer(workspace, external_id):
    settle(workspace)
    with workspace_scope(workspace.id):
        return Customer.objects.get(external_id=external_id)


def test_track_stores_the_event_and_creates_the_customer(raw_tracking, workspace):
    response = raw_tracking.post(
        "track",
        {
            "userId": "u1",
            "event": "Order Completed",
            "properties": {"revenue": 120.5, "items": [{"sku": "A"}]},
            "messageId": "m-1",
            "timestamp": "2026-11-01T10:00:00Z",
            "context": {"locale": "es-MX"},
        },
    )
    assert response.status_code == 200
    assert response.json() == {"success": True}
    # A 200 means stored: who the event is about is decided by the follow-up.
    with workspace_scope(workspace.id):
        event = Event.objects.get()
        assert not Customer.objects.exists()
    assert (event.customer_id, event.user_id, event.processed_at) == (None, "u1", None)
    assert event.properties == {"revenue": 120.5, "items": [{"sku": "A"}]}
    assert event.occurred_at == datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert event.context["locale"] == "es-MX"
    assert event.context["ip"] == "127.0.0.1"
    assert event.source == "segment"
    assert events(workspace) == [("track", "Order Completed", "m-1", "u1", "")]
    with workspace_scope(workspace.id):
        event.refresh_from_db()
    assert event.processed_at is not None


def test_identify_maps_reserved_traits_to_profile_fields(tracking, workspace):
    tracking.post(
        "identify",
        {
            "userId": "u1",
            "traits": {
                "email": " Ana@Example.COM ",
                "firstName": "Ana",
                "lastName": "López",
                "phone": "+52 55 1234 5678",
                "address": {"country": "mx", "city": "CDMX"},
                "plan": "gold",
                "birthday": "1990-04-02",
            },
            "messageId": "i-1",
        },
    )
    ana = customer(workspace, "u1")
    assert (ana.email, ana.first_name, ana.last_name, ana.phone) == (
        "ana@example.com",
        "Ana",
        "López",
        "+525512345678",
    )
    assert (ana.country, ana.city, str(ana.birth_date)) == ("MX", "CDMX", "1990-04-02")
    assert ana.traits == {"plan": "gold", "address": {"country": "mx", "city": "CDMX"}}


def test_an_invalid_reserved_trait_is_kept_as_a_trait_with_a_warning(tracking, workspace):
    response = tracking.post(
        "identify", {"userId": "u1", "traits": {"email": "not-an-email", "plan": "x"}}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert body["warnings"] == [
        "message 0: traits.email: 'not-an-email' is not a valid email address "
        "(kept as a plain trait)"
    ]
    ana = customer(workspace, "u1")
    assert ana.email is None
    assert ana.traits == {"email": "not-an-email", "plan": "x"}


def test_batch_merges_context_and_dedupes_on_resend(tracking, workspace):
    batch = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "A", "messageId": "b-1"},
            {"type": "page", "anonymousId": "anon-1", "name": "Home", "messageId": "b-2",
             "context": {"page": {"path": "/"}}},
            {"type": "screen", "userId": "u2", "name": "Cart", "messageId": "b-3"},
        ],
        "context": {"library": {"name": "analytics-python"}, "page": {"path": "/ignored"}},
    }  # fmt: skip
    assert tracking.post("batch", batch).json() == {"success": True}
    stored = events(workspace)
    assert stored == [
        ("track", "A", "b-1", "u1", ""),
        ("page", "Page Viewed", "b-2", None, "anon-1"),
        ("screen", "Screen Viewed", "b-3", "u2", ""),
    ]
    with workspace_scope(workspace.id):
        page = Event.objects.get(message_id="b-2")
    assert page.context["page"] == {"path": "/"}
    assert page.context["library"] == {"name": "analytics-python"}
    assert page.properties == {"name": "Home"}

    again = tracking.post("batch", batch)
    assert again.status_code == 200
    assert again.json() == {"success": True}
    assert events(workspace) == stored


def test_duplicate_message_ids_inside_one_batch_store_the_first(tracking, workspace):
    batch = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "First", "messageId": "same"},
            {"type": "track", "userId": "u1", "event": "Second", "messageId": "same"},
        ]
    }
    assert tracking.post("batch", batch).status_code == 200
    assert events(workspace) == [("track", "First", "same", "u1", "")]


def test_one_bad_event_does_not_lose_the_good_ones(tracking, workspace):
    batch = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "Good", "messageId": "g-1"},
            {"type": "track", "userId": "u1", "messageId": "bad-1"},
            {"type": "track", "event": "No one", "messageId": "bad-2"},
            "not an object",
            {"type": "bogus", "userId": "u1"},
            {"type": "track", "userId": "u1", "event": "Late", "timestamp": "yesterday"},
        ]
    }
    response = tracking.post("batch", batch)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {"index": 1, "reason": "track needs an event name", "field": "event", "messageId": "bad-1"},
        {"index": 2, "reason": "userId or anonymousId is required", "field": "userId",
         "messageId": "bad-2"},
        {"index": 3, "reason": "each message must be a JSON object"},
        {"index": 4, "reason": "type must be one of identify, track, page, screen, group, alias",
         "field": "type"},
        {"index": 5, "reason": "must be an ISO 8601 date-time", "field": "timestamp"},
    ]  # fmt: skip
    assert events(workspace) == [("track", "Good", "g-1", "u1", "")]


def test_a_single_bad_call_is_a_400_naming_the_field(tracking, workspace):
    response = tracking.post("track", {"userId": "u1", "event": ""})
    assert response.status_code == 400
    assert response.json()["errors"] == {"event": ["track needs an event name"]}
    assert events(workspace) == []


def test_gzip_bodies_are_accepted(tracking, workspace):
    body = {"batch": [{"type": "track", "userId": "u1", "event": "Zipped", "messageId": "z"}]}
    assert tracking.post("batch", body, gzipped=True).json() == {"success": True}
    assert events(workspace) == [("track", "Zipped", "z", "u1", "")]


def test_invalid_gzip_is_a_400(tracking):
    response = tracking.post("batch", None, raw=b"\x1f\x8bnot gzip", gzipped=False)
    assert response.status_code == 400
    garbled = tracking.client.post(
        "/v1/batch", b"garbage", content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert garbled.status_code == 400
    assert garbled.json()["detail"] == "the body is not valid gzip"


def test_oversize_event_and_batch(tracking, workspace):
    big = {"type": "track", "userId": "u1", "event": "Big", "properties": {"x": "a" * 33000}}
    small = {"type": "track", "userId": "u1", "event": "Small", "messageId": "s"}
    body = tracking.post("batch", {"batch": [big, small]}).json()
    assert body["rejected"][0]["index"] == 0
    assert body["rejected"][0]["reason"].endswith("the limit is 32 KB")
    assert events(workspace) == [("track", "Small", "s", "u1", "")]

    huge = {
        "batch": [dict(small, messageId=f"h{i}", properties={"x": "a" * 20000}) for i in range(30)]
    }
    response = tracking.post("batch", huge)
    assert response.status_code == 400
    assert response.json() == {"detail": "the body is larger than 500 KB", "code": "too_large"}
    assert len(events(workspace)) == 1


def test_write_key_in_the_body_authenticates(write_key, workspace):
    body = {"writeKey": write_key, "userId": "u1", "event": "Body key", "messageId": "k"}
    response = Client().post("/v1/track", body, content_type="application/json")
    assert response.status_code == 200
    assert events(workspace) == [("track", "Body key", "k", "u1", "")]


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Basic " + base64.b64encode(b"msv_wk_nope:").decode(), 401), ("Basic !!", 401)],
)
def test_bad_write_keys_are_refused(workspace, authorization, status):
    client = Client(HTTP_AUTHORIZATION=authorization) if authorization else Client()
    response = client.post(
        "/v1/track", {"userId": "u", "event": "x"}, content_type="application/json"
    )
    assert response.status_code == status
    assert events(workspace) == []


def test_a_secret_key_is_not_a_write_key(api, workspace):
    from tests.conftest import mint_secret_key

    token = mint_secret_key(workspace)
    auth = base64.b64encode(f"{token}:".encode()).decode()
    response = Client(HTTP_AUTHORIZATION=f"Basic {auth}").post(
        "/v1/track", {"userId": "u", "event": "x"}, content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "unknown or revoked write key"


def test_identify_attaches_anonymous_history_to_the_known_customer(tracking, workspace):
    tracking.post("track", {"anonymousId": "anon-7", "event": "Browse", "messageId": "a1"})
    tracking.post("page", {"anonymousId": "anon-7", "name": "Pricing", "messageId": "a2"})
    assert [row[3] for row in events(workspace)] == [None, None]

    tracking.post("identify", {"userId": "u7", "anonymousId": "anon-7", "messageId": "a3"})
    assert [row[3] for row in events(workspace)] == ["u7", "u7", "u7"]
    with workspace_scope(workspace.id):
        assert list(Identity.objects.values_list("kind", "value", "customer__external_id")) == [
            ("anonymous_id", "anon-7", "u7")
        ]
    tracking.post("track", {"anonymousId": "anon-7", "event": "Later", "messageId": "a4"})
    assert events(workspace)[-1][3] == "u7"


def test_a_shared_anonymous_id_is_not_moved_to_a_second_customer(raw_tracking, workspace, caplog):
    raw_tracking.post("identify", {"userId": "u1", "anonymousId": "kiosk", "messageId": "s1"})
    settle(workspace)
    response = raw_tracking.post(
        "identify", {"userId": "u2", "anonymousId": "kiosk", "messageId": "s2"}
    )
    assert response.json() == {"success": True}
    with caplog.at_level(logging.INFO, logger="profiles.resolution"):
        settle(workspace)
    assert [r.getMessage() for r in caplog.records if r.name == "profiles.resolution"] == [
        f"workspace {workspace.id}, tracking: anonymous id 'kiosk' already belongs to another "
        "customer; it was not moved"
    ]
    with workspace_scope(workspace.id):
        assert list(Identity.objects.values_list("value", "customer__external_id")) == [
            ("kiosk", "u1")
        ]


def test_alias_merges_the_previous_profile_into_the_new_one(tracking, workspace):
    tracking.post(
        "identify", {"userId": "old", "traits": {"email": "a@example.com"}, "messageId": "1"}
    )
    tracking.post("track", {"userId": "old", "event": "Signup", "messageId": "2"})
    tracking.post("identify", {"userId": "new", "traits": {"plan": "pro"}, "messageId": "3"})
    response = tracking.post("alias", {"previousId": "old", "userId": "new", "messageId": "4"})
    assert response.status_code == 200
    settle(workspace)
    with workspace_scope(workspace.id):
        assert list(Customer.objects.values_list("external_id", "email", "traits")) == [
            ("new", "a@example.com", {"plan": "pro"})
        ]
        assert Identity.objects.get(kind="alias").value == "old"
    assert {row[3] for row in events(workspace)} == {"new"}
    tracking.post("track", {"userId": "old", "event": "After alias", "messageId": "5"})
    assert events(workspace)[-1][3] == "new"


def test_far_future_timestamps_become_the_received_time(tracking, workspace):
    tracking.post(
        "track",
        {"userId": "u1", "event": "Clock", "messageId": "f", "timestamp": "2999-01-01T00:00:00Z"},
    )
    with workspace_scope(workspace.id):
        event = Event.objects.get()
    assert event.occurred_at == event.received_at
    assert event.context["masivo"] == {"original_timestamp": "2999-01-01T00:00:00Z"}


def test_sent_at_corrects_client_clock_skew(tracking, workspace):
    tracking.post(
        "track",
        {
            "userId": "u1",
            "event": "Skewed",
            "messageId": "k",
            "timestamp": "2026-01-01T10:00:00Z",
            "sentAt": "2026-01-01T10:00:05Z",
        },
    )
    with workspace_scope(workspace.id):
        event = Event.objects.get()
    assert event.occurred_at == datetime(2026, 1, 1, 10, tzinfo=UTC) + (
        event.received_at - datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC)
    )


def test_nul_characters_are_removed_and_unicode_kept(tracking, workspace):
    tracking.post(
        "track",
        {"userId": "ü\x00ser", "event": "Compra 🎉\x00", "properties": {"ñ\x00": "a\x00b"}},
    )
    with workspace_scope(workspace.id):
        event = Event.objects.get()
    assert (event.user_id, event.name, event.properties) == ("üser", "Compra 🎉", {"ñ": "ab"})


def test_deeply_nested_properties_are_rejected(tracking, workspace):
    nested = current = {}
    for _ in range(12):
        current["a"] = {}
        current = current["a"]
    response = tracking.post("track", {"userId": "u1", "event": "Deep", "properties": nested})
    assert response.status_code == 400
    assert response.json()["detail"] == "nested deeper than 10 levels"
    assert events(workspace) == []


def test_the_follow_up_updates_metrics_and_last_seen(raw_tracking, workspace):
    raw_tracking.post(
        "batch",
        {
            "batch": [
                {"type": "track", "userId": "u1", "event": "Order Completed",
                 "properties": {"revenue": 100}, "messageId": "p1"},
                {"type": "track", "userId": "u1", "event": "purchase",
                 "properties": {"value": "not a number", "revenue": 50.25}, "messageId": "p2"},
                {"type": "track", "userId": "u1", "event": "Viewed", "messageId": "p3"},
            ]
        },
    )  # fmt: skip
    with workspace_scope(workspace.id):
        assert process_events_now(workspace=workspace) == 3
        assert process_events_now(workspace=workspace) == 0
        ana = Customer.objects.get(external_id="u1")
        assert Event.objects.filter(processed_at__isnull=True).count() == 0
    assert (ana.purchase_count, str(ana.purchase_total)) == (2, "150.25")
    assert (ana.purchases_30d_count, str(ana.purchases_30d_total)) == (2, "150.25")
    assert ana.last_seen_at is not None
    assert ana.last_purchase_at is not None


def test_json_that_is_not_an_object_is_a_400(tracking):
    response = tracking.post("batch", [1, 2, 3])
    assert response.status_code == 400
    assert json.loads(response.content)["detail"] == "the body must be a JSON object"


def test_a_batch_level_sent_at_corrects_every_item(tracking, workspace):
    tracking.post(
        "batch",
        {
            "batch": [
                {"type": "track", "userId": "u1", "event": "A", "messageId": "s1",
                 "timestamp": "2026-01-01T10:00:00Z"},
            ],
            "sentAt": "2026-01-01T10:00:05Z",
        },
    )  # fmt: skip
    with workspace_scope(workspace.id):
        event = Event.objects.get()
    assert event.occurred_at == datetime(2026, 1, 1, 10, tzinfo=UTC) + (
        event.received_at - datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC)
    )
