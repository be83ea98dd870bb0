"""The event log partitioned by month: the migration from the plain table on a populated
database, the catalog it leaves, and partitions created ahead by the application role."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from masivo.tenancy.context import workspace_scope
from profiles.eventlog import events_append
from tests.profiles.app_role import app_role_connection

NOW = datetime.now(UTC)
PREVIOUS = ("profiles", "0007_event_retention_and_dedupe")
MODEL_INDEXES = {
    "event_ws_customer_time": "(workspace_id, customer_id, occurred_at DESC)",
    "event_ws_name_time": "(workspace_id, name, occurred_at DESC)",
    "event_ws_customer_name_time": "(workspace_id, customer_id, name, occurred_at)",
    "event_ws_anonymous": (
        "(workspace_id, anonymous_id) WHERE ((customer_id IS NULL) AND "
        "(NOT ((anonymous_id)::text = ''::text)))"
    ),
    "event_ws_unprocessed": "(workspace_id, received_at) WHERE (processed_at IS NULL)",
    "profiles_event_customer_id_e70cb0ee": "(customer_id)",
    "profiles_event_pkey": "(id, occurred_at)",
}


def month_start(offset: int) -> datetime:
    """The first instant (UTC) of the month `offset` months from this one."""
    number = NOW.year * 12 + NOW.month - 1 + offset
    return datetime(number // 12, number % 12 + 1, 1, tzinfo=UTC)


def partition_of(offset: int) -> str:
    return f"profiles_event_{month_start(offset):y%Ym%m}"


def fetch(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def partitions() -> list[str]:
    return [
        name
        for (name,) in fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'profiles_event'::regclass ORDER BY c.relname"
        )
    ]


def events_by_workspace(workspace) -> list[tuple]:
    with workspace_scope(workspace.id):
        return fetch(
            "SELECT id, message_id, occurred_at, customer_id, tableoid::regclass::text "
            "FROM profiles_event ORDER BY id"
        )


def insert_old_event(workspace, message_id, occurred_at, *, customer=None, received_at=NOW):
    with workspace_scope(workspace.id):
        ((event_id,),) = fetch(
            "INSERT INTO profiles_event (workspace_id, type, name, properties, occurred_at, "
            "received_at, message_id, customer_id, user_id, anonymous_id, context, source) "
            "VALUES (%s, 'track', 'Viewed', '{}', %s, %s, %s, %s, '', '', '{}', 'test') "
            "RETURNING id",
            [workspace.id, occurred_at, received_at, message_id, customer and customer.id],
        )
    return event_id


def append(workspace, *message_ids) -> int:
    rows = [
        {
            "type": "track",
            "name": "Viewed",
            "properties": {},
            "occurred_at": NOW.isoformat(),
            "message_id": message_id,
            "customer_id": None,
            "user_id": "",
            "anonymous_id": "a",
            "context": {},
        }
        for message_id in message_ids
    ]
    with workspace_scope(workspace.id):
        return events_append(workspace_id=workspace.id, rows=rows, source="test", now=NOW)


def migrate(target: list[tuple[str, str]] | None = None) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(target or executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_event_its_id_and_the_walls(workspace, other_workspace):
    migrate([PREVIOUS])
    try:
        assert fetch("SELECT relkind FROM pg_class WHERE relname = 'profiles_event'") == [("r",)]
        # The customer as the schema was then: today's model has columns that did not exist yet.
        then = MigrationExecutor(connection).loader.project_state([PREVIOUS]).apps
        with workspace_scope(workspace.id):
            ana = then.get_model("profiles", "Customer").objects.create(
                workspace_id=workspace.id, external_id="ana", email="ana@example.com"
            )
        mine = [
            insert_old_event(workspace, "a-5", month_start(-5) + timedelta(days=9), customer=ana),
            insert_old_event(workspace, "a-2", month_start(-2) + timedelta(days=27, hours=23)),
            insert_old_event(workspace, "a-0", month_start(0)),
            insert_old_event(workspace, "a-1995", datetime(1995, 3, 4, tzinfo=UTC)),
            insert_old_event(
                workspace, "a-old-receipt", month_start(-1), received_at=NOW - timedelta(days=30)
            ),
        ]
        theirs = [
            insert_old_event(other_workspace, "b-4", month_start(-4) + timedelta(days=3)),
            insert_old_event(other_workspace, "a-5", month_start(-1) + timedelta(days=1)),
            insert_old_event(other_workspace, "b+2", month_start(2) + timedelta(days=2)),
        ]
        before = {ws.id: events_by_workspace(ws) for ws in (workspace, other_workspace)}
    finally:
        migrate()

    after = {ws.id: events_by_workspace(ws) for ws in (workspace, other_workspace)}
    assert [row[:4] for row in after[workspace.id]] == [row[:4] for row in before[workspace.id]]
    assert [row[:4] for row in after[other_workspace.id]] == [
        row[:4] for row in before[other_workspace.id]
    ]
    assert [row[0] for row in after[workspace.id]] == mine
    assert [row[4] for row in after[workspace.id]] == [
        partition_of(-5),
        partition_of(-2),
        partition_of(0),
        "profiles_event_default",
        partition_of(-1),
    ]
    assert [row[4] for row in after[other_workspace.id]] == [
        partition_of(-4),
        partition_of(-1),
        partition_of(2),
    ]
    # Months with events, this one and three ahead; the months between get none.
    assert partitions() == sorted(
        {partition_of(offset) for offset in (-5, -4, -2, -1, 0, 1, 2, 3)}
        | {"profiles_event_default"}
    )

    # Duplicates of migrated ids are refused within the window; one received 30 days ago is not
    # in it (the seed holds the last 7 days), so its replay is stored; new ids continue above.
    assert append(workspace, "a-5", "a-0", "a-1995") == 0
    assert append(workspace, "a-old-receipt", "a-new") == 2
    new_ids = [row[0] for row in events_by_workspace(workspace)[len(mine) :]]
    assert len(new_ids) == 2 and min(new_ids) > max(mine + theirs)
    assert append(other_workspace, "b-4", "a-0") == 1

    # Row-level security still walls workspaces off, through the table and its partitions.
    assert fetch("SELECT count(*) FROM profiles_event") == [(0,)]
    with workspace_scope(other_workspace.id):
        assert fetch("SELECT count(*) FROM profiles_event") == [(4,)]
        assert fetch("SELECT count(*) FROM profiles_event_default") == [(0,)]
    with workspace_scope(workspace.id):
        assert fetch("SELECT count(*) FROM profiles_event_default") == [(1,)]
        assert fetch(f"SELECT message_id FROM {partition_of(2)}") == []  # noqa: S608


@pytest.mark.django_db
def test_the_table_is_partitioned_by_month_with_the_models_indexes_and_keys():
    indexes = dict(
        fetch(
            "SELECT i.relname, substring(pg_get_indexdef(x.indexrelid) from ' USING btree (.*)$') "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'profiles_event'::regclass"
        )
    )
    foreign_keys = fetch(
        "SELECT confrelid::regclass::text, condeferrable, condeferred FROM pg_constraint "
        "WHERE conrelid = 'profiles_event'::regclass AND contype = 'f' ORDER BY 1"
    )

    assert fetch(
        "SELECT pg_get_partkeydef('profiles_event'::regclass), "
        "pg_get_serial_sequence('profiles_event', 'id')"
    ) == [("RANGE (occurred_at)", "public.profiles_event_id_seq")]
    assert indexes == MODEL_INDEXES
    assert foreign_keys == [("profiles_customer", True, True), ("tenancy_workspace", True, True)]
    assert fetch(
        "SELECT count(*) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid "
        "WHERE i.inhparent = 'profiles_event'::regclass AND NOT (c.relrowsecurity "
        "AND c.relforcerowsecurity AND EXISTS (SELECT 1 FROM pg_policy p "
        "WHERE p.polrelid = c.oid AND p.polname = 'workspace_isolation'))"
    ) == [(0,)]
    assert fetch(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'profiles_eventmessageid'::regclass AND contype = 'u'"
    ) + fetch(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = 'profiles_eventmessageid'::regclass AND indisunique AND NOT indisprimary"
    ) == [
        (
            "CREATE UNIQUE INDEX event_message_id_once ON public.profiles_eventmessageid "
            "USING btree (workspace_id, message_id)",
        )
    ]


@pytest.fixture
def future_months():
    """Partitions this test adds beyond the migration's, dropped afterwards."""
    existing = set(partitions())
    yield
    with connection.cursor() as cursor:
        for name in sorted(set(partitions()) - existing):
            cursor.execute(f'DROP TABLE "{name}"')


