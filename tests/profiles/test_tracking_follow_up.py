"""The tracking API's contract: a 200 means stored; the follow-up decides who each message is
about, in the order the messages were stored, one follow-up per workspace at a time."""

import psycopg
import pytest
from django.conf import settings

from masivo.pipeline import FollowUpBusy, process_events, process_events_now
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.redis import get_redis
from profiles.models import Customer, ErasureTombstone, Event
from profiles.services.customers import identifier_hash
from tests.profiles.helpers import get, rows, settle

pytestmark = pytest.mark.django_db


def test_batches_apply_in_the_order_they_were_stored(raw_tracking, workspace):
    raw_tracking.post("track", {"anonymousId": "a1", "event": "Browse", "messageId": "1"})
    raw_tracking.post(
        "identify",
        {"userId": "u1", "anonymousId": "a1", "traits": {"plan": "free"}, "messageId": "2"},
    )
    raw_tracking.post("identify", {"userId": "u1", "traits": {"plan": "pro"}, "messageId": "3"})
    raw_tracking.post("track", {"anonymousId": "a1", "event": "Buy", "messageId": "4"})
    assert rows(workspace, Customer, "id") == []

    assert settle(workspace) == 4

    ana = get(workspace, Customer)
    assert (ana.external_id, ana.traits) == ("u1", {"plan": "pro"})
    assert rows(workspace, Event, "message_id", "customer_id") == [
        ("1", ana.id),
        ("2", ana.id),
        ("3", ana.id),
        ("4", ana.id),
    ]
    assert None not in rows(workspace, Event, "processed_at")
    assert settle(workspace) == 0


def test_an_id_erased_before_the_follow_up_creates_nothing(raw_tracking, workspace):
    raw_tracking.post("identify", {"userId": "gone", "traits": {"plan": "x"}, "messageId": "1"})
    with workspace_scope(workspace.id):
        ErasureTombstone.objects.create(
            workspace=workspace,
            identifier_hash=identifier_hash(workspace.id, "external_id", "gone"),
            erased_by="test",
            customer_id_was=0,
        )

    assert settle(workspace) == 1

    assert rows(workspace, Customer, "id") == []
    assert rows(workspace, Event, "id") == []


@pytest.fixture
def other_session_lock(workspace):
    """The follow-up lock of `workspace`, held by another database session (another worker)."""
    dsn = settings.DATABASE_OWNER_URL or settings.DATABASE_URL
    name = settings.DATABASES["default"]["NAME"]
    with psycopg.connect(dsn.rsplit("/", 1)[0] + f"/{name}", autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(7303, %s)", [workspace.id])
        yield
        other.execute("SELECT pg_advisory_unlock(7303, %s)", [workspace.id])


def test_a_second_follow_up_of_a_workspace_waits_its_turn(
    raw_tracking, workspace, other_session_lock
):
    raw_tracking.post("track", {"userId": "u1", "event": "Buy", "messageId": "1"})
    with workspace_scope(workspace.id), pytest.raises(FollowUpBusy):
        process_events_now(workspace=workspace)
    queue = get_redis()
    before = queue.llen("celery")

    assert process_events(workspace_id=workspace.id) == 0  # re-queued itself for later

    assert queue.llen("celery") == before + 1
    assert rows(workspace, Event, "processed_at") == [None]


def test_one_wake_up_is_pending_per_workspace_at_a_time(
    raw_tracking, workspace, django_capture_on_commit_callbacks
):
    queue = get_redis()
    before = queue.llen("celery")
    for number in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            raw_tracking.post("track", {"userId": "u1", "event": "Buy", "messageId": f"a{number}"})
    assert queue.llen("celery") == before + 1

    assert process_events(workspace_id=workspace.id) == 3  # clears the flag as it starts
    with django_capture_on_commit_callbacks(execute=True):
        raw_tracking.post("track", {"userId": "u1", "event": "Buy", "messageId": "b"})

    assert queue.llen("celery") == before + 2


def test_a_busy_workspace_does_not_hold_up_another(
    raw_tracking, workspace, other_workspace, other_session_lock
):
    """Workspace A's follow-up is held elsewhere (a slow run on another worker); B's runs."""
    from masivo.tenancy.services import api_key_create
    from tests.profiles.conftest import TrackingClient

    with workspace_scope(other_workspace.id):
        key = api_key_create(workspace=other_workspace, kind="write", name="app").token
    TrackingClient(key).post("track", {"userId": "b1", "event": "Buy", "messageId": "1"})
    raw_tracking.post("track", {"userId": "a1", "event": "Buy", "messageId": "1"})

    assert process_events(workspace_id=other_workspace.id) == 1
    assert process_events(workspace_id=workspace.id) == 0

    assert rows(other_workspace, Customer, "external_id") == ["b1"]
    assert rows(workspace, Customer, "external_id") == []
