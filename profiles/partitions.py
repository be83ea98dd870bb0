"""The event log's monthly partitions: created ahead, dropped (or detached) once expired.

`profiles_event` is partitioned by RANGE of `occurred_at`, one partition per calendar month in
UTC (`profiles_event_y2026m12`), plus `profiles_event_default` for events outside every month
created so far (a clock decades off, a backfill of a month never created). The application role
may not run DDL, so the maintenance is three SECURITY DEFINER functions owned by the schema
owner, with a fixed `search_path` and `TimeZone` UTC:

- `masivo_event_partition_create(month)`: one month's partition. Rows of that month already in
  the default partition are moved into it first: `CREATE TABLE … PARTITION OF` would refuse
  while they are there. It builds the table apart, moves the rows, then attaches it.
- `masivo_event_partitions_ensure(months_ahead)`: this month and the next `months_ahead`
  (`event_partitions_ensure` also creates a few months back, through the create function).
- `masivo_event_partitions_expire(keep_days, detach)`: drops (or detaches, for an archive) each
  month that ended more than `keep_days` ago. The caller passes the LONGEST retention of any
  workspace (profiles/retention.py, which applies the shorter ones row by row). The function
  trusts it: the application role may delete any event anyway.

Every partition gets the parent's row-level security policy: reached through `profiles_event`
only the parent's policy applies, but the application role may name a partition directly.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

PARENT = "profiles_event"
DEFAULT_PARTITION = "profiles_event_default"

_PROTECT = """
CREATE OR REPLACE FUNCTION masivo_event_partition_protect(partition text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {schema}, pg_temp
AS $fn$
DECLARE
  using_text text;
  check_text text;
BEGIN
  EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', partition);
  EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', partition);
  SELECT pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)
    INTO using_text, check_text
    FROM pg_policy WHERE polrelid = 'profiles_event'::regclass AND polname = 'workspace_isolation';
  IF using_text IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM pg_policy
       WHERE polrelid = partition::regclass AND polname = 'workspace_isolation') THEN
    EXECUTE format('CREATE POLICY workspace_isolation ON %I USING (%s) WITH CHECK (%s)',
                   partition, using_text, check_text);
  END IF;
