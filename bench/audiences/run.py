"""Audiences at a million customers, end to end: recalculation against hand-written SQL,
real-time cost per event, and memory.

1. Creates a scratch database and the application role (`bootstrap_app_role`), migrates as
   that role, and generates a 1,000,000-customer / ~10,000,000-event workspace plus a small
   second one with set-based SQL as the superuser (generate.py), then VACUUM ANALYZE.
2. For each of five rules (rules.py), times a full recalculation through the app's code
   (`audience_recalculate` as the app role inside `workspace_scope`, row-level security on)
   from an empty membership, and again after ~1% churn, against the hand-written SQL that
   computes the same set and applies the same difference (delete, insert, change log) for a
   separate audience id, as the superuser, in the same run. Both sides get the same `now`; the
   member sets, entered and exited counts are checked to be identical every time.
3. Recalculates a rule in the small workspace too and checks it saw only that workspace.
4. Memory: Python RSS and tracemalloc peak while recalculating a ~500k- and a ~5k-member
   audience.
5. Real time: 20 real-time audiences; for a few hundred ingested events (a track for an
   existing identified customer, customers drawn in proportion to their activity so heavy ones
   appear as often as they send events) times `realtime_evaluate_events` and the whole per-batch
   follow-up (`process_events_now`), p50/p95.
6. Prints markdown (and EXPLAIN ANALYZE where a goal is missed), drops the scratch database.

    .venv/bin/python bench/audiences/run.py --admin-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/audiences/run.py --customers 100000        # a quick run
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.audiences import generate
from bench.audiences.rules import (
    APPLY,
    MEMORY_RULES,
    RULES,
    realtime_rules,
    sql_params,
)

DATABASE = "masivo_bench_audiences"
ROLE = "masivo_bench"
GOAL_RATIO = 1.5
GOAL_REALTIME_P95_MS = 5.0
MIB = 1024 * 1024
BUCKETS = [(1, 10), (11, 100), (101, 1000), (1001, 10**9)]


def say(message: str = "") -> None:
    print(message, flush=True)


@dataclass
class Timing:
    app: list[float] = field(default_factory=list)
    sql: list[float] = field(default_factory=list)
    size: int = 0
    entered: list[int] = field(default_factory=list)
    exited: list[int] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.app) / statistics.median(self.sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a superuser URL (creates the role and scratch database, runs the baseline)",
    )  # fmt: skip
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--small-customers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per rule and phase")
    parser.add_argument("--realtime-events", type=int, default=300)
    parser.add_argument("--batches", type=int, default=5, help="real-time batches measured")
    parser.add_argument("--batch-size", type=int, default=100, help="events per batch")
    parser.add_argument("--seed", type=float, default=0.42)
    parser.add_argument(
        "--phases", default="recalculation,memory,realtime",
        help="comma-separated subset of recalculation, memory, realtime",
    )  # fmt: skip
    parser.add_argument("--explain", action="store_true", help="EXPLAIN every rule, not misses")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--reuse", action="store_true",
        help="reuse a database kept by --keep (skips generation; audiences are recreated)",
    )  # fmt: skip
    parser.add_argument(
        "--keep-realtime-audiences", action="store_true",
        help="with --reuse --phases realtime: keep the kept database's real-time audiences and "
        "their memberships (skips their recalculation, ~3 minutes; the memberships may hold "
        "what earlier runs' events caused)",
    )  # fmt: skip
    args = parser.parse_args()

    import psycopg

    from masivo.dbsetup import bootstrap_app_role

    host_url = args.admin_url.rsplit("/", 1)[0]
    admin_db_url = f"{host_url}/{DATABASE}"
    started = time.perf_counter()
    if not args.reuse:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    bootstrap_app_role(
        admin_url=args.admin_url,
        role=ROLE,
        password="bench",  # noqa: S106 (a throwaway local role)
        database=DATABASE,
    )
    os.environ["DATABASE_URL"] = host_url.replace("postgres@", f"{ROLE}:bench@", 1) + (
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
        Bench(args, admin_db_url).run()
    finally:
        connections.close_all()
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            say(f"\n(dropped the scratch database {DATABASE})")
        say(f"\nTotal {time.perf_counter() - started:.0f} s.")


class Bench:
    def __init__(self, args, admin_db_url: str):
        import psycopg

        self.args = args
        self.admin = psycopg.connect(admin_db_url, autocommit=True)
        # The app turns JIT off for its recalculation statement; the baseline gets the same.
        self.admin.execute("SET jit = off")
        self.rng = random.Random(args.seed)
        self.misses: list[str] = []

    # -- setup --------------------------------------------------------------------------------

    def run(self) -> None:
        self.describe_machine()
        self.prepare_data()
        from masivo.tenancy.models import Workspace

        self.workspace = Workspace.objects.get(id=self.big)
        self.small_workspace = Workspace.objects.get(id=self.small)
        with self.scope(self.big):
            from profiles.services.settings import profile_settings_get

            regime = profile_settings_get(workspace=self.workspace).consent_regime
            assert regime == "opt_in", regime  # the hand-written consent test assumes it
        phases = set(self.args.phases.split(","))
        if "recalculation" in phases:
            self.create_rule_audiences()
            self.recalculation_from_scratch()
            self.recalculation_after_churn()
            self.tenancy_check()
            self.report_recalculation()
        if "memory" in phases:
            self.memory()
        if "realtime" in phases:
            self.realtime()
        if "recalculation" in phases:
            self.explain_misses()
        say("\n### Goals\n")
        if self.misses:
            for miss in self.misses:
                say(f"- MISSED: {miss}")
        else:
            say("- every goal met")

    def vacuum_like_autovacuum(self, after: str) -> None:
        """Autovacuum would VACUUM (insert threshold) and ANALYZE a table soon after a bulk
        insert; where the server has it off (as this machine's does), do it by hand at those
        moments, and say so."""
        if self.admin.execute("SHOW autovacuum").fetchone()[0] == "on":
            return
        for table in ("audiences_membership", "audiences_membershipchange"):
            self.admin.execute(f"VACUUM ANALYZE {table}")
        say(f"  (autovacuum is off on this server: VACUUM ANALYZE of the membership tables "
            f"{after})")  # fmt: skip

    def scope(self, workspace_id: int):
        from masivo.tenancy.context import workspace_scope

        return workspace_scope(workspace_id)

    def describe_machine(self) -> None:
        settings = self.admin.execute(
            "SELECT current_setting('server_version'), current_setting('shared_buffers'), "
            "current_setting('work_mem'), current_setting('max_parallel_workers_per_gather'), "
            "(SELECT reset_val FROM pg_settings WHERE name = 'jit')"
        ).fetchone()
        say("## Audiences benchmark\n")
        say(
            f"PostgreSQL {settings[0]} (shared_buffers {settings[1]}, work_mem {settings[2]}, "
            f"max_parallel_workers_per_gather {settings[3]}, jit {settings[4]} by default), "
            f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}.\n"
        )

    def prepare_data(self) -> None:
        existing = self.admin.execute("SELECT id FROM tenancy_workspace ORDER BY id").fetchall()
        if self.args.reuse and len(existing) == 2:
            self.big, self.small = (row[0] for row in existing)
            if not self.args.keep_realtime_audiences:
                for table in ("membership", "membershipchange", "recalculation", "audience"):
                    self.admin.execute(f"DELETE FROM audiences_{table}")
            self.admin.execute("DELETE FROM profiles_event WHERE source <> 'bench'")
            kept = "kept" if self.args.keep_realtime_audiences else "deleted"
            say(f"Reusing the kept database (audiences {kept}, benchmark events removed).\n")
        else:
            self.big, self.small = generate.create_workspaces(self.admin)
            say(
                f"Generating {self.args.customers:,} + {self.args.small_customers:,} customers "
                "(set-based SQL as the superuser)…"
            )
            sizes = [
                (self.big, self.args.customers, "c-"),
                (self.small, self.args.small_customers, "s-"),
            ]
            result = generate.generate(self.admin, sizes, seed=self.args.seed)
            for workspace, (customers, events, devices) in result["counts"].items():
                say(f"  workspace {workspace}: {customers:,} customers, {events:,} events, "
                    f"{devices:,} devices")  # fmt: skip
            say(f"Generated in {result['seconds']:.0f} s.\n")
        self.describe_activity()

    def describe_activity(self) -> None:
        rows = self.admin.execute(
            "SELECT n, count(*) FROM (SELECT c.id, count(e.id) AS n FROM profiles_customer c "
            "LEFT JOIN profiles_event e ON e.customer_id = c.id WHERE c.workspace_id = %s "
            "GROUP BY c.id) x GROUP BY n",
            [self.big],
        ).fetchall()
        self.activity = dict(rows)
        total_customers = sum(self.activity.values())
        total_events = sum(n * k for n, k in rows)
        say("Activity (events per customer) in the big workspace:\n")
        say("| events per customer | customers | share of customers | share of events |")
        say("| --- | --- | --- | --- |")
        for low, high in [(0, 0), *BUCKETS]:
            customers = sum(k for n, k in rows if low <= n <= high)
            events = sum(n * k for n, k in rows if low <= n <= high)
            label = f"{low}" if low == high else (f"{low}-{high}" if high < 10**9 else f"{low}+")
            say(f"| {label} | {customers:,} | {customers / total_customers:.1%} | "
                f"{events / total_events:.1%} |")  # fmt: skip
        say(f"\nMedian {self.percentile_of_activity(0.5)}, p99 "
            f"{self.percentile_of_activity(0.99)}, max {max(self.activity)} events.\n")  # fmt: skip

    def percentile_of_activity(self, q: float) -> int:
        total, seen = sum(self.activity.values()), 0
        for n in sorted(self.activity):
            seen += self.activity[n]
            if seen >= q * total:
                return n
        return max(self.activity)

    def create_audience(self, workspace, name: str, document: dict, realtime: bool = False):
        from audiences.services import audience_create

        with self.scope(workspace.id):
            return audience_create(
                workspace=workspace,
                data={"name": name, "rules": document, "schedule": "never",
                      "is_realtime": realtime},
            )  # fmt: skip

    def create_rule_audiences(self) -> None:
        self.app_ids: dict[str, int] = {}
        self.sql_ids: dict[str, int] = {}
        self.app_audiences = {}
        for rule in RULES:
            app = self.create_audience(self.workspace, rule.key, rule.document(self.app_ids))
            sql = self.create_audience(
                self.workspace, f"{rule.key} (hand-written baseline)", rule.document(self.sql_ids)
            )
            self.app_ids[rule.key], self.sql_ids[rule.key] = app.id, sql.id
            self.app_audiences[rule.key] = app
        self.timings = {rule.key: (Timing(), Timing()) for rule in RULES}

    # -- recalculation --------------------------------------------------------------------

    def reset(self, *audience_ids: int) -> None:
        self.admin.execute(
            "DELETE FROM audiences_membership WHERE audience_id = ANY(%s)", [list(audience_ids)]
        )
        self.admin.execute(
            "DELETE FROM audiences_membershipchange WHERE audience_id = ANY(%s)",
            [list(audience_ids)],
        )
        # Behind the membership owner's back, so its size goes back to empty by hand too.
        self.admin.execute(
            "UPDATE audiences_audience SET size = 0 WHERE id = ANY(%s)", [list(audience_ids)]
        )
        self.admin.execute("VACUUM ANALYZE audiences_membership, audiences_membershipchange")

    def run_app(self, key: str, now) -> tuple[float, tuple[int, int, int]]:
        from audiences.models import Audience
        from audiences.recalculation import audience_recalculate

        with self.scope(self.big):
            audience = Audience.objects.get(id=self.app_ids[key])
            gc.collect()
            start = time.perf_counter()
            run = audience_recalculate(audience=audience, reason="bench", now=now)
            elapsed = time.perf_counter() - start
        assert run.status == "succeeded", run.status
        return elapsed, (run.size, run.entered, run.exited)

    def run_sql(self, rule, now, *, workspace=None) -> tuple[float, tuple[int, int, int]]:
        workspace = workspace or self.big
        params = sql_params(
            workspace=workspace, now=now, refs={key: self.sql_ids[key] for key in rule.refs}
        )
        params["audience"] = self.sql_ids[rule.key]
        start = time.perf_counter()
        counts = self.admin.execute(APPLY.format(members=rule.sql), params).fetchone()
        return time.perf_counter() - start, counts

    def verify(self, key: str, app_counts, sql_counts) -> None:
        assert app_counts == sql_counts, (key, app_counts, sql_counts)
        different = self.admin.execute(
            "SELECT count(*) FROM ((SELECT customer_id FROM audiences_membership "
            "WHERE audience_id = %(a)s EXCEPT SELECT customer_id FROM audiences_membership "
            "WHERE audience_id = %(b)s) UNION ALL (SELECT customer_id FROM audiences_membership "
            "WHERE audience_id = %(b)s EXCEPT SELECT customer_id FROM audiences_membership "
            "WHERE audience_id = %(a)s)) d",
            {"a": self.app_ids[key], "b": self.sql_ids[key]},
        ).fetchone()[0]
        assert different == 0, f"{key}: {different} customers differ between app and SQL"

    def measure(self, rule, timing: Timing, first: str) -> None:
        from django.utils import timezone

        # Fresh statistics for both sides (untimed): the audiences this rule reads were just
        # recalculated, and a planner that believes they are empty picks nested loops that make
        # either side's run take minutes: a coin toss, not a comparison (see BENCHMARKS.md).
        self.admin.execute("ANALYZE audiences_membership")
        now = timezone.now()
        order = ["app", "sql"] if first == "app" else ["sql", "app"]
        results = {}
        for side in order:
            if side == "app":
                results["app"] = self.run_app(rule.key, now)
            else:
                results["sql"] = self.run_sql(rule, now)
        (app_time, app_counts), (sql_time, sql_counts) = results["app"], results["sql"]
        self.verify(rule.key, app_counts, sql_counts)
        timing.app.append(app_time)
        timing.sql.append(sql_time)
        timing.size = app_counts[0]
        timing.entered.append(app_counts[1])
        timing.exited.append(app_counts[2])

    def warm_up(self) -> None:
        from django.utils import timezone

        for rule in RULES:
            if rule.refs:
                continue
            params = sql_params(workspace=self.big, now=timezone.now(), refs={})
            self.admin.execute(f"SELECT count(*) FROM ({rule.sql}) t", params)

    def recalculation_from_scratch(self) -> None:
        say("Recalculation from an empty membership…")
        self.warm_up()
        for rule in RULES:
            timing = self.timings[rule.key][0]
            for number in range(self.args.repeat):
                self.reset(self.app_ids[rule.key], self.sql_ids[rule.key])
                self.measure(rule, timing, "app" if number % 2 == 0 else "sql")
            say(f"  {rule.key}: {timing.size:,} members, app {statistics.median(timing.app):.2f} s,"
                f" SQL {statistics.median(timing.sql):.2f} s")  # fmt: skip
        self.vacuum_like_autovacuum("after the first recalculations")

    def recalculation_after_churn(self) -> None:
        say("Recalculation after ~1% churn (each round: churn, then every rule in order)…")
        self.churns = []
        for number in range(self.args.repeat):
            start = time.perf_counter()
            changed = generate.churn(
                self.admin, workspace=self.big, customers=self.args.customers, round_=number
            )
            self.churns.append(changed)
            say(f"  round {number + 1}: {changed['customers_changed']:,} customers changed, "
                f"{changed['purchases']:,} purchases added for {changed['customers_buying']:,} "
                f"others ({time.perf_counter() - start:.0f} s)")  # fmt: skip
            for rule in RULES:
                self.measure(rule, self.timings[rule.key][1], "sql" if number % 2 == 0 else "app")
        for rule in RULES:
            timing = self.timings[rule.key][1]
            say(f"  {rule.key}: app {statistics.median(timing.app):.2f} s, "
                f"SQL {statistics.median(timing.sql):.2f} s, entered {timing.entered}, "
                f"exited {timing.exited}")  # fmt: skip

    def tenancy_check(self) -> None:
        """The same rule in the small workspace sees only that workspace's customers."""
        from django.utils import timezone

        from audiences.recalculation import audience_recalculate

        rule = RULES[1]
        app = self.create_audience(self.small_workspace, rule.key, rule.document({}))
        now = timezone.now()
        with self.scope(self.small):
            run = audience_recalculate(audience=app, reason="bench", now=now)
        expected = self.admin.execute(
            f"SELECT count(*) FROM ({rule.sql}) t",
            sql_params(workspace=self.small, now=now, refs={}),
        ).fetchone()[0]
        foreign = self.admin.execute(
            "SELECT count(*) FROM audiences_membership m JOIN profiles_customer c "
            "ON c.id = m.customer_id WHERE m.audience_id = %s AND c.workspace_id <> %s",
            [app.id, self.small],
        ).fetchone()[0]
        assert run.size == expected and foreign == 0, (run.size, expected, foreign)
        self.tenancy = (rule.key, run.size)

    def report_recalculation(self) -> None:
        say(f"\n### Full recalculation (median of {self.args.repeat})\n")
        say(
            "`app` is `audience_recalculate` as the app role inside `workspace_scope` (RLS on); "
            "`SQL` is the hand-written statement (same set, same delete/insert/change log) as the "
            "superuser. Member sets, entered and exited counts identical in every run.\n"
        )
        say("| rule | members | from scratch: app | SQL | ratio | after 1% churn: app | SQL | "
            "ratio | entered / exited per round |")  # fmt: skip
        say("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for rule in RULES:
            scratch, churned = self.timings[rule.key]
            moved = ", ".join(
                f"+{a}/-{b}" for a, b in zip(churned.entered, churned.exited, strict=True)
            )
            say(
                f"| ({rule.key[1]}) {rule.title} | {churned.size:,} | "
                f"{statistics.median(scratch.app):.2f} s | "
                f"{statistics.median(scratch.sql):.2f} s | {scratch.ratio:.2f}x | "
                f"{statistics.median(churned.app):.2f} s | "
                f"{statistics.median(churned.sql):.2f} s | {churned.ratio:.2f}x | {moved} |"
            )
            for phase, timing in (("from scratch", scratch), ("after churn", churned)):
                if timing.ratio > GOAL_RATIO:
                    self.misses.append(
                        f"rule ({rule.key[1]}) {phase}: {timing.ratio:.2f}x the hand-written SQL"
                    )
        say(
            f"\nTenancy: rule ({self.tenancy[0][1]}) recalculated in the small workspace: "
            f"{self.tenancy[1]:,} members, all from that workspace, same set as the SQL."
        )

    # -- memory -------------------------------------------------------------------------------

    def memory(self) -> None:
        import psutil

        from audiences.recalculation import audience_recalculate

        say("\n### Memory of the Python process during a recalculation\n")
        say("| audience | members | RSS before | peak RSS during | growth | tracemalloc peak |")
        say("| --- | --- | --- | --- | --- | --- |")
        process = psutil.Process()
        growths = []
        for label, root in MEMORY_RULES:
            audience = self.create_audience(
                self.workspace, f"memory: {label}", {"version": 1, "root": root}
            )
            gc.collect()
            before = process.memory_info().rss
            peak = [before]
            done = threading.Event()

            def sample(peak=peak, done=done):
                while not done.is_set():
                    peak[0] = max(peak[0], process.memory_info().rss)
                    time.sleep(0.002)

            sampler = threading.Thread(target=sample)
            sampler.start()
            tracemalloc.start()
            try:
                with self.scope(self.big):
                    run = audience_recalculate(audience=audience, reason="bench")
            finally:
                traced_peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                done.set()
                sampler.join()
            growth = peak[0] - before
            growths.append(growth)
            say(f"| {label} | {run.size:,} | {before / MIB:.1f} MiB | {peak[0] / MIB:.1f} MiB | "
                f"{growth / MIB:+.1f} MiB | {traced_peak / 1024:.0f} KiB |")  # fmt: skip
        if max(growths) > 16 * MIB:
            self.misses.append(f"memory grew {max(growths) / MIB:.0f} MiB during a recalculation")

    # -- real time ----------------------------------------------------------------------------

    def realtime(self) -> None:
        from django.db import transaction
        from django.utils import timezone

        from audiences.realtime import realtime_evaluate_events
        from audiences.recalculation import audience_recalculate
        from masivo.pipeline import process_events_now

        say("\n### Real time\n")
        now = timezone.now()
        ids: dict[int, int] = {}
        recalc_rows = []
        kept = self.kept_realtime_audiences() if self.args.keep_realtime_audiences else []
        for number, (name, root) in enumerate([] if kept else realtime_rules(now), start=1):
            ids_for = {key: ids[key] for key in ids}
            document = {"version": 1, "root": _resolve_numbers(root, ids_for)}
            audience = self.create_audience(self.workspace, name, document, realtime=True)
            ids[number] = audience.id
            with self.scope(self.big):
                start = time.perf_counter()
                run = audience_recalculate(audience=audience, reason="bench")
                recalc_rows.append((name, run.size, time.perf_counter() - start))
        if kept:
            say(f"\nThe {len(kept)} real-time audiences of the last run, kept with their members.")
        else:
            self.vacuum_like_autovacuum("after the real-time audiences' first recalculations")
            say("\nThe 20 real-time audiences, first recalculated in full through the app:\n")
            say("| audience | members | recalculation |")
            say("| --- | --- | --- |")
            for name, size, seconds in recalc_rows:
                say(f"| {name} | {size:,} | {seconds:.2f} s |")

        names = [name for name, _ in generate.EVENT_MIX]
        shares = [share for _, share in generate.EVENT_MIX]
        weights = [b - a for a, b in zip([0.0, *shares], shares, strict=False)]
        run_id = time.time_ns()
        watch = CpuWatch(self.backend_pids())
        evaluate, pipeline = [], []
        for number, (customer_id, external_id, activity) in enumerate(
            self.realtime_samples(self.args.realtime_events)
        ):
            name = self.rng.choices(names, weights)[0]
            for path in ("evaluate", "pipeline"):
                self.insert_events(
                    [(customer_id, external_id, name, f"rt-{run_id}-{number}-{path}")],
                    processed=path == "evaluate",
                )
                with self.scope(self.big):
                    start = time.perf_counter()
                    if path == "evaluate":
                        with transaction.atomic():
                            result = realtime_evaluate_events(
                                workspace=self.workspace,
                                customer_ids=[customer_id],
                                event_names={name},
                            )
                        changed = sum(a + b for a, b in result.values())
                        evaluate.append(
                            (time.perf_counter() - start, name, activity, len(result), changed)
                        )
                    else:
                        processed = process_events_now(workspace=self.workspace)
                        pipeline.append((time.perf_counter() - start, name, activity, processed, 0))
                        assert processed == 1, processed
        self.report_realtime(evaluate, pipeline)

        batches = []
        size = self.args.batch_size
        samples = self.realtime_samples(size * self.args.batches)
        for number in range(self.args.batches):
            chunk = samples[number * size : (number + 1) * size]
            batch = [
                (cid, external, self.rng.choices(names, weights)[0], f"rtb-{run_id}-{number}-{i}")
                for i, (cid, external, _) in enumerate(chunk)
            ]
            self.insert_events(batch, processed=True)
            with self.scope(self.big):
                start = time.perf_counter()
                with transaction.atomic():
                    realtime_evaluate_events(
                        workspace=self.workspace,
                        customer_ids=sorted({row[0] for row in batch}),
                        event_names={row[2] for row in batch},
                    )
                evaluated = time.perf_counter() - start
            self.insert_events(
                [(c, e, n, m.replace("rtb-", "rtp-")) for c, e, n, m in batch], processed=False
            )
            with self.scope(self.big):
                start = time.perf_counter()
                assert process_events_now(workspace=self.workspace) == len(batch)
                batches.append((evaluated, time.perf_counter() - start))
        say(
            f"\nBatches: {self.args.batches} batches of {size} events (customers drawn the same "
            "way, names from the mix), as the follow-up sees them under load:\n"
        )
        say("| path | per batch (median) | per event |")
        say("| --- | --- | --- |")
        for label, index in (("`realtime_evaluate_events`", 0), ("`process_events_now`", 1)):
            median = statistics.median(row[index] for row in batches) * 1000
            say(f"| {label} | {median:.1f} ms | {median / size:.2f} ms |")
        others, ours, seconds = watch.stop()
        say(
            f"\nInterference: during the {seconds:.0f} s of timed real time, other processes "
            f"used {others:.2f} of the machine's {os.cpu_count()} CPUs on average (this "
            f"benchmark and its database sessions {ours:.2f})."
        )

    def kept_realtime_audiences(self) -> list:
        from audiences.models import Audience

        with self.scope(self.big):
            kept = list(Audience.objects.filter(is_realtime=True).order_by("id"))
        return kept if len(kept) == len(realtime_rules(self.now_for_names())) else []

    @staticmethod
    def now_for_names():
        from django.utils import timezone

        return timezone.now()

    def backend_pids(self) -> list[int]:
        """The server processes of this benchmark's two sessions (their CPU is ours)."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (app,) = cursor.fetchone()
        return [app, self.admin.execute("SELECT pg_backend_pid()").fetchone()[0]]

    def realtime_samples(self, count: int) -> list[tuple[int, str, int]]:
        """Identified customers drawn in proportion to their activity (a random past event's
        customer), with their event counts."""
        low, high = self.admin.execute(
            "SELECT min(id), max(id) FROM profiles_event WHERE workspace_id = %s", [self.big]
        ).fetchone()
        picked: list[tuple[int, str, int]] = []
        while len(picked) < count:
            candidates = [self.rng.randint(low, high) for _ in range(count * 2)]
            rows = self.admin.execute(
                "SELECT c.id, c.external_id FROM profiles_event e "
                "JOIN profiles_customer c ON c.id = e.customer_id "
                "WHERE e.id = ANY(%s) AND e.workspace_id = %s AND NOT c.is_anonymous",
                [candidates, self.big],
            ).fetchall()
            picked.extend(rows[: count - len(picked)])
        counts = dict(
            self.admin.execute(
                "SELECT customer_id, count(*) FROM profiles_event WHERE workspace_id = %s "
                "AND customer_id = ANY(%s) GROUP BY customer_id",
                [self.big, [row[0] for row in picked]],
            ).fetchall()
        )
        self.rng.shuffle(picked)
        return [(cid, external, counts[cid]) for cid, external in picked]

    def insert_events(self, rows, *, processed: bool) -> None:
        """Store (customer id, external id, event name, message id) tracks as ingestion would
        (untimed), with the generator's kind of properties."""
        from psycopg.types.json import Jsonb

        values = []
        for customer_id, external_id, name, message_id in rows:
            category = self.rng.choice(generate.CATEGORIES)
            amount = round(self.rng.lognormvariate(4.1, 0.9), 2)
            properties = {
                "purchase": {"order_id": message_id, "value": amount, "currency": "MXN",
                             "category": category, "items": 1},
                "Order Completed": {"order_id": message_id, "revenue": amount,
                                    "category": category},
                "Checkout Started": {"value": amount, "category": category},
                "Product Viewed": {"product_id": "p-1", "category": category, "price": amount},
                "Product Added": {"product_id": "p-1", "category": category, "price": amount,
                                  "quantity": 1},
                "Page Viewed": {"path": f"/c/{category}", "category": category},
                "Search": {"query": category},
                "Email Opened": {"campaign_id": "cmp-1"},
            }.get(name, {})  # fmt: skip
            values.append(
                (self.big, name, Jsonb(properties), message_id, customer_id, external_id, processed)
            )
        with self.admin.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO profiles_event (workspace_id, type, name, properties, occurred_at, "
                "received_at, message_id, customer_id, user_id, anonymous_id, context, source, "
                "processed_at) VALUES (%s, 'track', %s, %s, now(), now(), %s, %s, %s, '', '{}', "
                "'realtime-bench', CASE WHEN %s THEN now() END)",
                values,
            )

    def report_realtime(self, evaluate, pipeline) -> None:
        def line(label, rows):
            if not rows:
                return
            times = sorted(row[0] * 1000 for row in rows)
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            say(f"| {label} | {len(times)} | {statistics.median(times):.2f} ms | {p95:.2f} ms | "
                f"{times[-1]:.2f} ms |")  # fmt: skip

        say(
            f"\n{len(evaluate)} events, each a track for an identified customer drawn in "
            "proportion to activity, name drawn from the generator's mix; the event is inserted "
            "first (untimed). `realtime_evaluate_events` is timed inside `transaction.atomic()` "
            "(as the follow-up runs it); the per-batch path is `process_events_now` for a batch of "
            "that one event (claim, metrics refresh, real-time evaluation, commit).\n"
        )
        say("| path / sample | events | p50 | p95 | max |")
        say("| --- | --- | --- | --- | --- |")
        line("`realtime_evaluate_events`, all", evaluate)
        for low, high in BUCKETS:
            label = f"{low}-{high}" if high < 10**9 else f"{low}+"
            line(f"… customers with {label} events", [r for r in evaluate if low <= r[2] <= high])
        line("… purchase events", [r for r in evaluate if r[1] == "purchase"])
        line("… other events", [r for r in evaluate if r[1] != "purchase"])
        line("`process_events_now` (whole follow-up), all", pipeline)
        for low, high in BUCKETS:
            label = f"{low}-{high}" if high < 10**9 else f"{low}+"
            line(f"… customers with {label} events", [r for r in pipeline if low <= r[2] <= high])
        touched = statistics.mean(row[3] for row in evaluate)
        changed = sum(1 for row in evaluate if row[4])
        say(
            f"\nAudiences evaluated per event: {touched:.1f} on average (of 20); "
            f"{changed} of {len(evaluate)} events changed a membership. Slowest five "
            "`realtime_evaluate_events` calls:\n"
        )
        for seconds, name, activity, touched_count, moved in sorted(evaluate)[-5:]:
            say(f"- {seconds * 1000:.1f} ms: {name} for a customer with {activity:,} events, "
                f"{touched_count} audiences, {moved} membership changes")  # fmt: skip
        times = sorted(row[0] * 1000 for row in evaluate)
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        if p95 > GOAL_REALTIME_P95_MS:
            self.misses.append(f"real-time p95 {p95:.2f} ms > {GOAL_REALTIME_P95_MS} ms")

    # -- EXPLAIN ------------------------------------------------------------------------------

    def explain_misses(self) -> None:
        from django.db import connection, transaction
        from django.utils import timezone

        from audiences.membership import replace_statement
        from audiences.recalculation import compiler_for_workspace
        from audiences.rules.ast import parse_rules

        for rule in RULES:
            scratch, churned = self.timings[rule.key]
            if not self.args.explain and max(scratch.ratio, churned.ratio) <= GOAL_RATIO:
                continue
            now = timezone.now()
            with self.scope(self.big):
                audience = self.app_audiences[rule.key]
                members, params = compiler_for_workspace(
                    workspace=self.workspace, now=now
                ).members_sql(parse_rules(audience.rules))
                params |= _cause_params(self.big, audience.id, now)
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SET LOCAL jit = off")  # as recalculation_run does
                    cursor.execute(
                        "EXPLAIN (ANALYZE, BUFFERS) " + replace_statement(members), params
                    )
                    app_plan = "\n".join(row[0] for row in cursor.fetchall())
                    transaction.set_rollback(True)
            params = sql_params(
                workspace=self.big, now=now, refs={k: self.sql_ids[k] for k in rule.refs}
            )
            params["audience"] = self.sql_ids[rule.key]
            with self.admin.transaction(force_rollback=True):
                sql_plan = "\n".join(
                    row[0]
                    for row in self.admin.execute(
                        "EXPLAIN (ANALYZE, BUFFERS) " + APPLY.format(members=rule.sql), params
                    ).fetchall()
                )
            say(f"\n### EXPLAIN of rule ({rule.key[1]}), no pending changes\n")
            say("App (app role, RLS):\n\n```\n" + app_plan + "\n```\n")
            say("Hand-written (superuser):\n\n```\n" + sql_plan + "\n```")


class CpuWatch:
    """CPU used by everything else on the machine (other engineers' tests and benchmarks)
    while a phase runs: all CPU time from /proc/stat minus this process's and its database
    sessions' (on Linux, with the server on this machine; zeros elsewhere)."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.start = self.sample()

    def sample(self) -> tuple[float, float, float]:
        try:
            with open("/proc/stat") as stat:
                fields = [int(value) for value in stat.readline().split()[1:]]
            busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
            ours = 0
            for pid in self.pids:
                with open(f"/proc/{pid}/stat") as stat:
                    ours += sum(int(v) for v in stat.read().rsplit(")", 1)[1].split()[11:13])
        except OSError:
            return 0.0, 0.0, time.monotonic()
        ticks = os.sysconf("SC_CLK_TCK")
        times = os.times()
        return busy / ticks, ours / ticks + times.user + times.system, time.monotonic()

    def stop(self) -> tuple[float, float, float]:
        """(others' CPUs on average, ours, seconds)."""
        busy, ours, at = self.sample()
        seconds = at - self.start[2]
        others = (busy - self.start[0]) - (ours - self.start[1])
        return max(others, 0) / seconds, (ours - self.start[1]) / seconds, seconds


def _cause_params(workspace_id: int, audience_id: int, now) -> dict:
    from audiences.membership import cause_recalculation, statement_params

    cause = cause_recalculation(0)
    return statement_params(
        workspace_id=workspace_id, audience_id=audience_id, cause=cause, now=now
    )


def _resolve_numbers(node, ids: dict[int, int]):
    """`{"audience": {"ref": N}}` → the id of the N-th real-time audience."""
    if isinstance(node, dict):
        if set(node) == {"audience"} and "ref" in node["audience"]:
            body = dict(node["audience"])
            return {"audience": {"id": ids[body.pop("ref")], **body}}
        return {key: _resolve_numbers(value, ids) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve_numbers(item, ids) for item in node]
    return node


if __name__ == "__main__":
    main()