@pytest.mark.django_db(transaction=True)
def test_the_app_role_creates_months_ahead_and_moves_stragglers_out_of_the_default(
    workspace, future_months
):
    existing = set(partitions())
    assert append(workspace, "now") == 1
    with workspace_scope(workspace.id):
        rows = [
            {
                "type": "track",
                "name": "Later",
                "properties": {},
                "occurred_at": (month_start(offset) + timedelta(days=5)).isoformat(),
                "message_id": f"m{offset}",
                "customer_id": None,
                "user_id": "",
                "anonymous_id": "a",
                "context": {},
            }
            for offset in (9, 11)
        ]
        events_append(workspace_id=workspace.id, rows=rows, source="test", now=NOW)
    straggler_ids = [row[0] for row in events_by_workspace(workspace)[1:]]
    assert [row[4] for row in events_by_workspace(workspace)[1:]] == ["profiles_event_default"] * 2

    with app_role_connection() as app:
        created = [row[0] for row in app.execute("SELECT masivo_event_partitions_ensure(9)")]
        again = app.execute("SELECT masivo_event_partitions_ensure(9)").fetchall()
        refused = app.execute("SELECT has_table_privilege('profiles_event', 'TRUNCATE')")

    assert created == [
        partition_of(offset) for offset in range(10) if partition_of(offset) not in existing
    ]
    assert again == []
    assert refused.fetchone() == (False,)
    placed = events_by_workspace(workspace)
    assert [(row[0], row[4]) for row in placed[1:]] == [
        (straggler_ids[0], partition_of(9)),
        (straggler_ids[1], "profiles_event_default"),
    ]
    assert [row[4] for row in placed[:1]] == [partition_of(0)]
    with workspace_scope(workspace.id):
        assert fetch(f"SELECT message_id FROM {partition_of(9)}") == [("m9",)]  # noqa: S608
    assert fetch(f"SELECT message_id FROM {partition_of(9)}") == []  # noqa: S608 (no scope)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("keep_days", [None, 1, 45])