END
$fn$
"""

_CREATE = """
CREATE OR REPLACE FUNCTION masivo_event_partition_create(month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {schema}, pg_temp
SET TimeZone = 'UTC'
AS $fn$
DECLARE
  low timestamptz := date_trunc('month', month::timestamptz);
  high timestamptz := date_trunc('month', month::timestamptz) + interval '1 month';
  partition text := 'profiles_event_' || to_char(month, '"y"YYYY"m"MM');
BEGIN
  IF month < date '2000-01-01' OR month >= date '2100-01-01' THEN
    RAISE EXCEPTION 'event partitions cover 2000 to 2099, not %', month;
  END IF;
  IF to_regclass(partition) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  -- Parent first, then the default partition (in the order inserts take them: no deadlock).
  -- Inserts into other months go on; only the default partition waits for the move.
  LOCK TABLE profiles_event IN SHARE UPDATE EXCLUSIVE MODE;
  IF to_regclass(partition) IS NOT NULL THEN  -- created by a concurrent call while we waited
    RETURN NULL;
  END IF;
  EXECUTE format(
    'CREATE TABLE %I (LIKE profiles_event INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
    'INCLUDING STORAGE)', partition);
  -- The bound as a CHECK lets ATTACH skip re-validating the new table.
  EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (occurred_at >= %L AND occurred_at < %L)',
                 partition, partition || '_bound', low, high);
  IF to_regclass('profiles_event_default') IS NOT NULL THEN
    LOCK TABLE profiles_event_default IN ACCESS EXCLUSIVE MODE;
    -- Row-level security is forced on the owner too: lifted on the default partition for the
    -- move only, inside this transaction (no other session sees it lifted; the lock holds).
    ALTER TABLE profiles_event_default NO FORCE ROW LEVEL SECURITY;
    EXECUTE format(
      'WITH moved AS (DELETE FROM profiles_event_default '
      'WHERE occurred_at >= $1 AND occurred_at < $2 RETURNING *) '
      'INSERT INTO %I SELECT * FROM moved', partition) USING low, high;
    ALTER TABLE profiles_event_default FORCE ROW LEVEL SECURITY;
  END IF;
  EXECUTE format('ALTER TABLE profiles_event ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                 partition, low, high);
  EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', partition, partition || '_bound');
  PERFORM masivo_event_partition_protect(partition);
  RETURN partition;
END
$fn$
"""

_ENSURE = """
CREATE OR REPLACE FUNCTION masivo_event_partitions_ensure(months_ahead integer)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {schema}, pg_temp
SET TimeZone = 'UTC'
AS $fn$
DECLARE
  month date;
  created text;
BEGIN
  IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 36 THEN
    RAISE EXCEPTION 'months_ahead must be between 0 and 36, not %', months_ahead;
  END IF;
  FOR month IN
    SELECT generate_series(date_trunc('month', now()),
                           date_trunc('month', now()) + make_interval(months => months_ahead),
                           interval '1 month')::date
  LOOP
    created := masivo_event_partition_create(month);
    IF created IS NOT NULL THEN
      RETURN NEXT created;
    END IF;
  END LOOP;
END
$fn$
"""

_EXPIRE = """
CREATE OR REPLACE FUNCTION masivo_event_partitions_expire(keep_days integer, detach boolean)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {schema}, pg_temp
SET TimeZone = 'UTC'
AS $fn$
DECLARE
  cutoff timestamptz;
  partition text;
  archive text;
  foreign_key text;
BEGIN
  IF keep_days IS NULL OR keep_days < 1 THEN
    RAISE EXCEPTION 'keep_days must be at least 1, not %', keep_days;
  END IF;
  cutoff := now() - make_interval(days => keep_days);
  FOR partition IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'profiles_event'::regclass
       AND c.relname ~ '^profiles_event_y[0-9]{{4}}m[0-9]{{2}}$'
       AND make_timestamptz(substr(c.relname, 17, 4)::int, substr(c.relname, 22, 2)::int, 1,
                            0, 0, 0) + interval '1 month' <= cutoff
     ORDER BY c.relname
  LOOP
    IF detach THEN
      archive := replace(partition, 'profiles_event_', 'profiles_event_archive_');
      EXECUTE format('ALTER TABLE profiles_event DETACH PARTITION %I', partition);
      -- An archived row must not stop a customer (or a workspace) from being deleted.
      FOR foreign_key IN
        SELECT conname FROM pg_constraint WHERE conrelid = partition::regclass AND contype = 'f'
      LOOP
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', partition, foreign_key);
      END LOOP;
      EXECUTE format('ALTER TABLE %I RENAME TO %I', partition, archive);
      RETURN NEXT archive;
    ELSE
      EXECUTE format('DROP TABLE %I', partition);
      RETURN NEXT partition;
    END IF;
  END LOOP;
END
$fn$
"""

FUNCTIONS = (_PROTECT, _CREATE, _ENSURE, _EXPIRE)
FUNCTION_SIGNATURES = (
    "masivo_event_partitions_expire(integer, boolean)",
    "masivo_event_partitions_ensure(integer)",
    "masivo_event_partition_create(date)",
    "masivo_event_partition_protect(text)",
)


def create_functions_sql(schema: str) -> list[str]:
    """The maintenance functions for `schema` (the migration's current schema), each then
    closed to PUBLIC: the application role gets EXECUTE from the owner's default privileges
    (masivo/dbsetup.py), like every routine."""
    quoted = '"' + schema.replace('"', '""') + '"'
    statements = [function.format(schema=quoted) for function in FUNCTIONS]
    statements += [f"REVOKE EXECUTE ON FUNCTION {sig} FROM PUBLIC" for sig in FUNCTION_SIGNATURES]
    return statements


def drop_functions_sql() -> list[str]:
    return [f"DROP FUNCTION IF EXISTS {signature}" for signature in FUNCTION_SIGNATURES]


_CREATE_BACK_SQL = """
SELECT created FROM (
    SELECT masivo_event_partition_create(month::date) AS created
      FROM generate_series(
               date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => %(back)s),
               date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month',
               interval '1 month') AS month
     WHERE %(keep_days)s::integer IS NULL
        OR month + interval '1 month' > (now() AT TIME ZONE 'UTC')
                                        - make_interval(days => %(keep_days)s::integer)
) made WHERE created IS NOT NULL
"""


def event_partitions_ensure(
    *, months_ahead: int | None = None, months_back: int | None = None, keep_days: int | None = None
) -> list[str]:
    """Create the missing partitions for this month, the next `months_ahead` (default: the
    setting MASIVO_EVENT_PARTITIONS_AHEAD) and the previous `months_back` (default:
    MASIVO_EVENT_PARTITIONS_BACK), so late and back-dated events (an app offline for a week,
    a backfill) land in their month rather than the default partition. A month back that
    retention (`keep_days`, the longest of any workspace; None keeps all) would drop at once is
    not created. Returns the names created."""
    ahead = settings.MASIVO_EVENT_PARTITIONS_AHEAD if months_ahead is None else months_ahead
    back = settings.MASIVO_EVENT_PARTITIONS_BACK if months_back is None else months_back
    if not 0 <= back <= 36:
        raise ValueError(f"months_back must be between 0 and 36, not {back}")
    with connection.cursor() as cursor:
        cursor.execute(_CREATE_BACK_SQL, {"back": back, "keep_days": keep_days})
        created = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT masivo_event_partitions_ensure(%s)", [ahead])
        return created + [row[0] for row in cursor.fetchall()]


def event_partitions_expire(*, keep_days: int, detach: bool | None = None) -> list[str]:
    """Drop (or detach, by default as MASIVO_EVENT_PARTITIONS_DETACH says) the months that ended
    more than `keep_days` ago; returns their names (an archive's new name when detached)."""
    detach = settings.MASIVO_EVENT_PARTITIONS_DETACH if detach is None else detach
    with connection.cursor() as cursor:
        cursor.execute("SELECT masivo_event_partitions_expire(%s, %s)", [keep_days, detach])
        return [row[0] for row in cursor.fetchall()]


def event_partitions() -> list[tuple[str, str]]:
    """(partition, its bound as Postgres writes it) of the event log, in name order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [PARENT],
        )
        return cursor.fetchall()
