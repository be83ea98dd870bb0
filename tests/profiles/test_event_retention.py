"""Event retention: whole months dropped (or detached) by the application role once every
workspace's retention has passed them, the rest deleted row by row per workspace, and the
dedupe window pruned."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from masivo.tenancy.context import workspace_scope
from profiles import tasks
from profiles.eventlog import events_append
from profiles.models import Event, EventMessageId
from profiles.retention import (
    event_months_expire,
    events_longest_retention_days,
    workspace_retention_apply,
)
from profiles.services.settings import profile_settings_update
from tests.profiles.app_role import app_role_connection
from tests.profiles.helpers import rows

NOW = datetime.now(UTC)


def month_start(offset: int) -> datetime:
    number = NOW.year * 12 + NOW.month - 1 + offset
    return datetime(number // 12, number % 12 + 1, 1, tzinfo=UTC)


def partition_of(offset: int) -> str:
    return f"profiles_event_{month_start(offset):y%Ym%m}"


def fetch(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def partitions() -> set[str]:
    return {
        name
        for (name,) in fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'profiles_event'::regclass"
        )
    }


def append(workspace, *events: tuple[str, datetime], now=NOW) -> int:
    batch = [
        {
            "type": "track",
            "name": "Viewed",
            "properties": {},
            "occurred_at": occurred_at.isoformat(),
            "message_id": message_id,
            "customer_id": None,
            "user_id": "",
            "anonymous_id": "a",
            "context": {},
        }
        for message_id, occurred_at in events
    ]
    with workspace_scope(workspace.id):
        return events_append(workspace_id=workspace.id, rows=batch, source="test", now=now)


def retain(workspace, days: int | None) -> None:
    with workspace_scope(workspace.id):
        profile_settings_update(workspace=workspace, changes={"event_retention_days": days})


@pytest.fixture
def old_months():
    """Months 40, 36 and 35 back, created by the application role; whatever is left of them
    (partitions or archives) is dropped afterwards."""
    with app_role_connection() as app:
        for offset in (-40, -36, -35):
            app.execute("SELECT masivo_event_partition_create(%s)", [month_start(offset).date()])
    yield
    with connection.cursor() as cursor:
        for offset in (-40, -36, -35):
            name = partition_of(offset)
            cursor.execute(f'DROP TABLE IF EXISTS "{name}"')
            cursor.execute(f'DROP TABLE IF EXISTS "{name.replace("_y", "_archive_y")}"')


@pytest.mark.django_db(transaction=True)
def test_the_app_role_drops_the_months_every_workspaces_retention_has_passed(
    workspace, other_workspace, old_months
):
    for ws in (workspace, other_workspace):
        append(
            ws,
            ("m-36", month_start(-36) + timedelta(days=2)),
            ("m-35", month_start(-35) + timedelta(days=20)),
            ("m-0", NOW),
        )
    retain(workspace, 365)
    retain(other_workspace, 1000)  # ~33 months: month -35 ended before, month -36 too

    with app_role_connection() as app:
        dropped = [
            row[0] for row in app.execute("SELECT masivo_event_partitions_expire(1000, false)")
        ]

    assert events_longest_retention_days() == 1000
    assert dropped == [partition_of(-40), partition_of(-36), partition_of(-35)]
    assert partitions() & {partition_of(-40), partition_of(-36), partition_of(-35)} == set()
    assert rows(workspace, Event, "message_id") == ["m-0"]
    assert rows(other_workspace, Event, "message_id") == ["m-0"]


@pytest.mark.django_db(transaction=True)
def test_nothing_is_dropped_while_one_workspace_keeps_everything(
    workspace, other_workspace, old_months
):
    append(workspace, ("m-36", month_start(-36) + timedelta(days=2)))
    retain(workspace, 30)

    assert events_longest_retention_days() is None
    assert event_months_expire() == []
    assert {partition_of(-40), partition_of(-36)} <= partitions()
    assert rows(workspace, Event, "message_id") == ["m-36"]


@pytest.mark.django_db(transaction=True)
def test_detaching_keeps_the_month_as_an_archive_without_foreign_keys(workspace, old_months):
    append(workspace, ("m-40", month_start(-40) + timedelta(days=1)), ("m-0", NOW))

    with app_role_connection() as app:
        detached = [
            row[0] for row in app.execute("SELECT masivo_event_partitions_expire(1150, true)")
        ]

    archive = partition_of(-40).replace("_y", "_archive_y")
    assert detached == [archive]
    assert fetch(
        "SELECT relispartition, relrowsecurity, relforcerowsecurity, "
        "(SELECT count(*) FROM pg_constraint WHERE conrelid = c.oid AND contype = 'f') "
        "FROM pg_class c WHERE relname = %s",
        [archive],
    ) == [(False, True, True, 0)]
    with workspace_scope(workspace.id):
        assert fetch(f'SELECT message_id FROM "{archive}"') == [("m-40",)]  # noqa: S608
    assert rows(workspace, Event, "message_id") == ["m-0"]


@pytest.mark.parametrize(
    ("mine", "theirs", "cap", "longest"),
    [
        (30, None, None, None),
        (30, 90, None, 90),
        (30, None, 10, 10),
        (30, 90, 60, 60),
        (None, None, None, None),
    ],
)
@pytest.mark.django_db
def test_the_longest_retention_is_what_every_workspace_keeps_after_the_cap(
    workspace, other_workspace, settings, mine, theirs, cap, longest
):
    settings.MASIVO_EVENT_RETENTION_MAX_DAYS = cap
    retain(workspace, mine)
    retain(other_workspace, theirs)

    assert events_longest_retention_days() == longest


@pytest.mark.django_db
def test_a_shorter_retention_deletes_its_own_old_rows_in_batches_and_the_default_partition(
    workspace, other_workspace, settings
):
    settings.MASIVO_EVENT_DEDUPE_WINDOW_DAYS = 7
    events = [
        ("d-60", NOW - timedelta(days=60)),
        ("d-45", NOW - timedelta(days=45)),
        ("d-1995", datetime(1995, 1, 1, tzinfo=UTC)),
        ("d-10", NOW - timedelta(days=10)),
        ("d-0", NOW),
    ]
    append(workspace, *events[:3], now=NOW - timedelta(days=8))
    append(workspace, *events[3:])
    append(other_workspace, *events)
    retain(workspace, 30)

    with workspace_scope(workspace.id):
        result = workspace_retention_apply(workspace=workspace, now=NOW, batch_size=2)
    with workspace_scope(other_workspace.id):
        untouched = workspace_retention_apply(workspace=other_workspace, now=NOW, batch_size=2)

    assert (result.events_deleted, result.message_ids_deleted) == (3, 3)
    assert rows(workspace, Event, "message_id") == ["d-10", "d-0"]
    assert rows(workspace, EventMessageId, "message_id", order_by=("message_id",)) == [
        "d-0",
        "d-10",
    ]
    assert (untouched.events_deleted, untouched.message_ids_deleted) == (0, 0)
    assert rows(other_workspace, Event, "message_id") == [name for name, _ in events]


@pytest.mark.django_db
def test_the_platform_cap_applies_to_a_workspace_that_keeps_everything(workspace, settings):
    settings.MASIVO_EVENT_RETENTION_MAX_DAYS = 20
    append(workspace, ("d-30", NOW - timedelta(days=30)), ("d-5", NOW - timedelta(days=5)))

    with workspace_scope(workspace.id):
        result = workspace_retention_apply(workspace=workspace, now=NOW)

    assert result.events_deleted == 1
    assert rows(workspace, Event, "message_id") == ["d-5"]


@pytest.mark.django_db
def test_the_beat_task_expires_months_then_queues_each_workspace(
    workspace, other_workspace, monkeypatch
):
    queued = []
    monkeypatch.setattr(
        tasks.apply_workspace_event_retention, "delay", lambda **kwargs: queued.append(kwargs)
    )

    assert tasks.apply_event_retention() == 2
    assert queued == [{"workspace_id": workspace.id}, {"workspace_id": other_workspace.id}]


@pytest.mark.django_db
def test_the_workspace_task_applies_the_retention_in_its_scope(workspace):
    retain(workspace, 30)
    append(workspace, ("d-60", NOW - timedelta(days=60)), ("d-0", NOW))

    result = tasks.apply_workspace_event_retention(workspace_id=workspace.id)

    assert result == {"events_deleted": 1, "message_ids_deleted": 0}
    assert rows(workspace, Event, "message_id") == ["d-0"]


@pytest.mark.django_db
def test_the_command_runs_the_same_maintenance_by_hand(workspace, other_workspace):
    retain(workspace, 30)
    append(workspace, ("d-60", NOW - timedelta(days=60)), ("d-0", NOW))
    out = io.StringIO()

    # No month back: moving rows out of the default partition cannot run in the transaction
    # that wrote them (test_event_partitions covers months back).
    call_command("event_partitions", "ensure", "--ahead", "3", "--back", "0", stdout=out)
    call_command("event_partitions", "expire", stdout=out)
    call_command("event_partitions", "show", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[:4] == [
        "created 0: -",
        "months: a workspace keeps every event, none expired",
        f"workspace {workspace.id}: 1 events, 0 message ids deleted",
        f"workspace {other_workspace.id}: 0 events, 0 message ids deleted",
    ]
    assert "profiles_event_default\tDEFAULT" in lines
    assert (
        f"{partition_of(0)}\tFOR VALUES FROM ('{month_start(0):%Y-%m-%d} 00:00:00+00') "
        f"TO ('{month_start(1):%Y-%m-%d} 00:00:00+00')"
    ) in lines
    assert rows(workspace, Event, "message_id") == ["d-0"]
