"""The event log becomes partitioned by month of `occurred_at`; its message-id key moves to
`profiles_eventmessageid` (0007).

The conversion keeps every event and its id: a partitioned `profiles_event` is built (same
columns, a sequence continuing above the old maximum id), with a partition for each month that
holds events (at most ten years back) and for this month and MASIVO_EVENT_PARTITIONS_AHEAD more,
and a default one for the rest (a month without events gets no partition: a later backfill
into it lands in the default partition, where it is read and expired like any other). Rows
are copied in id order, then the primary key becomes (id, occurred_at) (Django still sees
`id`), the model's indexes are re-created with their names and definitions as partitioned
indexes, the foreign keys as they were (DEFERRABLE INITIALLY DEFERRED), and the workspace
policy on the table and on every partition. The dedupe table is
seeded with the message ids received within the dedupe window (older ones would be pruned at
once). The table is locked for the copy: expect about a minute per few million events.

Backwards is the reverse, except that a message id stored twice (a replay older than the window)
keeps only its first event, since the old table had a unique key on it.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import migrations

from masivo.tenancy.rls import disable_sql, enable_sql
from profiles.partitions import create_functions_sql, drop_functions_sql

OLDEST_MONTHS_BACK = 120


def _rows(cursor, sql, params=None):
    cursor.execute(sql, params)
    return cursor.fetchall()


def _indexes_and_foreign_keys(cursor, table):
    """(name, CREATE INDEX …) of every non-primary index, and (name, definition) of every
    foreign key, as the catalog has them, for re-creating them on the new table."""
    indexes = _rows(
        cursor,
        "SELECT i.relname, pg_get_indexdef(x.indexrelid), "
        "EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = x.indexrelid) "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary ORDER BY i.relname",
        [table],
    )
    foreign_keys = _rows(
        cursor,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        [table],
    )
    return indexes, foreign_keys


def _next_id(cursor, sequence, table):
    """The id after the largest that the sequence gave out or the table holds (read with the
    table's row-level security off)."""
    ((last,),) = _rows(cursor, "SELECT pg_sequence_last_value(%s::regclass)", [sequence])
    ((largest,),) = _rows(cursor, "SELECT max(id) FROM " + table)  # noqa: S608 (a constant)

    return max(last or 0, largest or 0) + 1


def _months(data_months: list[datetime], now: datetime, ahead: int) -> list[str]:
    """The first day of each month that holds events (at most ten years back, not before
    2000, not after the months ahead), and of this month and the `ahead` next ones."""

    def number(moment: datetime) -> int:
        moment = moment.astimezone(UTC)
        return moment.year * 12 + moment.month - 1

    current = number(now)
    low, high = max(current - OLDEST_MONTHS_BACK, 2000 * 12), current + ahead
    months = {number(month) for month in data_months} | set(range(current, high + 1))
    return [f"{m // 12:04d}-{m % 12 + 1:02d}-01" for m in sorted(months) if low <= m <= high]


def _executor(schema_editor):
    """schema_editor.execute, with no parameters meaning none (the functions' bodies hold `%`)."""

    def execute(sql, params=None):
        schema_editor.execute(sql, params)

    return execute


def partition_events(apps, schema_editor):
    execute = _executor(schema_editor)
    with schema_editor.connection.cursor() as cursor:
        execute("LOCK TABLE profiles_event IN ACCESS EXCLUSIVE MODE")
        ((schema, sequence),) = _rows(
            cursor, "SELECT current_schema(), pg_get_serial_sequence('profiles_event', 'id')"
        )
        indexes, foreign_keys = _indexes_and_foreign_keys(cursor, "profiles_event")
        ((identity,),) = _rows(
            cursor,
            "SELECT attidentity <> '' FROM pg_attribute "
            "WHERE attrelid = 'profiles_event'::regclass AND attname = 'id'",
        )
    now = datetime.now(UTC)
    ahead = getattr(settings, "MASIVO_EVENT_PARTITIONS_AHEAD", 3)
    window = timedelta(days=getattr(settings, "MASIVO_EVENT_DEDUPE_WINDOW_DAYS", 7))

    # The old table, renamed, without what would clash by name; the owner reads all its rows.
    execute("ALTER TABLE profiles_event RENAME TO profiles_event_unpartitioned")
    for statement in disable_sql("profiles_event_unpartitioned"):
        execute(statement)
    with schema_editor.connection.cursor() as cursor:
        next_id = _next_id(cursor, sequence, "profiles_event_unpartitioned")
    for name, _, is_constraint in indexes:
        execute(
            f'ALTER TABLE profiles_event_unpartitioned DROP CONSTRAINT "{name}"'
            if is_constraint
            else f'DROP INDEX "{name}"'
        )
    for name, _ in foreign_keys:
        execute(f'ALTER TABLE profiles_event_unpartitioned DROP CONSTRAINT "{name}"')
    execute(
        "ALTER TABLE profiles_event_unpartitioned RENAME CONSTRAINT profiles_event_pkey TO profiles_event_unpartitioned_pkey"
    )
    if identity:
        execute("ALTER TABLE profiles_event_unpartitioned ALTER COLUMN id DROP IDENTITY")
    else:
        execute("ALTER TABLE profiles_event_unpartitioned ALTER COLUMN id DROP DEFAULT")
        execute(f"DROP SEQUENCE {sequence}")

    execute(
        "CREATE TABLE profiles_event (LIKE profiles_event_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE) PARTITION BY RANGE (occurred_at)"
    )
    execute(f"CREATE SEQUENCE profiles_event_id_seq AS bigint START WITH {next_id}")
    execute("ALTER SEQUENCE profiles_event_id_seq OWNED BY profiles_event.id")
    execute(
        "ALTER TABLE profiles_event ALTER COLUMN id SET DEFAULT nextval('profiles_event_id_seq')"
    )
    for statement in create_functions_sql(schema):
        execute(statement)
    execute("CREATE TABLE profiles_event_default PARTITION OF profiles_event DEFAULT")
    with schema_editor.connection.cursor() as cursor:
        data_months = _rows(
            cursor,
            "SELECT DISTINCT date_trunc('month', occurred_at, 'UTC') "
            "FROM profiles_event_unpartitioned",
        )
        for month in _months([month for (month,) in data_months], now, ahead):
            cursor.execute("SELECT masivo_event_partition_create(%s)", [month])

    execute("INSERT INTO profiles_event SELECT * FROM profiles_event_unpartitioned ORDER BY id")
    # Unique in the old table already. Row-level security binds the owner (FORCE): lifted for
    # the seed only, inside this transaction.
    execute("ALTER TABLE profiles_eventmessageid NO FORCE ROW LEVEL SECURITY")
    execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending foreign-key checks block the ALTER
    execute(
        "INSERT INTO profiles_eventmessageid (workspace_id, message_id, seen_at) "
        "SELECT workspace_id, message_id, received_at FROM profiles_event_unpartitioned WHERE received_at >= %s",
        [now - window],
    )
    execute("ALTER TABLE profiles_eventmessageid FORCE ROW LEVEL SECURITY")
    execute("SET CONSTRAINTS ALL DEFERRED")  # Django's foreign keys are INITIALLY DEFERRED
    execute(
        "ALTER TABLE profiles_event ADD CONSTRAINT profiles_event_pkey PRIMARY KEY (id, occurred_at)"
    )
    for _, definition, _ in indexes:
        if " UNIQUE " not in definition:  # the message-id key moved to profiles_eventmessageid
            execute(definition)
    for name, definition in foreign_keys:
        execute(f'ALTER TABLE profiles_event ADD CONSTRAINT "{name}" {definition}')
    execute("DROP TABLE profiles_event_unpartitioned")
    for statement in enable_sql("profiles_event"):
        execute(statement)
    with schema_editor.connection.cursor() as cursor:
        partitions = _rows(
            cursor,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'profiles_event'::regclass ORDER BY c.relname",
        )
        for (partition,) in partitions:
            cursor.execute("SELECT masivo_event_partition_protect(%s)", [partition])
    execute("ANALYZE profiles_event")


def unpartition_events(apps, schema_editor):
    execute = _executor(schema_editor)
    with schema_editor.connection.cursor() as cursor:
        execute("LOCK TABLE profiles_event IN ACCESS EXCLUSIVE MODE")
        indexes, foreign_keys = _indexes_and_foreign_keys(cursor, "profiles_event")
    execute("ALTER TABLE profiles_event RENAME TO profiles_event_partitioned")
    for statement in disable_sql("profiles_event_partitioned"):
        execute(statement)
    with schema_editor.connection.cursor() as cursor:
        next_id = _next_id(cursor, "profiles_event_id_seq", "profiles_event_partitioned")
    for name, _, _ in indexes:
        execute(f'DROP INDEX "{name}"')
    for name, _ in foreign_keys:
        execute(f'ALTER TABLE profiles_event_partitioned DROP CONSTRAINT "{name}"')
    execute(
        "ALTER TABLE profiles_event_partitioned RENAME CONSTRAINT profiles_event_pkey TO profiles_event_partitioned_pkey"
    )
    execute("ALTER TABLE profiles_event_partitioned ALTER COLUMN id DROP DEFAULT")
    execute("DROP SEQUENCE profiles_event_id_seq")
    execute(
        "CREATE TABLE profiles_event (LIKE profiles_event_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE)"
    )
    execute(
        "ALTER TABLE profiles_event ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY "
        f"(START WITH {next_id})"
    )
    execute(
        "INSERT INTO profiles_event SELECT * FROM ("
        "SELECT DISTINCT ON (workspace_id, message_id) * FROM profiles_event_partitioned "
        "ORDER BY workspace_id, message_id, id) AS first_of_each ORDER BY id"
    )
    execute("ALTER TABLE profiles_event ADD CONSTRAINT profiles_event_pkey PRIMARY KEY (id)")
    execute(
        'CREATE UNIQUE INDEX "event_message_id_unique" ON "profiles_event" '
        '("workspace_id", "message_id")'
    )
    for _, definition, _ in indexes:
        execute(definition.replace(" ON ONLY ", " ON "))
    for name, definition in foreign_keys:
        execute(f'ALTER TABLE profiles_event ADD CONSTRAINT "{name}" {definition}')
    execute("DROP TABLE profiles_event_partitioned")
    for statement in drop_functions_sql():
        execute(statement)
    for statement in enable_sql("profiles_event"):
        execute(statement)


class Migration(migrations.Migration):
    dependencies = [("profiles", "0007_event_retention_and_dedupe")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="event", name="event_message_id_unique"),
            ],
            database_operations=[
                migrations.RunPython(partition_events, unpartition_events, elidable=False),
            ],
        ),
    ]
