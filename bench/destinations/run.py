"""Audience syncs at a million members (issue 11 section 7), printing Markdown.

1. Creates a scratch database and the application role (`bootstrap_app_role`), migrates as
   that role, and generates with set-based SQL as the superuser (generate.py): one workspace
   of `--members` + 1% customers, every one with an email, a phone and advertising consent
   granted, and a list audience of the first `--members`. The Meta destination and its syncs
   are rows made through the ORM; remote audiences are created through the real MetaConnector
   against tests/fakes' Meta Graph fake, which runs in a process of its own (fake.py).
2. Diff: an incremental sync's record is brought to "synced" (the engine's plan run once and
   committed, then `sent = wanted`), then 1% of the members leave, as many join and 0.1%
   change email (generate.churn). The engine's plan (`destinations.syncing._plan`: the
   `plan_sql` statement, the forget and work counts, the run's progress; app role, RLS) against
   the hand-written diff (baseline.py, superuser), each in a transaction rolled back, the
   record's table vacuumed before each so that each starts from the same state; `--repeat`
   pairs, medians, the adds and removes of both compared. EXPLAIN (ANALYZE, BUFFERS, WAL) of
   both where a goal is missed (or `--explain`).
3. Hashing: `member_identifiers` (Python, email and phone for Meta) over `--python-hash`
   customers in memory, and `identifiers_sql` over the workspace's customers in one statement
   whose result is counted server-side, against the bare `sha256` of the same two columns.
4. Full sync: for each of `--full-sizes`, a list audience of that many members and a `full`
   sync (Meta replaces), run once by `sync_run_execute` through the real MetaConnector against
   the fake, batches of 10,000: records per second, where the engine's time goes (plan, take,
   send, confirm), the CPU of this process, the fake, Postgres and everything else, and the
   peak RSS of this process (psutil, every 10 ms). The fake's audience must hold exactly the
   members, no batch applied twice.

    .venv/bin/python bench/destinations/run.py                               # full, ~15 min
    .venv/bin/python bench/destinations/run.py --members 100000 --full-sizes 10000,100000
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.destinations import baseline, generate, whatif  # noqa: E402

DATABASE = "masivo_bench_destinations"
ROLE = "masivo_bench_destinations"
GOAL_RATIO = 1.5
GOAL_SECONDS = 2.0
IDENTIFIERS = ["email", "phone"]
MIB = 1024 * 1024


def say(message: str = "") -> None:
    print(message, flush=True)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a superuser URL (creates the role and scratch database, runs the baseline)",
    )  # fmt: skip
    parser.add_argument("--members", type=int, default=1_000_000, help="audience of the diff")
    parser.add_argument("--repeat", type=int, default=3, help="timed pairs (diff, hashing)")
    parser.add_argument("--full-sizes", default="100000,1000000",
                        help="members of each full sync, comma-separated")  # fmt: skip
    parser.add_argument("--python-hash", type=int, default=200_000,
                        help="customers hashed by member_identifiers")  # fmt: skip
    parser.add_argument("--phases", default="diff,full,hash")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the diff regardless")
    parser.add_argument("--no-what-if", dest="what_if", action="store_false",
                        help="skip the what-ifs of a missed diff goal")  # fmt: skip
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    args.full_sizes = [int(size) for size in args.full_sizes.split(",") if size.strip()]

    import psycopg

    from masivo.dbsetup import bootstrap_app_role

    host_url = args.admin_url.rsplit("/", 1)[0]
    started = time.perf_counter()
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    bootstrap_app_role(
        admin_url=args.admin_url, role=ROLE, password="bench",  # noqa: S106 (throwaway role)
        database=DATABASE,
    )  # fmt: skip
    app_url = host_url.replace("postgres@", f"{ROLE}:bench@", 1) + f"/{DATABASE}"
    os.environ["DATABASE_URL"] = app_url
    os.environ.pop("DATABASE_OWNER_URL", None)
    os.environ.pop("MASIVO_SYNC_BATCH_SIZE", None)  # the connector's own batch size
    os.environ["REDIS_URL"] = args.redis_url
    os.environ["MASIVO_REDIS_PREFIX"] = f"masivo-bench-destinations-{os.getpid()}:"
    os.environ["DJANGO_SETTINGS_MODULE"] = "masivo.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    fake = subprocess.Popen(
        [sys.executable, "-m", "bench.destinations.fake"], cwd=ROOT, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        call_command("migrate", verbosity=0)
        Bench(args, f"{host_url}/{DATABASE}", fake).run()
    finally:
        connections.close_all()
        fake.stdin.close()
        fake.wait(timeout=30)
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            say(f"\n(dropped the scratch database {DATABASE})")
        say(f"\nTotal {time.perf_counter() - started:.0f} s.")


class Rollback(Exception):
    """Raised inside a timed transaction once it has done its work: nothing stays."""


class Bench:
    def __init__(self, args, admin_db_url: str, fake: subprocess.Popen):
        import psycopg
        from django.conf import settings

        self.args = args
        self.admin = psycopg.connect(admin_db_url, autocommit=True)
        self.fake = fake
        self.fake_info = json.loads(fake.stdout.readline())
        settings.MASIVO_META_GRAPH_URL = self.fake_info["url"]
        self.met: list[str] = []

    def scope(self):
        from masivo.tenancy.context import workspace_scope

        return workspace_scope(self.ws_id)

    def fake_stats(self, audience: str) -> dict:
        self.fake.stdin.write(f"stats {audience}\n")
        self.fake.stdin.flush()
        return json.loads(self.fake.stdout.readline())

    def run(self) -> None:
        self.describe_machine()
        self.prepare()
        phases = set(self.args.phases.split(","))
        if "diff" in phases:
            self.diff()
        if "full" in phases:  # before hashing, whose objects would raise the RSS baseline
            self.full_syncs()
        if "hash" in phases:
            self.hashing()
        say(f"\nLoad average at the end: {load()}.")
        say("\n### Goals\n")
        say("| goal | target | measured | met |")
        say("| --- | --- | --- | --- |")
        for row in self.met:
            say(row)

    # -- setup --------------------------------------------------------------------------------

    def describe_machine(self) -> None:
        row = self.admin.execute(
            "SELECT current_setting('server_version'), current_setting('shared_buffers'), "
            "current_setting('work_mem'), current_setting('max_parallel_workers_per_gather'), "
            "current_setting('jit'), current_setting('synchronous_commit')"
        ).fetchone()
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        say("## Destinations benchmark\n")
        say(
            f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC at {commit}; PostgreSQL "
            f"{row[0]} (shared_buffers {row[1]}, work_mem {row[2]}, "
            f"max_parallel_workers_per_gather {row[3]}, jit {row[4]}, synchronous_commit "
            f"{row[5]}), {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average "
            f"before: {load()}.\n"
        )

    def prepare(self) -> None:
        from audiences.models import Audience
        from destinations.models import AudienceSync, Destination
        from masivo.tenancy.models import Workspace

        step = time.perf_counter()
        self.ws_id = generate.create_workspace(self.admin)
        self.customers = generate.customers(
            self.admin, workspace=self.ws_id, count=self.args.members + self.args.members // 100
        )
        self.workspace = Workspace.objects.get(id=self.ws_id)
        with self.scope():
            self.destination = Destination.objects.create(
                workspace=self.workspace, kind="meta", name="Meta (bench)", key="meta",
                config={"ad_account_id": f"act_{self.fake_info['account']}"},
                credentials={"access_token": self.fake_info["token"],
                             "app_secret": self.fake_info["app_secret"]},
            )  # fmt: skip
            self.audience = Audience.objects.create(
                workspace=self.workspace, name="Diff", kind="list", rules=None
            )
            self.members = generate.membership(
                self.admin, workspace=self.ws_id, audience=self.audience.id,
                count=self.args.members,
            )  # fmt: skip
            self.sync = AudienceSync.objects.create(
                workspace=self.workspace, audience=self.audience, destination=self.destination,
                mode=AudienceSync.Mode.INCREMENTAL, identifiers=IDENTIFIERS,
                remote_audience_id=self.connector().audience_create("Bench incremental"),
            )  # fmt: skip
        say(
            f"Generated in {time.perf_counter() - step:.0f} s (set-based SQL as the superuser): "
            f"{self.customers:,} customers (email, phone, advertising consent granted), a list "
            f"audience of {self.members:,}, a Meta destination (identifiers "
            f"{', '.join(IDENTIFIERS)}) against the Meta fake in its own process.\n"
        )

    def connector(self):
        from destinations.connectors import connector_for

        return connector_for(self.destination)

    # -- diff ---------------------------------------------------------------------------------

    def new_run(self, sync, mode: str, status: str = "queued"):
        from destinations.models import SyncRun

        with self.scope():
            return SyncRun.objects.create(
                workspace_id=self.ws_id, sync=sync, mode=mode, reason="bench", status=status
            )

    def engine_plan(self, run, *, commit: bool = False) -> tuple[float, int, int, dict]:
        """`_plan` as a run calls it (its transaction a savepoint of ours), then rolled back;
        the time excludes the rollback (a run would commit instead)."""
        from django.db import transaction

        from destinations import syncing
        from destinations.connectors.meta import MetaConnector
        from destinations.models import AudienceSync

        with self.scope():
            sync = AudienceSync.objects.select_related("destination").get(id=run.sync_id)
            try:
                with transaction.atomic():
                    started = time.perf_counter()
                    syncing._plan(run, sync, MetaConnector, replaces=False)
                    seconds = time.perf_counter() - started
                    if not commit:
                        raise Rollback
            except Rollback:
                pass
        return seconds, run.to_add, run.to_remove, run.skipped

    def baseline_diff(self) -> tuple[float, int, int]:
        import psycopg

        params = {"workspace": self.ws_id, "audience": self.audience.id, "sync": self.sync.id,
                  "vendor": self.destination.key}  # fmt: skip
        with self.admin.transaction():
            started = time.perf_counter()
            rows = self.admin.execute(baseline.DIFF_SQL, params).fetchall()
            seconds = time.perf_counter() - started
            raise psycopg.Rollback
        adds = sum(1 for _, add, _ in rows if add is not None)
        removes = sum(1 for _, _, remove in rows if remove is not None)
        return seconds, adds, removes

    def vacuum_record(self) -> None:
        self.admin.execute("VACUUM ANALYZE destinations_syncrecord")

    def diff(self) -> None:
        say("### Incremental diff after 1% churn\n")
        run = self.new_run(self.sync, "incremental", status="running")
        seconds, to_add, _, _ = self.engine_plan(run, commit=True)
        synced = self.admin.execute(
            "UPDATE destinations_syncrecord SET sent = wanted WHERE sync_id = %s", [self.sync.id]
        ).rowcount
        self.vacuum_record()
        self.churn_started = self.admin.execute("SELECT now()").fetchone()[0]
        churn = generate.churn(
            self.admin, workspace=self.ws_id, audience=self.audience.id, members=self.members
        )
        say(
            f"First plan (an empty record: {to_add:,} rows inserted, committed) "
            f"{seconds:.2f} s; then `sent = wanted` on {synced:,} rows (synced). Churn: "
            f"{churn['left']:,} members left, {churn['joined']:,} joined, "
            f"{churn['changed_email']:,} changed email.\n"
        )
        self.vacuum_record()
        warm_engine, warm_sql = self.engine_plan(run)[0], self.baseline_diff()[0]
        engine_times, sql_times = [], []
        for _ in range(self.args.repeat):
            self.vacuum_record()
            seconds, to_add, to_remove, skipped = self.engine_plan(run)
            engine_times.append(seconds)
            self.vacuum_record()
            sql_seconds, adds, removes = self.baseline_diff()
            sql_times.append(sql_seconds)
            if (to_add, to_remove) != (adds, removes):
                raise SystemExit(
                    f"the engine planned {to_add:,} adds and {to_remove:,} removes, the "
                    f"hand-written diff {adds:,} and {removes:,}"
                )
        breakdown = self.plan_breakdown(run)
        engine, sql = statistics.median(engine_times), statistics.median(sql_times)
        ratio = engine / sql
        say(
            "Engine: `destinations.syncing._plan` (app role, `workspace_scope`, RLS; its "
            f"statements on a {synced:,}-row record), in a transaction rolled back. Hand-written: "
            "baseline.py's FULL OUTER JOIN (superuser), the rows fetched, rolled back. The "
            "record's table is vacuumed before each; one untimed warm-up of each first "
            f"({warm_engine:.2f} s and {warm_sql:.2f} s).\n"
        )
        say("| members | adds | removes | skipped | engine plan (median) | hand-written diff "
            "(median) | ratio | all runs, engine / hand-written |")  # fmt: skip
        say("| --- | --- | --- | --- | --- | --- | --- | --- |")
        mark = f"**{ratio:.2f}x**" if ratio > GOAL_RATIO else f"{ratio:.2f}x"
        say(
            f"| {self.members:,} | {to_add:,} | {to_remove:,} | {skipped or 'none'} "
            f"| {engine:.2f} s | {sql:.2f} s | {mark} | "
            f"{', '.join(f'{t:.2f}' for t in engine_times)} / "
            f"{', '.join(f'{t:.2f}' for t in sql_times)} s |"
        )
        say("\nThe engine's plan, statement by statement (one more run, rolled back):\n")
        say("| statement | seconds |")
        say("| --- | --- |")
        for label, seconds in breakdown:
            say(f"| {label} | {seconds:.2f} |")
        self.met.append(
            f"| incremental diff vs hand-written SQL | ≤ {GOAL_RATIO}x | {ratio:.2f}x "
            f"({self.members:,} members, 1% churn) | {'yes' if ratio <= GOAL_RATIO else '**no**'} |"
        )
        self.met.append(
            f"| incremental diff, absolute | ≤ {GOAL_SECONDS:.0f} s | {engine:.2f} s "
            f"| {'yes' if engine <= GOAL_SECONDS else '**no**'} |"
        )
        missed = ratio > GOAL_RATIO or engine > GOAL_SECONDS
        if missed or self.args.explain:
            self.explain_diff(run)
        if missed and self.args.what_if:
            self.what_ifs(run, (to_add, to_remove), sql)

    def what_ifs(self, run, expected: tuple[int, int], sql_seconds: float) -> None:
        """The rewritten statement and the scoped plan (whatif.py), same state, same checks."""
        from django.db import connection, transaction
        from django.utils import timezone

        from destinations import syncing
        from destinations.connectors.meta import MetaConnector
        from destinations.models import AudienceSync
        from masivo.sql import server_bound_cursor
        from profiles.models import ProfileSettings

        rewritten, scoped, lookups = [], [], []
        with self.scope():
            sync = AudienceSync.objects.select_related("destination").get(id=run.sync_id)
        for _ in range(self.args.repeat):
            self.vacuum_record()
            with self.scope():
                sql, params = syncing.plan_sql(sync, MetaConnector,
                                               ProfileSettings(workspace_id=self.ws_id),
                                               customer_ids=None, now=timezone.now())  # fmt: skip
                sql = whatif.rewritten_plan_sql(sql)
                try:
                    with transaction.atomic():
                        started = time.perf_counter()
                        with server_bound_cursor() as cursor:
                            cursor.execute("SET LOCAL jit = off")
                            cursor.execute(sql, params)
                            cursor.fetchall()
                        with connection.cursor() as cursor:
                            cursor.execute(syncing._FORGET_SQL, params)
                            cursor.execute(syncing._WORK_SQL, params)
                            counts = cursor.fetchone()
                        rewritten.append(time.perf_counter() - started)
                        raise Rollback
                except Rollback:
                    pass
            if tuple(reversed(counts)) != expected:
                raise SystemExit(f"the rewritten plan: {counts} (remove, add), not {expected}")
            self.vacuum_record()
            started = time.perf_counter()
            candidates = [row[0] for row in self.admin.execute(whatif.CANDIDATES_SQL, {
                "workspace": self.ws_id, "audience": self.audience.id, "sync": self.sync.id,
                "since": self.churn_started,
            }).fetchall()]  # fmt: skip
            lookups.append(time.perf_counter() - started)
            run.customer_ids = candidates
            try:
                seconds, to_add, to_remove, _ = self.engine_plan(run)
            finally:
                run.customer_ids = None
            scoped.append(seconds)
            if (to_add, to_remove) != expected:
                raise SystemExit(f"the scoped plan: {to_add} adds, {to_remove} removes")
        say("\nWhat-ifs (whatif.py; same state, same adds and removes checked, rolled back; "
            "not applied to `destinations/`):\n")  # fmt: skip
        say("| variant | median | all runs | vs hand-written |")
        say("| --- | --- | --- | --- |")
        rows = [
            ("rewritten `plan_sql`: `members` MATERIALIZED, writes only the FULL JOIN's "
             "differences, `jit = off` (plus forget and work counts)", rewritten),
            (f"the engine's scoped plan (`customer_ids`, as streaming runs) of the "
             f"{len(candidates):,} candidates", scoped),
            ("finding the candidates (`CANDIDATES_SQL`: memberships since the last run, records "
             "no longer members, customers updated since)", lookups),
            ("candidates + scoped plan", [a + b for a, b in zip(lookups, scoped, strict=True)]),
        ]  # fmt: skip
        for label, times in rows:
            median = statistics.median(times)
            say(f"| {label} | {median:.2f} s | {', '.join(f'{t:.2f}' for t in times)} "
                f"| {median / sql_seconds:.2f}x |")  # fmt: skip

    def plan_breakdown(self, run) -> list[tuple[str, float]]:
        """The statements `_plan` runs, timed one by one (same SQL, same connection)."""
        from django.db import connection, transaction
        from django.utils import timezone

        from destinations import syncing
        from destinations.connectors.meta import MetaConnector
        from destinations.models import AudienceSync
        from masivo.sql import server_bound_cursor
        from profiles.models import ProfileSettings

        self.vacuum_record()
        timings = []
        with self.scope():
            sync = AudienceSync.objects.select_related("destination").get(id=run.sync_id)
            settings = ProfileSettings(workspace_id=self.ws_id)
            sql, params = syncing.plan_sql(sync, MetaConnector, settings, customer_ids=None,
                                           now=timezone.now())  # fmt: skip
            try:
                with transaction.atomic():
                    started = time.perf_counter()
                    with server_bound_cursor() as cursor:
                        cursor.execute(sql, params)
                        cursor.fetchall()
                    timings.append(
                        (
                            "`plan_sql` (members, INSERT … ON CONFLICT, UPDATE "
                            "unwanted, skip counts)",
                            time.perf_counter() - started,
                        )
                    )
                    for label, statement in (
                        ("forget (`_FORGET_SQL`)", syncing._FORGET_SQL),
                        ("work counts (`_WORK_SQL`)", syncing._WORK_SQL),
                    ):
                        started = time.perf_counter()
                        with connection.cursor() as cursor:
                            cursor.execute(statement, params)
                        timings.append((label, time.perf_counter() - started))
                    raise Rollback
            except Rollback:
                pass
        return timings

    def explain_diff(self, run) -> None:
        import psycopg
        from django.db import transaction
        from django.utils import timezone

        from destinations import syncing
        from destinations.connectors.meta import MetaConnector
        from destinations.models import AudienceSync
        from masivo.sql import server_bound_cursor
        from profiles.models import ProfileSettings

        explain = "EXPLAIN (ANALYZE, BUFFERS, WAL) "
        self.vacuum_record()
        with self.scope():
            sync = AudienceSync.objects.select_related("destination").get(id=run.sync_id)
            sql, params = syncing.plan_sql(sync, MetaConnector,
                                           ProfileSettings(workspace_id=self.ws_id),
                                           customer_ids=None, now=timezone.now())  # fmt: skip
            try:
                with transaction.atomic():
                    with server_bound_cursor() as cursor:
                        cursor.execute(explain + sql, params)
                        engine_plan = "\n".join(row[0] for row in cursor.fetchall())
                    raise Rollback
            except Rollback:
                pass
        self.vacuum_record()
        params = {"workspace": self.ws_id, "audience": self.audience.id, "sync": self.sync.id,
                  "vendor": self.destination.key}  # fmt: skip
        with self.admin.transaction():
            sql_plan = "\n".join(
                row[0] for row in self.admin.execute(explain + baseline.DIFF_SQL, params)
            )
            raise psycopg.Rollback
        say("\nWhere the time goes (EXPLAIN ANALYZE runs slower than the timed runs):\n")
        say("| side | execution | of which JIT | planning | buffers hit / read / dirtied / "
            "written | WAL records / bytes |")  # fmt: skip
        say("| --- | --- | --- | --- | --- | --- |")
        for side, plan in (("engine `plan_sql`", engine_plan), ("hand-written", sql_plan)):
            f = plan_facts(plan)
            say(f"| {side} | {f['execution']:.0f} ms | {f['jit']:.0f} ms ({f['functions']} "
                f"functions) | {f['planning']:.1f} ms | {f['hit']:,} / {f['read']:,} / "
                f"{f['dirtied']:,} / {f['written']:,} | {f['wal_records']:,} / "
                f"{f['wal_bytes'] / MIB:.1f} MiB |")  # fmt: skip
        say(f"\nEngine (`plan_sql`, app role, RLS):\n\n```\n{engine_plan}\n```\n")
        say(f"Hand-written (superuser):\n\n```\n{sql_plan}\n```")

    # -- hashing ------------------------------------------------------------------------------

    def hashing(self) -> None:
        from destinations.identifiers import identifiers_sql, member_identifiers
        from profiles.models import Customer

        say("\n### Hashing throughput\n")
        count = self.args.python_hash
        customers = [
            Customer(email=f"user{n}.d@example.com", phone=f"+52{5500000000 + n}")
            for n in range(1, count + 1)
        ]
        python_times = []
        for _ in range(self.args.repeat):
            started = time.perf_counter()
            produced = sum(len(member_identifiers(c, "meta", IDENTIFIERS)) for c in customers)
            python_times.append(time.perf_counter() - started)
        del customers
        python = statistics.median(python_times)
        expression = identifiers_sql("meta", IDENTIFIERS, "c")
        variants = [
            ("`identifiers_sql('meta', [email, phone])`", expression, "ids <> '{}'::jsonb", 2),
            ("bare `encode(sha256(convert_to(…)))` of email and of ltrim(phone, '+')",
             "ARRAY[encode(sha256(convert_to(c.email, 'UTF8')), 'hex'), "
             "encode(sha256(convert_to(ltrim(c.phone, '+'), 'UTF8')), 'hex')]",
             "ids[2] IS NOT NULL", 2),
            ("the scan alone (no hashing)", "ARRAY[c.email, c.phone]", "ids[2] IS NOT NULL", 0),
        ]  # fmt: skip
        results = []
        for label, select, test, per_row in variants:
            sql = (f"SELECT count(*) FILTER (WHERE {test}) FROM (SELECT {select} AS ids "
                   "FROM profiles_customer c WHERE c.workspace_id = %s OFFSET 0) s")  # fmt: skip
            times = []
            for _ in range(self.args.repeat):
                started = time.perf_counter()
                rows = self.admin.execute(sql, [self.ws_id]).fetchone()[0]
                times.append(time.perf_counter() - started)
            results.append((label, rows, per_row, statistics.median(times)))
        say(f"Python: `member_identifiers(customer, 'meta', [email, phone])` over {count:,} "
            "unsaved `Customer` objects (normalize, SHA-256, both present), median of "
            f"{self.args.repeat}. SQL: one statement over the workspace's customers as the "
            "superuser, the expression evaluated per row and counted server-side, median of "
            f"{self.args.repeat}.\n")  # fmt: skip
        say("| form | customers | identifiers | seconds | identifiers/s | customers/s |")
        say("| --- | --- | --- | --- | --- | --- |")
        say(f"| Python `member_identifiers` | {count:,} | {produced:,} | {python:.2f} "
            f"| {produced / python:,.0f} | {count / python:,.0f} |")  # fmt: skip
        for label, rows, per_row, seconds in results:
            ids = rows * per_row
            rate = f"{ids / seconds:,.0f}" if ids else "-"
            say(f"| SQL {label} | {rows:,} | {ids:,} | {seconds:.2f} | {rate} "
                f"| {rows / seconds:,.0f} |")  # fmt: skip
        scan = results[-1][3]
        net = results[0][3] - scan
        say(f"\nWithout the scan, `identifiers_sql` is {results[0][1] * 2 / max(net, 1e-9):,.0f} "
            f"identifiers/s; the bare hashes "
            f"{results[1][1] * 2 / max(results[1][3] - scan, 1e-9):,.0f}.")  # fmt: skip

    # -- full syncs ---------------------------------------------------------------------------

    def full_syncs(self) -> None:
        from audiences.models import Audience
        from destinations import syncing
        from destinations.models import AudienceSync, SyncRun

        say("\n### Full sync to the Meta fake\n")
        timer = PhaseTimer(syncing, ["_plan", "_take", "_send", "_confirm", "_finish"])
        rows = []
        try:
            for size in self.args.full_sizes:
                with self.scope():
                    audience = Audience.objects.create(
                        workspace=self.workspace, name=f"Full {size}", kind="list", rules=None
                    )
                    generate.membership(self.admin, workspace=self.ws_id, audience=audience.id,
                                        count=size)  # fmt: skip
                    remote = self.connector().audience_create(f"Bench full {size}")
                    sync = AudienceSync.objects.create(
                        workspace=self.workspace, audience=audience,
                        destination=self.destination, mode=AudienceSync.Mode.FULL,
                        identifiers=IDENTIFIERS, remote_audience_id=remote,
                    )  # fmt: skip
                    run = self.new_run(sync, "full")
                self.vacuum_record()
                timer.reset()
                monitor = Monitor(self.fake.pid, self.admin).start()
                started = time.perf_counter()
                with self.scope():
                    run = syncing.sync_run_execute(run_id=run.id)
                wall = time.perf_counter() - started
                usage = monitor.stop()
                stats = self.fake_stats(remote)
                with self.scope():
                    run = SyncRun.objects.get(id=run.id)
                if run.status != "succeeded" or stats["rows"] != size or run.added != size:
                    raise SystemExit(f"full sync of {size:,}: {run.status} {run.error!r}, "
                                     f"added {run.added:,}, the fake holds {stats}")  # fmt: skip
                rows.append((size, run, wall, usage, stats, dict(timer.seconds),
                             dict(timer.calls)))  # fmt: skip
                say(f"  {size:,} members: {wall:.1f} s, load {load()}")
        finally:
            timer.restore()
        say(
            "\n`sync_run_execute` of a `full` sync (Meta replaces: `/usersreplace`, one session, "
            "batches of 10,000 with email and phone hashed), a fresh record, the real "
            "MetaConnector (facebook-business) against the fake in its own process. Wall "
            "includes the plan. CPU in cores (CPU seconds / wall seconds) from psutil: this "
            "process (the engine and the SDK), the fake, this run's Postgres backend, "
            "everything else on the machine. Peak RSS of this process sampled every 10 ms.\n"
        )
        say("| members | batches | wall | records/s | plan / take / send / confirm s "
            "| cores: bench / fake / postgres / other | bench RSS before → peak | fake RSS "
            "| fake rows, batches applied twice |")  # fmt: skip
        say("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for size, _, wall, usage, stats, seconds, calls in rows:
            phases = " / ".join(f"{seconds.get(name, 0):.1f}"
                                for name in ("_plan", "_take", "_send", "_confirm"))  # fmt: skip
            say(
                f"| {size:,} | {calls.get('_send', 0)} | {wall:.1f} s | {size / wall:,.0f} "
                f"| {phases} | {usage['bench']:.2f} / {usage['fake']:.2f} / "
                f"{usage['postgres']:.2f} / {usage['other']:.2f} | {usage['before'] / MIB:.0f} "
                f"→ {usage['peak'] / MIB:.0f} MiB | {usage['fake_rss'] / MIB:.0f} MiB "
                f"| {stats['rows']:,}, {stats['duplicates']} |"
            )
        small, large = rows[0], rows[-1]
        growth_small = (small[3]["peak"] - small[3]["before"]) / MIB
        growth_large = (large[3]["peak"] - large[3]["before"]) / MIB
        self.met.append(
            f"| full sync to the Meta fake | records/s | {large[0] / large[2]:,.0f} records/s "
            f"at {large[0]:,}, {small[0] / small[2]:,.0f} at {small[0]:,} | (measured) |"
        )
        self.met.append(
            f"| engine memory flat in members | flat | peak RSS {small[3]['peak'] / MIB:.0f} "
            f"MiB at {small[0]:,} (+{growth_small:.0f}), {large[3]['peak'] / MIB:.0f} MiB at "
            f"{large[0]:,} (+{growth_large:.0f}) | "
            f"{'yes' if growth_large - growth_small < 20 else '**no**'} |"
        )


class PhaseTimer:
    """Wall time and calls of the engine's module-level steps, by wrapping them in place
    (`_phases` looks them up in the module at each call); `restore` puts them back."""

    def __init__(self, module, names: list[str]):
        self.module = module
        self.originals = {name: getattr(module, name) for name in names}
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        for name, function in self.originals.items():
            setattr(module, name, self._wrap(name, function))

    def _wrap(self, name, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def restore(self) -> None:
        for name, function in self.originals.items():
            setattr(self.module, name, function)


class Monitor:
    """CPU of this process, the fake, the scratch database's backends and everything else;
    RSS of this process (before, peak) and the fake's at the end."""

    def __init__(self, fake_pid: int, admin):
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()
        self.fake = psutil.Process(fake_pid)
        self.backends = [
            psutil.Process(pid)
            for (pid,) in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                "pg_backend_pid()", [DATABASE]
            ).fetchall()
        ]  # fmt: skip
        self._stop = threading.Event()

    @staticmethod
    def _cpu(process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    def _busy(self) -> float:
        times = self.psutil.cpu_times()
        return sum(times) - times.idle - getattr(times, "iowait", 0.0)

    def start(self) -> Monitor:
        self.started = time.monotonic()
        self.first_busy = self._busy()
        self.first = [self._cpu(p) for p in (self.me, self.fake, *self.backends)]
        self.before = self.peak = self.me.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.me.memory_info().rss)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        seconds = time.monotonic() - self.started
        last = [self._cpu(p) for p in (self.me, self.fake, *self.backends)]
        used = [b - a for a, b in zip(self.first, last, strict=True)]
        busy = self._busy() - self.first_busy
        return {
            "bench": used[0] / seconds, "fake": used[1] / seconds,
            "postgres": sum(used[2:]) / seconds,
            "other": max(0.0, busy - sum(used)) / seconds,
            "before": self.before, "peak": max(self.peak, self.me.memory_info().rss),
            "fake_rss": self.fake.memory_info().rss,
        }  # fmt: skip


def plan_facts(plan: str) -> dict:
    """Execution and planning time, JIT, and the statement's buffers and WAL (the top node's
    lines, which include its children's), from an EXPLAIN (ANALYZE, BUFFERS, WAL) text."""

    def number(pattern: str, text: str = plan) -> float:
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0

    def first_line(marker: str) -> str:
        return next((line for line in plan.splitlines() if marker in line), "")

    buffers, wal = first_line("Buffers: shared"), first_line("WAL: ")
    facts = {
        "execution": number(r"Execution Time: ([0-9.]+) ms"),
        "planning": number(r"Planning Time: ([0-9.]+) ms"),
        "jit": number(r"Timing: .*Total ([0-9.]+) ms"),
        "functions": int(number(r"Functions: ([0-9]+)")),
    }
    for name in ("hit", "read", "dirtied", "written"):
        facts[name] = int(number(rf"{name}=([0-9]+)", buffers))
    facts["wal_records"] = int(number(r"records=([0-9]+)", wal))
    facts["wal_bytes"] = int(number(r"bytes=([0-9]+)", wal))
    return facts


if __name__ == "__main__":
    main()
