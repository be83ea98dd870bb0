"""The event log before and after monthly partitioning: do the readers still use their indexes,
do windowed conditions prune, and what does the migration cost on a few million events?

1. Creates a scratch database `masivo_bench_partitions` with split roles (`bootstrap_split_roles`:
   an owner that migrates, an application role with DML only), migrates everything, then takes
   `profiles` back to 0007 (the plain events table).
2. Generates customers (bench/audiences' generator) and events spread over 24 months with
   set-based SQL as the superuser; the big workspace's newest 20,000 are left unprocessed.
3. Copies the database (the plain table stays there), runs migration 0008 on the original
   (timed), and times each reader of `profiles_event` (as the application role, row-level
   security on, the app's own SQL or ORM query) on both, in alternating rounds. The audience
   conditions also run as bench/audiences' hand-written SQL (superuser): the raw-SQL baseline.
4. Prints a markdown table (median of --repeat runs), and for each reader the essentials of its
   plan after partitioning (partitions scanned, pruned, indexes used); --explain prints plans.

    .venv/bin/python bench/events_partitions.py --admin-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/events_partitions.py --events 300000 --repeat 3   # a quick run
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATABASE = "masivo_bench_partitions"
PLAIN_COPY = "masivo_bench_partitions_plain"
OWNER, APP = "masivo_bench_part_owner", "masivo_bench_part"
EVENTS_PER_CUSTOMER = 10  # the generator's heavy-tailed activity averages about that


def say(message: str = "") -> None:
    print(message, flush=True)


STAGE = """
CREATE UNLOGGED TABLE bench_event_stage AS
SELECT a.customer_id, a.external_id,
       now() - interval '730 days' * (random() ^ 1.3) AS at,
       random() AS k, random() AS v1, random() AS v2, random() AS v3
  FROM (SELECT id AS customer_id, external_id,
               least(5000, floor(5.4 * (power(1 - random(), -1 / 1.5) - 1)))::int AS n
          FROM profiles_customer WHERE workspace_id = %(workspace)s) a
 CROSS JOIN LATERAL generate_series(1, a.n)
"""

# The app's writer before partitioning (profiles/eventlog.py at af35c68): ON CONFLICT on the
# events table's own unique key, which a partitioned table cannot have.
OLD_APPEND = """
INSERT INTO profiles_event (
    workspace_id, type, name, properties, occurred_at, received_at, message_id, customer_id,
    user_id, anonymous_id, context, source)
SELECT %(workspace)s, m.type, m.name, m.properties, m.occurred_at, %(now)s, m.message_id,
       m.customer_id, m.user_id, m.anonymous_id, m.context, %(source)s
  FROM ROWS FROM (jsonb_to_recordset(%(rows)s::jsonb) AS (
       type text, name text, properties jsonb, occurred_at timestamptz, message_id text,
       customer_id bigint, user_id text, anonymous_id text, context jsonb)) WITH ORDINALITY
       AS m(type, name, properties, occurred_at, message_id, customer_id, user_id,
            anonymous_id, context, position)
 ORDER BY m.position
