"""Segment's own Python library, pointed at Masivo by `host`, works unchanged (docs/api.md)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from segment.analytics import Client
from segment.analytics.request import APIError
from segment.analytics.version import VERSION

from profiles import ingestion
from profiles.models import Customer, Event, Identity
from tests.profiles.helpers import get, rows, settle

pytestmark = pytest.mark.django_db(transaction=True)

WHEN = datetime(2026, 11, 1, 10, tzinfo=UTC)
LIBRARY_CONTEXT = {
    "library": {"name": "analytics-python", "version": VERSION},
    "ip": "127.0.0.1",
    "userAgent": f"analytics-python/{VERSION}",
}


@pytest.fixture
def follow_ups(monkeypatch) -> list[int]:
    """The wake-ups ingestion queues after each commit (kept out of the shared broker)."""
    queued = []
    monkeypatch.setattr(
        ingestion, "queue_follow_up", lambda *, workspace_id: queued.append(workspace_id)
    )
    return queued


@pytest.fixture(autouse=True)
def _no_persistent_database_connections(monkeypatch):
    """The library keeps its HTTP connection alive, and with it a live-server thread; with
    persistent database connections that thread would keep one open and stop the test database
    from being dropped at the end of the run."""
    monkeypatch.setitem(connections.settings[DEFAULT_DB_ALIAS], "CONN_MAX_AGE", 0)


@pytest.fixture
def segment(live_server, write_key) -> Client:
    return Client(write_key, host=live_server.url, sync_mode=True, max_retries=0)


def test_identify_track_page_screen_and_alias_from_the_official_client(
    segment, workspace, follow_ups
):
    segment.identify(
        "u1",
        {"email": "Ana@Example.com", "firstName": "Ana", "lastName": "López", "plan": "gold"},
        anonymous_id="anon-1",
        timestamp=WHEN,
        message_id="seg-1",
    )
    segment.track(
        "u1",
        "Order Completed",
        {"revenue": 59.9, "currency": "MXN"},
        timestamp=WHEN + timedelta(minutes=1),
        message_id="seg-2",
    )
    segment.page("u1", name="Pricing", properties={"path": "/pricing"}, message_id="seg-3")
    segment.screen("u1", name="Cart", properties={"items": 2}, message_id="seg-4")
    segment.track(anonymous_id="anon-1", event="Browse", message_id="seg-5")
    segment.alias("u1", "u2", message_id="seg-6")
    segment.track("u1", "After alias", message_id="seg-7")
    assert settle(workspace) == 7  # one follow-up for the seven calls, in the order sent

    ana = get(workspace, Customer)
    assert (ana.external_id, ana.email, ana.first_name, ana.last_name, ana.is_anonymous) == (
        "u2",
        "ana@example.com",
        "Ana",
        "López",
        False,
    )
    assert ana.traits == {"plan": "gold"}
    assert rows(workspace, Identity, "kind", "value", "customer_id") == [
        ("anonymous_id", "anon-1", ana.id),
        ("anonymous_id", "u1", ana.id),
        ("alias", "u1", ana.id),
    ]
    assert rows(
        workspace, Event, "message_id", "type", "name", "user_id", "anonymous_id", "customer_id"
    ) == [
        ("seg-1", "identify", "Identify", "u1", "anon-1", ana.id),
        ("seg-2", "track", "Order Completed", "u1", "", ana.id),
        ("seg-3", "page", "Page Viewed", "u1", "", ana.id),
        ("seg-4", "screen", "Screen Viewed", "u1", "", ana.id),
        ("seg-5", "track", "Browse", "", "anon-1", ana.id),
        ("seg-6", "alias", "Alias", "u2", "", ana.id),
        ("seg-7", "track", "After alias", "u1", "", ana.id),
    ]
    assert rows(workspace, Event, "properties") == [
        {"email": "Ana@Example.com", "firstName": "Ana", "lastName": "López", "plan": "gold"},
        {"revenue": 59.9, "currency": "MXN"},
        {"path": "/pricing", "name": "Pricing"},
        {"items": 2, "name": "Cart"},
        {},
        {"previousId": "u1"},
        {},
    ]
    assert rows(workspace, Event, "source") == ["segment"] * 7
    assert rows(workspace, Event, "context") == [LIBRARY_CONTEXT] * 7
    occurred = rows(workspace, Event, "occurred_at")
    # The client sends sentAt; the server removes the (tiny) skew between it and its own clock.
    assert abs(occurred[0] - WHEN) < timedelta(seconds=5)
    assert abs(occurred[1] - (WHEN + timedelta(minutes=1))) < timedelta(seconds=5)
    assert follow_ups == [workspace.id] * 7


def test_the_client_sees_a_refusal_as_an_api_error(segment, workspace, follow_ups):
    with pytest.raises(APIError) as refused:
        segment.track("u1", "   ", message_id="blank")

    assert refused.value.status == 400
    assert rows(workspace, Event, "id") == []
    assert follow_ups == []


def test_an_unknown_write_key_is_refused(live_server, workspace, follow_ups):
    stranger = Client("msv_wk_unknown", host=live_server.url, sync_mode=True, max_retries=0)

    with pytest.raises(APIError) as refused:
        stranger.track("u1", "Signup", message_id="m")

    assert refused.value.status == 401
    assert rows(workspace, Event, "id") == []