def test_months_back_are_created_for_late_events_unless_retention_would_drop_them(
    workspace, future_months, keep_days
):
    from profiles.partitions import event_partitions_ensure

    with connection.cursor() as cursor:  # the months the migration made for older events
        for offset in (-1, -2, -3):
            cursor.execute(f'DROP TABLE IF EXISTS "{partition_of(offset)}"')
    with workspace_scope(workspace.id):
        late = {
            "type": "track", "name": "Late", "properties": {}, "customer_id": None,
            "occurred_at": (month_start(-2) + timedelta(days=3)).isoformat(),
            "message_id": "late", "user_id": "", "anonymous_id": "a", "context": {},
        }  # fmt: skip
        events_append(workspace_id=workspace.id, rows=[late], source="test", now=NOW)

    created = event_partitions_ensure(months_ahead=0, months_back=3, keep_days=keep_days)

    kept = [
        offset
        for offset in (-3, -2, -1)
        if keep_days is None or month_start(offset + 1) > NOW - timedelta(days=keep_days)
    ]
    assert [name for name in created if name < partition_of(0)] == [
        partition_of(offset) for offset in kept
    ]
    assert event_partitions_ensure(months_ahead=0, months_back=3, keep_days=keep_days) == []
    where = partition_of(-2) if -2 in kept else "profiles_event_default"
    assert [row[4] for row in events_by_workspace(workspace)] == [where]
    with pytest.raises(ValueError, match="months_back must be between 0 and 36"):
        event_partitions_ensure(months_back=37)


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("SELECT masivo_event_partitions_ensure(-1)", "months_ahead must be between 0 and 36"),
        ("SELECT masivo_event_partitions_ensure(37)", "months_ahead must be between 0 and 36"),
        ("SELECT masivo_event_partition_create('1999-12-01')", "cover 2000 to 2099"),
        ("SELECT masivo_event_partitions_expire(0, false)", "keep_days must be at least 1"),
    ],
)
@pytest.mark.django_db
def test_maintenance_refuses_out_of_range_arguments_and_changes_nothing(statement, refusal):
    before = partitions()
    with pytest.raises(DatabaseError, match=refusal), transaction.atomic():
        fetch(statement)
    assert partitions() == before


@pytest.mark.django_db
def test_the_app_role_may_execute_the_maintenance_but_not_run_ddl_itself():
    with app_role_connection() as app:
        may_execute = app.execute(
            "SELECT p.proname, has_function_privilege(p.oid, 'EXECUTE'), p.prosecdef, "
            "pg_get_userbyid(p.proowner), p.proconfig FROM pg_proc p "
            "WHERE p.proname LIKE 'masivo_event_partition%%' ORDER BY p.proname"
        ).fetchall()
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege, match=r"permission denied|must be owner"
        ):
            app.execute(
                f"CREATE TABLE {partition_of(30)} PARTITION OF profiles_event "
                "FOR VALUES FROM ('2090-01-01') TO ('2090-02-01')"
            )
    owner = fetch("SELECT current_user")[0][0]
    fixed = ["search_path=public, pg_temp", "TimeZone=UTC"]
    assert may_execute == [
        ("masivo_event_partition_create", True, True, owner, fixed),
        ("masivo_event_partition_protect", True, True, owner, fixed[:1]),
        ("masivo_event_partitions_ensure", True, True, owner, fixed),
        ("masivo_event_partitions_expire", True, True, owner, fixed),
    ]
    assert settings.MASIVO_EVENT_PARTITIONS_AHEAD == 3
    assert settings.MASIVO_EVENT_PARTITIONS_BACK == 1