ON CONFLICT (workspace_id, message_id) DO NOTHING
"""

# The follow-up's claim as profiles/followup.py writes it, and keyed by the whole primary key.
CLAIM_BY_ID = """
UPDATE profiles_event SET processed_at = %(now)s
 WHERE id IN (SELECT id FROM profiles_event
               WHERE workspace_id = %(workspace)s AND processed_at IS NULL
               ORDER BY received_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING customer_id, name
"""
CLAIM_BY_KEY = """
UPDATE profiles_event e SET processed_at = %(now)s
  FROM (SELECT id, occurred_at FROM profiles_event
         WHERE workspace_id = %(workspace)s AND processed_at IS NULL
         ORDER BY received_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) c
 WHERE e.id = c.id AND e.occurred_at = c.occurred_at
RETURNING e.customer_id, e.name
"""
# The same, repeating the partial index's predicate in the outer UPDATE: each partition's side of
# the join is then its few unprocessed rows (event_ws_unprocessed), never the whole partition.
CLAIM_BY_KEY_UNPROCESSED = """
UPDATE profiles_event e SET processed_at = %(now)s
  FROM (SELECT id, occurred_at FROM profiles_event
         WHERE workspace_id = %(workspace)s AND processed_at IS NULL
         ORDER BY received_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) c
 WHERE e.workspace_id = %(workspace)s AND e.processed_at IS NULL
   AND e.id = c.id AND e.occurred_at = c.occurred_at
RETURNING e.customer_id, e.name
"""
STALE_WORKSPACES = (
    "SELECT DISTINCT workspace_id FROM profiles_event "
    "WHERE processed_at IS NULL AND received_at < %(cutoff)s ORDER BY 1"
)
MESSAGE_IDS_IN_EVENTS = (
    "SELECT message_id FROM profiles_event "
    "WHERE workspace_id = %(workspace)s AND message_id = ANY(%(ids)s)"
)
MESSAGE_IDS_IN_DEDUPE = (
    "SELECT message_id FROM profiles_eventmessageid "
    "WHERE workspace_id = %(workspace)s AND message_id = ANY(%(ids)s)"
)

RULES = {
    "r2": {
        "event": {
            "name": "purchase",
            "count": {"op": "gte", "value": 2},
            "within": {"last": 30, "unit": "days"},
        }
    },
    "r3": {
        "event": {
            "name": "purchase",
            "within": {"last": 90, "unit": "days"},
            "aggregate": {"fn": "sum", "property": "value", "op": "gte", "value": 1000},
        }
    },
    "ever": {"event": {"name": "Order Completed", "count": {"op": "gte", "value": 3}}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a superuser URL (creates the roles and the scratch database, runs the baseline)",
    )  # fmt: skip
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per reader and state")
    parser.add_argument("--explain", action="store_true", help="print every plan in full")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    import psycopg

    from masivo.dbsetup import bootstrap_split_roles

    host_url = args.admin_url.rsplit("/", 1)[0]
    started = time.perf_counter()
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    bootstrap_split_roles(
        admin_url=args.admin_url,
        owner=OWNER,
        owner_password="bench",  # noqa: S106 (throwaway local roles)
        app=APP,
        app_password="bench",  # noqa: S106
        database=DATABASE,
    )
    os.environ["DATABASE_URL"] = host_url.replace("postgres@", f"{APP}:bench@", 1) + (
        f"/{DATABASE}"
    )
    os.environ["DATABASE_OWNER_URL"] = host_url.replace("postgres@", f"{OWNER}:bench@", 1) + (
        f"/{DATABASE}"
    )
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    os.environ["DJANGO_SETTINGS_MODULE"] = "masivo.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    try:
        call_command("migrate", verbosity=0)
        call_command("migrate", "profiles", "0007_event_retention_and_dedupe", verbosity=0)
        Bench(args, f"{host_url}/{DATABASE}").run(call_command)
    finally:
        connections.close_all()
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
                admin.execute(f"DROP DATABASE IF EXISTS {PLAIN_COPY} WITH (FORCE)")
            say(f"\n(dropped the scratch databases {DATABASE} and {PLAIN_COPY})")
        say(f"\nTotal {time.perf_counter() - started:.0f} s.")


class Bench:
    def __init__(self, args, admin_db_url: str):
        self.args = args
        self.admin = psycopg_connect(admin_db_url)
        self.admin.execute("SET jit = off")
        self.timings: dict[str, dict[str, float]] = {}
        self.plans: dict[str, str] = {}

    def run(self, call_command) -> None:
        from django.utils import timezone

        self.describe_machine()
        self.generate()
        self.now = timezone.now()
        step = time.perf_counter()
        self.copy_plain_database()
        say(f"Copied the plain database to {PLAIN_COPY} in {time.perf_counter() - step:.0f} s")
        step = time.perf_counter()
        call_command("migrate", "profiles", verbosity=0)
        migration = time.perf_counter() - step
        say(f"Migration 0008 on {self.total:,} events: {migration:.1f} s")
        self.admin.execute("VACUUM ANALYZE profiles_event, profiles_eventmessageid")
        partitions = self.admin.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'profiles_event'::regclass"
        ).fetchone()[0]
        say(f"{partitions} partitions (24 months with events, 3 ahead, the default)")
        self.measure()
        self.report()

    def copy_plain_database(self) -> None:
        """The plain table stays in a copy, so the two states are timed in alternate rounds
        (a busy shared machine then slows both alike)."""
        from django.db import connections

        connections.close_all()
        self.admin.close()
        with psycopg_connect(self.admin_url(self.args.admin_url.rsplit("/", 1)[1])) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {PLAIN_COPY} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {PLAIN_COPY} TEMPLATE {DATABASE} OWNER {OWNER}")
            admin.execute(f"GRANT CONNECT ON DATABASE {PLAIN_COPY} TO {APP}")
        self.use(DATABASE)

    def admin_url(self, database: str) -> str:
        return f"{self.args.admin_url.rsplit('/', 1)[0]}/{database}"

    def use(self, database: str) -> None:
        """Point the superuser connection and Django's (the app role) at `database`."""
        from django.db import connection

        from masivo.tenancy.context import workspace_scope

        if getattr(self, "admin", None) is not None and not self.admin.closed:
            self.admin.close()
        self.admin = psycopg_connect(self.admin_url(database))
        self.admin.execute("SET jit = off")
        connection.close()
        connection.settings_dict["NAME"] = database
        # A new connection has a cold catalog cache: planning the first query over the
        # partitions would also load every partition's and index's description, which a
        # long-lived app connection (DATABASE_CONN_MAX_AGE) has done once.
        warm = (
            "EXPLAIN SELECT e.id FROM profiles_event e JOIN profiles_customer c "
            "ON c.id = e.customer_id WHERE e.workspace_id = %s ORDER BY e.occurred_at DESC LIMIT 1"
        )
        self.admin.execute(warm, [self.big])
        with workspace_scope(self.big), connection.cursor() as cursor:
            cursor.execute(warm, [self.big])

    def describe_machine(self) -> None:
        version = self.admin.execute("SHOW server_version").fetchone()[0]
        say(f"PostgreSQL {version}, {os.cpu_count()} CPUs, {self.args.events:,} events asked")

    # -- data ---------------------------------------------------------------------------------

    def generate(self) -> None:
        from bench.audiences import generate as audiences_generate

        step = time.perf_counter()
        admin = self.admin
        admin.execute("SET work_mem = '512MB'")
        admin.execute("SET maintenance_work_mem = '1GB'")
        admin.execute("SET session_replication_role = replica")
        admin.execute("SELECT setseed(0.42)")
        self.big, self.small = audiences_generate.create_workspaces(admin)
        indexes = admin.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'profiles_event'::regclass AND NOT x.indisprimary"
        ).fetchall()
        for name, _ in indexes:
            admin.execute(f'DROP INDEX "{name}"')
        customers = max(1000, self.args.events // EVENTS_PER_CUSTOMER)
        for workspace, count, prefix in (
            (self.big, customers * 19 // 20, "b"),
            (self.small, customers // 20, "s"),
        ):
            admin.execute(
                audiences_generate.INSERT_CUSTOMERS,
                {"workspace": workspace, "count": count, "prefix": prefix,
                 **audiences_generate.LISTS},
            )  # fmt: skip
            admin.execute("DROP TABLE IF EXISTS bench_event_stage")
            admin.execute(STAGE, {"workspace": workspace})
            admin.execute(
                audiences_generate.INSERT_EVENTS,
                {"workspace": workspace, "prefix": f"{prefix}m-", **audiences_generate.LISTS},
            )
            admin.execute("DROP TABLE bench_event_stage")
        for _, definition in indexes:
            admin.execute(definition)
        # After the indexes: an UPDATE before them would leave HOT chains, and the rebuilt
        # indexes would then wait (indcheckxmin) for every older snapshot on the server to end.
        admin.execute(
            "UPDATE profiles_event SET processed_at = NULL, received_at = now() - interval '1 h' "
            "WHERE id IN (SELECT id FROM profiles_event WHERE workspace_id = %s "
            "ORDER BY id DESC LIMIT 20000)",
            [self.big],
        )
        admin.execute("RESET session_replication_role")
        admin.execute("VACUUM ANALYZE profiles_customer, profiles_event")
        self.total, low, high = admin.execute(
            "SELECT count(*), min(occurred_at), max(occurred_at) FROM profiles_event"
        ).fetchone()
        self.customer_ids = [
            row[0]
            for row in admin.execute(
                "SELECT customer_id FROM profiles_event WHERE workspace_id = %s "
                "AND customer_id IS NOT NULL GROUP BY customer_id ORDER BY count(*) DESC, "
                "customer_id LIMIT 2000",
                [self.big],
            )
        ]
        self.message_ids = [
            row[0]
            for row in admin.execute(
                "SELECT message_id FROM profiles_event WHERE workspace_id = %s "
                "ORDER BY id DESC LIMIT 100",
                [self.big],
            )
        ]
        say(
            f"Generated {self.total:,} events ({low:%Y-%m-%d} to {high:%Y-%m-%d}) and "
            f"{customers:,} customers in {time.perf_counter() - step:.0f} s"
        )

    # -- readers ------------------------------------------------------------------------------

    def readers(self, state: str):
        """(key, title, run) for each reader; `run(explain)` runs it once (EXPLAIN ANALYZE
        text when `explain`), as the application role in the big workspace."""
        from django.db import connection, transaction

        from audiences import selectors as audience_selectors
        from audiences.recalculation import compiler_for_workspace
        from audiences.rules.ast import parse_rules
        from bench.audiences.rules import RULES as HAND_WRITTEN
        from bench.audiences.rules import sql_params
        from masivo.tenancy.context import workspace_scope
        from masivo.tenancy.models import Workspace
        from profiles import eventlog, selectors
        from profiles.metrics import customers_refresh_metrics

        workspace = Workspace.objects.get(id=self.big)
        now = self.now

        def app_sql(sql: str, params, *, rollback: bool = False):
            def run(explain: bool):
                with workspace_scope(self.big), transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SET LOCAL jit = off")
                    prefix = "EXPLAIN (ANALYZE, COSTS OFF) " if explain else ""
                    cursor.execute(prefix + sql, params)
                    rows = cursor.fetchall()
                    if rollback:
                        transaction.set_rollback(True)
                return "\n".join(row[0] for row in rows) if explain else None

            return run

        def app_orm(queryset_of):
            def run(explain: bool):
                with workspace_scope(self.big):
                    queryset = queryset_of()
                    if explain:
                        return queryset.explain(analyze=True, costs=False)
                    list(queryset)
                return None

            return run

        def baseline(sql: str, params):
            def run(explain: bool):
                prefix = "EXPLAIN (ANALYZE, COSTS OFF) " if explain else ""
                rows = self.admin.execute(prefix + sql, params).fetchall()
                return "\n".join(row[0] for row in rows) if explain else None

            return run

        readers = []
        with workspace_scope(self.big):
            compiler = compiler_for_workspace(workspace=workspace, now=now)
            for key, root in RULES.items():
                members, params = compiler.members_sql(parse_rules({"version": 1, "root": root}))
                readers.append(
                    (
                        f"rule {key}",
                        self.rule_title(key),
                        app_sql(f"SELECT count(*) FROM ({members}) m", params),
                    )
                )
        hand = {rule.key: rule for rule in HAND_WRITTEN}
        params = sql_params(workspace=self.big, now=now, refs={})
        for key in ("r2", "r3"):
            readers.append(
                (f"rule {key} SQL", "  the same, hand-written (superuser)",
                 baseline(f"SELECT count(*) FROM ({hand[key].sql}) m", params))
            )  # fmt: skip
        customer = self.customer_ids[0]
        readers += [
            (
                "timeline",
                "customer timeline, newest 50 (API, dashboard)",
                app_orm(
                    lambda: selectors.customer_events(customer=_Customer(customer)).order_by(
                        "-occurred_at", "-id"
                    )[:50]
                ),
            ),
            (
                "events list",
                "workspace events, newest 50 (GET /api/v1/events)",
                app_orm(lambda: selectors.events_list().order_by("-occurred_at", "-id")[:50]),
            ),
            (
                "events by name",
                "events named purchase, newest 50",
                app_orm(
                    lambda: selectors.events_list(name="purchase").order_by("-occurred_at", "-id")[
                        :50
                    ]
                ),
            ),
            (
                "picker sample",
                "property picker: latest 500 purchases (audiences.selectors)",
                app_sql(
                    audience_selectors._RECENT_EVENTS_SQL,
                    {"workspace": self.big, "name": "purchase", "sample": 500},
                ),
            ),
            (
                "event names",
                "event names, skip scan (audiences.selectors)",
                app_sql(audience_selectors._EVENT_NAMES_SQL, {"workspace": self.big, "limit": 300}),
            ),
            (
                "metrics",
                "metrics refresh of 100 busy customers (profiles.metrics, rolled back)",
                self.metrics_run(customers_refresh_metrics, workspace, transaction),
            ),
            (
                "claim by id",
                "follow-up claim of 5,000 by id (profiles/followup.py, rolled back)",
                app_sql(
                    CLAIM_BY_ID, {"now": now, "workspace": self.big, "limit": 5000}, rollback=True
                ),
            ),
            (
                "claim by key",
                "  the same keyed by (id, occurred_at)",
                app_sql(
                    CLAIM_BY_KEY, {"now": now, "workspace": self.big, "limit": 5000}, rollback=True
                ),
            ),
            (
                "claim unprocessed",
                "  the same by (id, occurred_at), outer UPDATE also on processed_at IS NULL",
                app_sql(
                    CLAIM_BY_KEY_UNPROCESSED,
                    {"now": now, "workspace": self.big, "limit": 5000},
                    rollback=True,
                ),
            ),
            (
                "stale sweep",
                "workspaces with overdue follow-ups (every workspace; superuser)",
                baseline(STALE_WORKSPACES, {"cutoff": now - timedelta(minutes=5)}),
            ),
            (
                "dedupe in events",
                "100 message ids looked up in profiles_event (profiles/ingestion.py today)",
                app_sql(MESSAGE_IDS_IN_EVENTS, {"workspace": self.big, "ids": self.message_ids}),
            ),
        ]
        if state == "partitioned":
            readers.append(
                (
                    "dedupe table",
                    "  the same in profiles_eventmessageid",
                    app_sql(
                        MESSAGE_IDS_IN_DEDUPE, {"workspace": self.big, "ids": self.message_ids}
                    ),
                )
            )
        readers.append(
            ("append", "events_append, 100 new events (rolled back)",
             self.append_run(state, eventlog, transaction))
        )  # fmt: skip
        return readers

    @staticmethod
    def rule_title(key: str) -> str:
        return {
            "r2": "audience: purchase ≥ 2 in the last 30 days",
            "r3": "audience: sum of purchase value ≥ 1000 in the last 90 days",
            "ever": "audience: Order Completed ≥ 3, ever",
        }[key]

    def metrics_run(self, refresh, workspace, transaction):
        from masivo.tenancy.context import workspace_scope

        def run(explain: bool):
            if explain:
                return None
            with workspace_scope(self.big), transaction.atomic():
                refresh(workspace=workspace, customer_ids=self.customer_ids[:100], now=self.now)
                transaction.set_rollback(True)
            return None

        return run

    def append_run(self, state: str, eventlog, transaction):
        import json

        from django.db import connection

        from masivo.tenancy.context import workspace_scope

        counter = iter(range(10**9))

        def run(explain: bool):
            if explain:
                return None
            batch = next(counter)
            rows = [
                {
                    "type": "track", "name": "Product Viewed", "properties": {"n": i},
                    "occurred_at": (self.now - timedelta(seconds=i)).isoformat(),
                    "message_id": f"bench-append-{batch}-{i}", "customer_id": None,
                    "user_id": "", "anonymous_id": f"anon-{i}", "context": {},
                }
                for i in range(100)
            ]  # fmt: skip
            with workspace_scope(self.big), transaction.atomic():
                if state == "plain":
                    params = {"workspace": self.big, "now": self.now, "source": "bench",
                              "rows": json.dumps(rows)}  # fmt: skip
                    with connection.cursor() as cursor:
                        cursor.execute(OLD_APPEND, params)
                else:
                    eventlog.events_append(
                        workspace_id=self.big, rows=rows, source="bench", now=self.now
                    )
                transaction.set_rollback(True)
            return None

        return run

    def measure(self) -> None:
        states = {"plain": PLAIN_COPY, "partitioned": DATABASE}
        say(f"\nTiming the readers: {self.args.repeat} rounds, alternating plain and partitioned")
        readers = {}
        samples: dict[tuple[str, str], list[float]] = {}
        for round_ in range(self.args.repeat + 1):  # round 0 warms up
            for state, database in states.items():
                self.use(database)
                readers.setdefault(state, self.readers(state))
                for key, title, run in readers[state]:
                    step = time.perf_counter()
                    run(False)
                    if round_:
                        samples.setdefault((key, state), []).append(
                            (time.perf_counter() - step) * 1000
                        )
                    self.timings.setdefault(key, {"title": title})
        for (key, state), times in samples.items():
            self.timings[key][state] = statistics.median(times)
        for state, database in states.items():
            self.use(database)
            for key, _, run in readers[state]:
                plan = run(True)
                if plan:
                    self.plans[f"{key}/{state}"] = plan
        self.use(DATABASE)

    # -- report -------------------------------------------------------------------------------

    def report(self) -> None:
        say("\n| reader | plain table (ms) | partitioned (ms) | ratio |")
        say("| --- | ---: | ---: | ---: |")
        for _, timing in self.timings.items():
            plain, partitioned = timing.get("plain"), timing.get("partitioned")
            ratio = f"{partitioned / plain:.2f}" if plain and partitioned else "-"
            say(f"| {timing['title']} | {_ms(plain)} | {_ms(partitioned)} | {ratio} |")
        say("\nPlans (EXPLAIN ANALYZE: planning + execution ms, plain -> partitioned; scans")
        say("on the partitioned table, as node x partitions):\n")
        for key in self.timings:
            plain, partitioned = (
                self.plans.get(f"{key}/plain"),
                self.plans.get(f"{key}/partitioned"),
            )
            if partitioned:
                say(
                    f"- {key}: {summary(plain)} -> {summary(partitioned)}; "
                    f"{essentials(partitioned)}"
                )
        if self.args.explain:
            for key, plan in self.plans.items():
                say(f"\n#### {key}\n\n```\n{plan}\n```")


def psycopg_connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


class _Customer:
    """Just the id, which the selector reads."""

    def __init__(self, customer_id: int):
        self.id = customer_id


def summary(plan: str | None) -> str:
    if not plan:
        return "-"
    planning = re.search(r"Planning Time: ([\d.]+) ms", plan)
    execution = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return f"{float(planning.group(1)):.1f} + {float(execution.group(1)):.1f}"


NODE = re.compile(
    r"(Parallel )?(Index Only Scan|Index Scan|Bitmap Index Scan|Bitmap Heap Scan|Seq Scan)"
    r"(?: Backward)?(?: using (\S+))? on (\S+)"
)


def essentials(plan: str) -> str:
    """What scanned what: e.g. 'Index Scan using …_name_occurred_at_idx x 2 (of the month
    partitions); Subplans Removed: 25'."""
    scans: Counter[str] = Counter()
    never = 0
    for line in plan.splitlines():
        match = NODE.search(line)
        if match:
            kind, index, table = match.group(2), match.group(3), match.group(4)
            if "(never executed)" in line:
                never += 1
                continue
            target = "partition" if table.startswith("profiles_event_") else table
            index_kind = re.sub(r"^profiles_event_(y\d{4}m\d{2}|default)_", "", index or "")
            scans[f"{kind}{' ' + index_kind if index_kind else ''} on {target}"] += 1
    removed = re.findall(r"Subplans Removed: (\d+)", plan)
    parts = [f"{name} x{count}" for name, count in scans.most_common()]
    if removed:
        parts.append(f"Subplans Removed: {'+'.join(removed)}")
    if never:
        parts.append(f"{never} scans never executed")
    return "; ".join(parts)


if __name__ == "__main__":
    main()
