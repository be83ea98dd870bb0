"""events_append: a batch stored in its order, each message id once per workspace and window."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction

from masivo.tenancy.context import workspace_scope
from profiles.eventlog import _EVENT_INSERT, events_append
from profiles.models import Event, EventMessageId
from profiles.retention import workspace_retention_apply
from tests.profiles.app_role import app_role_connection
from tests.profiles.helpers import rows

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def event(message_id: str, name: str = "Viewed", occurred_at: str = "2026-11-30T11:00:00Z"):
    return {
        "type": "track",
        "name": name,
        "properties": {"page": message_id},
        "occurred_at": occurred_at,
        "message_id": message_id,
        "customer_id": None,
        "user_id": "",
        "anonymous_id": "anon-1",
        "context": {},
    }


def append(workspace, batch, now=NOW) -> int:
    with workspace_scope(workspace.id):
        return events_append(workspace_id=workspace.id, rows=batch, source="test", now=now)


def test_a_batch_is_stored_in_its_order_and_counted(workspace):
    stored = append(workspace, [event("m3", "C"), event("m1", "A"), event("m2", "B")])

    assert stored == 3
    assert rows(workspace, Event, "message_id", "name", "source") == [
        ("m3", "C", "test"),
        ("m1", "A", "test"),
        ("m2", "B", "test"),
    ]
    assert rows(workspace, EventMessageId, "message_id", "seen_at", order_by=("message_id",)) == [
        ("m1", NOW),
        ("m2", NOW),
        ("m3", NOW),
    ]


def test_ids_already_stored_are_skipped_and_the_rest_keep_their_order(workspace):
    append(workspace, [event("m1"), event("m2")])

    stored = append(workspace, [event("m4", "D"), event("m2", "again"), event("m3", "C")])

    assert stored == 2
    assert rows(workspace, Event, "message_id", "name") == [
        ("m1", "Viewed"),
        ("m2", "Viewed"),
        ("m4", "D"),
        ("m3", "C"),
    ]


def test_an_id_repeated_in_one_batch_is_stored_once_at_its_first_place(workspace):
    stored = append(workspace, [event("m1", "first"), event("m2"), event("m1", "second")])

    assert stored == 2
    assert rows(workspace, Event, "message_id", "name") == [("m1", "first"), ("m2", "Viewed")]


def test_the_same_id_in_another_workspace_is_its_own(workspace, other_workspace):
    append(workspace, [event("m1", "mine")])

    assert append(other_workspace, [event("m1", "theirs")]) == 1
    assert rows(other_workspace, Event, "message_id", "name") == [("m1", "theirs")]
    assert rows(workspace, Event, "message_id", "name") == [("m1", "mine")]


def test_a_replay_older_than_the_window_is_stored_again(workspace, settings):
    settings.MASIVO_EVENT_DEDUPE_WINDOW_DAYS = 7
    append(workspace, [event("m1")], now=NOW - timedelta(days=8))
    append(workspace, [event("m2")], now=NOW - timedelta(days=6))
    with workspace_scope(workspace.id):
        pruned = workspace_retention_apply(workspace=workspace, now=NOW)

    stored = append(workspace, [event("m1", "replay"), event("m2", "replay")])

    assert (pruned.events_deleted, pruned.message_ids_deleted) == (0, 1)
    assert stored == 1
    assert rows(workspace, Event, "message_id", "name") == [
        ("m1", "Viewed"),
        ("m2", "Viewed"),
        ("m1", "replay"),
    ]


def test_an_empty_batch_stores_nothing(workspace):
    assert append(workspace, []) == 0
    assert rows(workspace, Event, "id") == []


def test_a_batch_for_another_workspace_than_the_scope_is_refused_and_stores_nothing(
    workspace, other_workspace
):
    with (
        workspace_scope(workspace.id),
        pytest.raises(DatabaseError, match="violates row-level security policy"),
        transaction.atomic(),
    ):
        events_append(workspace_id=other_workspace.id, rows=[event("m1")], source="t", now=NOW)

    assert rows(other_workspace, EventMessageId, "message_id") == []
    assert rows(other_workspace, Event, "message_id") == []


def test_events_land_in_the_partition_of_their_month_and_stragglers_in_the_default(workspace):
    today = datetime.now(UTC)  # the migration created this month's partition and 3 more
    append(
        workspace,
        [
            event("now", occurred_at=today.isoformat()),
            event("old", occurred_at="1990-05-01T00:00Z"),
        ],
    )

    with workspace_scope(workspace.id), connection.cursor() as cursor:
        cursor.execute(
            "SELECT message_id, tableoid::regclass::text FROM profiles_event ORDER BY id"
        )
        placed = cursor.fetchall()
    assert placed == [("now", f"profiles_event_{today:y%Ym%m}"), ("old", "profiles_event_default")]


@pytest.mark.parametrize(("first_commits", "second_stores"), [(True, 0), (False, 1)])
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_batch_with_the_same_id_waits_for_the_first_then_skips_or_takes_it(
    workspace, first_commits, second_stores
):
    params = {
        "workspace": workspace.id,
        "now": NOW,
        "source": "other",
        "rows": json.dumps([event("m1", "second"), event("m2", "second")]),
    }
    outcome = {}
    with app_role_connection() as other:
        other.execute("SELECT set_config('masivo.workspace_id', %s, false)", [str(workspace.id)])

        def second_batch():
            outcome["stored"] = other.execute(_EVENT_INSERT, params).rowcount

        waiter = threading.Thread(target=second_batch)
        with transaction.atomic():
            assert append(workspace, [event("m1", "first")]) == 1
            waiter.start()
            waiter.join(timeout=1)
            outcome["waited"] = waiter.is_alive()
            transaction.set_rollback(not first_commits)
        waiter.join(timeout=10)

    assert outcome == {"waited": True, "stored": second_stores + 1}
    expected = [("m1", "first")] * first_commits + [("m1", "second")] * (not first_commits)
    assert sorted(rows(workspace, Event, "message_id", "name")) == sorted(
        [*expected, ("m2", "second")]
    )
