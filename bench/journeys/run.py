"""Journeys at a million enrollments (issue 12 section 7), printing Markdown.

A scratch database and its application role (`bootstrap_app_role`), migrated as that role; rows
generated with set-based SQL (`generate_series`) as the superuser; journeys created and published
through journeys.services; everything timed runs as the app role in `workspace_scope` (RLS).

1. Claim and advance (`--waiting`, 1,000,000): enrollments waiting on delays that are all due
   (half before an exit step, half before another delay; no sends), each with the step row its
   wait logged. `journeys.runner.advance_due` in batches of `--batch` (500) over `--advance`
   enrollments (20,000), against a raw `SELECT … FOR UPDATE SKIP LOCKED` claim of the same rows
   plus a bare `UPDATE` of `next_run_at`, in batches of the same size, run first on the same
   rows and then undone; `--rounds` (3) times, each after a CHECKPOINT. At `--waiting-small`
   (100,000) and at `--waiting` waiting enrollments;
   this process's peak RSS (psutil, every 5 ms) during each. Where the time goes: statements per
   enrollment (by kind, with their time) and a cProfile of a few batches; EXPLAIN ANALYZE of
   both claims.
2. Entering at once (`--entering`, the issue's 100,000): an audience recalculation takes them
   all in (`audiences.membership.membership_replace` with a recalculation's cause, one
   statement); time until every one is enrolled and at its first delay by
   `journeys.runner.consume_memberships` + `advance_due` in a loop.
3. Event → resolved wait (`--event-waiting` enrollments waiting for "Purchase"): events stored at
   `--event-rate` a second for `--event-seconds` (Event rows, one transaction each), the
   follow-up (`masivo.pipeline.process_events_now`) in a loop of its own, and the tick
   (`journeys.runner.workspace_tick`, real clock) in another; latency from the event's commit to
   the commit of its enrollment's step row with outcome "event", p50/p95/max.

    .venv/bin/python bench/journeys/run.py                          # full, ~15-20 min
    .venv/bin/python bench/journeys/run.py --waiting 200000 --waiting-small 20000 \\
        --advance 5000 --entering 10000 --event-seconds 20          # quick, ~3 min
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import os
import pstats
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DATABASE = os.environ.get("BENCH_JOURNEYS_DATABASE", "masivo_bench_journeys")  # and the role
ROLE = DATABASE
GOAL_RATIO = 0.4
MIB = 1024 * 1024

INSERT_CUSTOMERS = """
INSERT INTO profiles_customer (
    workspace_id, external_id, email, phone, first_name, last_name, gender, birth_date,
    country, city, timezone, locale, tier, status, is_anonymous, tags, traits, consent,
    consent_vendors, consent_string, consent_string_version,
    created_at, updated_at, last_seen_at, purchase_count, purchase_total, last_purchase_at,
    purchases_30d_count, purchases_30d_total, purchases_month_count, purchases_month_total)
SELECT %(workspace)s, 'j-' || g, 'j' || g || '@example.com', NULL, 'Ana ' || g, '', '', NULL,
       'MX', '', 'UTC', 'es', '', 'active', false, '[]', '{}', '{}', '{}', '', '',
       now(), now(), NULL, 0, 0, NULL, 0, 0, 0, 0
  FROM generate_series(%(first)s::int, %(last)s::int) AS g
"""
# Customers first..last (by external id) wait at `step` (or, with `alternate`, at wait_a for odd
# numbers and wait_b for even ones) until `until`; their wait's step row says so.
INSERT_WAITING = """
WITH picked AS (
    SELECT c.id, (substring(c.external_id from 3))::int AS g FROM profiles_customer c
     WHERE c.workspace_id = %(workspace)s
       AND (substring(c.external_id from 3))::int BETWEEN %(first)s::int AND %(last)s::int
),
made AS (
    INSERT INTO journeys_enrollment (
        workspace_id, journey_id, version_id, customer_id, entry_key, state, current_step,
        next_run_at, waiting_for, visits, context, is_holdout, variant, idempotency_key,
        entered_at, finished_at, exit_reason, converted_at)
    SELECT %(workspace)s, %(journey)s, %(version)s, p.id, '', 'waiting', s.step,
           %(until)s::timestamptz - make_interval(secs => p.g),
           jsonb_build_object(%(kind)s::text, %(what)s::jsonb, 'since', %(since)s::text,
                              'until', (%(until)s::timestamptz - make_interval(secs => p.g))),
           jsonb_build_object(s.step, 1), '{}', false, '', '', %(since)s::timestamptz, NULL,
           '', NULL
      FROM picked p
      CROSS JOIN LATERAL (SELECT CASE WHEN NOT %(alternate)s THEN %(step)s::text
                                      WHEN p.g %% 2 = 1 THEN 'wait_a' ELSE 'wait_b' END
                                 AS step) s
    RETURNING id, current_step, next_run_at
)
INSERT INTO journeys_steprun (workspace_id, enrollment_id, journey_id, step, visit, outcome,
                              next_step, message_id, detail, started_at, finished_at)
SELECT %(workspace)s, id, %(journey)s, current_step, 1, 'waiting', '', NULL,
       jsonb_build_object('until', next_run_at), %(since)s::timestamptz, NULL
  FROM made
"""

CLAIM_GRAPH = {
    "trigger": {"type": "api"},
    "start": "split",
    "steps": {
        "split": {"type": "split", "paths": [{"percent": 50, "next": "wait_a"},
                                             {"percent": 50, "next": "wait_b"}]},
        "wait_a": {"type": "delay", "duration": {"hours": 1}, "next": "end"},
        "wait_b": {"type": "delay", "duration": {"hours": 1}, "next": "wait_c"},
        "wait_c": {"type": "delay", "duration": {"days": 1}, "next": "end"},
        "end": {"type": "exit"},
    },
}  # fmt: skip
ENTER_GRAPH = {
    "trigger": {"type": "audience_entered", "audience_id": 0},
    "start": "a_day",
    "steps": {"a_day": {"type": "delay", "duration": {"days": 1}, "next": "end"},
              "end": {"type": "exit"}},
}  # fmt: skip
EVENT_GRAPH = {
    "trigger": {"type": "api"},
    "start": "wait_buy",
    "steps": {"wait_buy": {"type": "wait_event", "event": "Purchase", "timeout": {"days": 7},
                           "next": "bought", "timeout_next": "gave_up"},
              "bought": {"type": "exit"}, "gave_up": {"type": "exit"}},
}  # fmt: skip

RAW_CLAIM = """
SELECT e.id FROM journeys_enrollment e
 WHERE e.workspace_id = %(workspace)s AND e.state IN ('active', 'waiting')
   AND e.next_run_at <= %(now)s
   AND e.journey_id = ANY(%(journeys)s)
 ORDER BY e.next_run_at LIMIT %(limit)s
 FOR UPDATE OF e SKIP LOCKED
"""
RAW_UPDATE = "UPDATE journeys_enrollment SET next_run_at = next_run_at + interval '100 years' " \
             "WHERE id = ANY(%(ids)s)"  # fmt: skip
UNDO_RAW = """
UPDATE journeys_enrollment SET next_run_at = next_run_at - interval '100 years'
 WHERE workspace_id = %(workspace)s AND next_run_at > now() + interval '50 years'
"""


def say(message: str = "") -> None:
    print(message, flush=True)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a superuser URL (creates the role and database, seeds)")  # fmt: skip
    parser.add_argument("--waiting", type=int, default=1_000_000)
    parser.add_argument("--waiting-small", type=int, default=100_000)
    parser.add_argument(
        "--advance",
        type=int,
        default=20_000,
        help="enrollments advanced (and claimed raw) per measurement round",
    )
    parser.add_argument("--rounds", type=int, default=3,
                        help="raw and app measured in turns this many times a size")  # fmt: skip
    parser.add_argument("--batch", type=int, default=500, help="advance_due's limit")
    parser.add_argument("--profile-batches", type=int, default=4)
    parser.add_argument("--entering", type=int, default=100_000,
                        help="customers entering at once")  # fmt: skip
    parser.add_argument("--event-waiting", type=int, default=20_000)
    parser.add_argument("--event-rate", type=float, default=20.0, help="events a second")
    parser.add_argument("--event-seconds", type=float, default=60.0)
    parser.add_argument("--phases", default="claim,enter,events")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

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
    os.environ["REDIS_URL"] = args.redis_url
    os.environ["MASIVO_REDIS_PREFIX"] = f"masivo-bench-journeys-{os.getpid()}:"
    os.environ["DJANGO_SETTINGS_MODULE"] = "masivo.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    try:
        call_command("migrate", verbosity=0)
        Bench(args, f"{host_url}/{DATABASE}").run()
    finally:
        connections.close_all()
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            say(f"\n(dropped the scratch database {DATABASE})")
        say(f"\nTotal {time.perf_counter() - started:.0f} s; load average at the end {load()}.")


class Bench:
    def __init__(self, args, admin_db_url: str):
        import psycopg

        self.args = args
        self.admin = psycopg.connect(admin_db_url, autocommit=True)
        self.met: list[str] = []
        self.at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        organization = self.admin.execute(
            "INSERT INTO tenancy_organization (name, slug, created_at) "
            "VALUES ('Bench journeys', 'bench-journeys', now()) RETURNING id"
        ).fetchone()[0]
        self.workspaces = {
            name: self.admin.execute(
                "INSERT INTO tenancy_workspace (organization_id, name, timezone, created_at) "
                "VALUES (%s, %s, 'UTC', now()) RETURNING id", [organization, name],
            ).fetchone()[0]
            for name in ("claim", "enter", "events")
        }  # fmt: skip

    def scope(self, workspace_id: int):
        from masivo.tenancy.context import workspace_scope

        return workspace_scope(workspace_id)

    def run(self) -> None:
        self.describe_machine()
        phases = set(self.args.phases.split(","))
        if "claim" in phases:
            self.claims()
        if "enter" in phases:
            self.entering()
        if "events" in phases:
            self.events()
        say(f"\nLoad average at the end: {load()}.")
        say("\n### Goals\n")
        say("| goal | target | measured | met |")
        say("| --- | --- | --- | --- |")
        for row in self.met:
            say(row)

    def describe_machine(self) -> None:
        row = self.admin.execute(
            "SELECT current_setting('server_version'), current_setting('shared_buffers'), "
            "current_setting('work_mem'), current_setting('jit')"
        ).fetchone()
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip()  # fmt: skip
        say("## Journeys benchmark\n")
        say(f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC at {commit}; PostgreSQL "
            f"{row[0]} (shared_buffers {row[1]}, work_mem {row[2]}, jit {row[3]}), "
            f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average before: "
            f"{load()}.\n")  # fmt: skip

    # -- seeding ------------------------------------------------------------------------------

    def customers(self, workspace: str, first: int, last: int) -> None:
        self.admin.execute("SET session_replication_role = replica")  # consistent by design
        self.admin.execute(INSERT_CUSTOMERS, {"workspace": self.workspaces[workspace],
                                              "first": first, "last": last})  # fmt: skip
        self.admin.execute("RESET session_replication_role")
        self.admin.execute("VACUUM ANALYZE profiles_customer")

    def journey(self, workspace: str, graph: dict):
        from journeys import services
        from masivo.tenancy.actors import Actor
        from masivo.tenancy.models import Workspace
        from masivo.tenancy.roles import Role

        actor = Actor(role=Role.MARKETER)
        with self.scope(self.workspaces[workspace]):
            journey = services.journey_create(
                workspace=Workspace.objects.get(id=self.workspaces[workspace]), name=workspace,
                graph=graph, actor=actor)  # fmt: skip
            services.journey_publish(journey=journey, actor=actor, now=self.at)
            journey.refresh_from_db()
        return journey

    def waiting(self, workspace: str, journey, first: int, last: int, *, until, kind, what,
                step="", alternate=False) -> None:  # fmt: skip
        import json

        self.admin.execute("SET session_replication_role = replica")
        self.admin.execute(INSERT_WAITING, {
            "workspace": self.workspaces[workspace], "journey": journey.id,
            "version": journey.live_version_id, "first": first, "last": last, "until": until,
            "since": (self.at - datetime.timedelta(hours=2)).isoformat(), "kind": kind,
            "what": json.dumps(what), "step": step, "alternate": alternate,
        })  # fmt: skip
        self.admin.execute("RESET session_replication_role")
        self.admin.execute("VACUUM ANALYZE journeys_enrollment")
        self.admin.execute("VACUUM ANALYZE journeys_steprun")

    # -- 1. claim and advance -----------------------------------------------------------------

    def raw_claims(self, workspace_id: int, batches: int) -> tuple[float, int]:
        from django.db import connection, transaction

        claimed = 0
        with self.scope(workspace_id):
            started = time.perf_counter()
            for _ in range(batches):
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(RAW_CLAIM, {"workspace": workspace_id, "now": self.at,
                                               "journeys": self.active_journeys(workspace_id),
                                               "limit": self.args.batch})  # fmt: skip
                    ids = [row[0] for row in cursor.fetchall()]
                    cursor.execute(RAW_UPDATE, {"ids": ids})
                claimed += len(ids)
            seconds = time.perf_counter() - started
        self.admin.execute(UNDO_RAW, {"workspace": workspace_id})
        self.admin.execute("VACUUM ANALYZE journeys_enrollment")
        return seconds, claimed

    def active_journeys(self, workspace_id: int) -> list[int]:
        """What the app's claim is given (from the journeys it loads): the active journeys."""
        return [row[0] for row in self.admin.execute(
            "SELECT id FROM journeys_journey WHERE workspace_id = %s AND status = 'active'",
            [workspace_id]).fetchall()]  # fmt: skip

    def app_advance(self, workspace_id: int, batches: int, *, statements=None) -> tuple:
        from django.db import connection

        from journeys import runner

        advance_due = runner.advance_due
        advanced = 0
        with self.scope(workspace_id), RssPeak() as rss:
            started = time.perf_counter()
            if statements is not None:
                with connection.execute_wrapper(statements):
                    for _ in range(batches):
                        advanced += advance_due(workspace_id=workspace_id, now=self.at,
                                                limit=self.args.batch)  # fmt: skip
            else:
                for _ in range(batches):
                    advanced += advance_due(workspace_id=workspace_id, now=self.at,
                                            limit=self.args.batch)  # fmt: skip
            seconds = time.perf_counter() - started
        return seconds, advanced, rss

    def explain(self, workspace_id: int, sql: str, params: dict) -> str:
        from django.db import connection, transaction

        with self.scope(workspace_id), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            transaction.set_rollback(True)
        return plan

    def app_claim_sql(self, workspace_id: int) -> tuple[str, dict]:
        from journeys.batch import advance_statement
        from journeys.engine import reacting_versions

        with self.scope(workspace_id):
            return advance_statement(workspace_id=workspace_id, versions=reacting_versions(),
                                     now=self.at, limit=self.args.batch)  # fmt: skip

    def claims(self) -> None:
        args = self.args
        ws = self.workspaces["claim"]
        batches = max(1, args.advance // args.batch)
        step = time.perf_counter()
        self.customers("claim", 1, args.waiting)
        journey = self.journey("claim", CLAIM_GRAPH)
        until = self.at - datetime.timedelta(minutes=1)
        self.waiting("claim", journey, 1, args.waiting_small, until=until, kind="delay",
                     what=True, alternate=True)  # fmt: skip
        say(f"Seeded {args.waiting:,} customers and {args.waiting_small:,} waiting enrollments "
            f"in {time.perf_counter() - step:.0f} s.\n")  # fmt: skip
        rows = []
        for size in (args.waiting_small, args.waiting):
            if size != args.waiting_small:
                step = time.perf_counter()
                self.waiting("claim", journey, args.waiting_small + 1, size, until=until,
                             kind="delay", what=True, alternate=True)  # fmt: skip
                say(f"Seeded up to {size:,} waiting enrollments in "
                    f"{time.perf_counter() - step:.0f} s.\n")  # fmt: skip
            due = self.count_due(ws)
            before = load()
            raw_seconds = app_seconds = raw_claimed = advanced = 0
            ratios, peaks = [], []
            for _ in range(args.rounds):  # raw then app, again: the server's noise shows
                self.admin.execute("CHECKPOINT")  # each starts with earlier writes flushed
                r_seconds, r_claimed = self.raw_claims(ws, batches)
                self.admin.execute("CHECKPOINT")
                a_seconds, a_advanced, rss = self.app_advance(ws, batches)
                raw_seconds, raw_claimed = raw_seconds + r_seconds, raw_claimed + r_claimed
                app_seconds, advanced = app_seconds + a_seconds, advanced + a_advanced
                ratios.append((a_advanced / a_seconds) / (r_claimed / r_seconds))
                peaks.append(rss)
                say(f"  {size:,} waiting: raw {r_claimed:,} in {r_seconds:.2f} s, app "
                    f"{a_advanced:,} in {a_seconds:.2f} s: {ratios[-1]:.3f}x")  # fmt: skip
            rss = max(peaks, key=lambda p: p.peak - p.before)
            rows.append((size, due, raw_claimed, raw_seconds, advanced, app_seconds, rss,
                         before, load(), ratios))  # fmt: skip
        # Where the time goes, at the large size: statements, a profile, the two claims' plans.
        counter = StatementCounter()
        seconds, counted, _ = self.app_advance(ws, max(1, args.profile_batches),
                                               statements=counter)  # fmt: skip
        profile = cProfile.Profile()
        profile.enable()
        p_seconds, p_advanced, _ = self.app_advance(ws, max(1, args.profile_batches))
        profile.disable()
        app_sql, app_params = self.app_claim_sql(ws)
        app_plan = self.explain(ws, app_sql, app_params)
        raw_plan = self.explain(ws, RAW_CLAIM, {"workspace": ws, "now": self.at,
                                                "journeys": self.active_journeys(ws),
                                                "limit": args.batch})  # fmt: skip
        self.report_claims(rows, counter, counted, seconds, profile, p_seconds, p_advanced,
                           app_plan, raw_plan)  # fmt: skip
        # The due index has no workspace: another workspace's tick walks past these rows.
        other = self.workspaces["enter"]
        other_sql, other_params = self.app_claim_sql(other)
        plan = self.explain(other, other_sql, other_params)
        say(
            f"\nEXPLAIN (ANALYZE) of the app's claim in another workspace (no enrollments of its "
            f"own) while {self.count_due(ws):,} of this one are due:\n\n```\n{plan}\n```"
        )
        self.admin.execute("TRUNCATE journeys_steprun, journeys_enrollment")

    def count_due(self, workspace_id: int) -> int:
        return self.admin.execute(
            "SELECT count(*) FROM journeys_enrollment WHERE workspace_id = %s "
            "AND state IN ('active', 'waiting') AND next_run_at <= %s",
            [workspace_id, self.at],
        ).fetchone()[0]

    def report_claims(self, rows, counter, counted, seconds, profile, p_seconds, p_advanced,
                      app_plan, raw_plan) -> None:  # fmt: skip
        say("\n### Claim and advance due enrollments\n")
        say(f"Each enrollment waits at a delay that is due (half before the exit step, half "
            f"before another delay of a day); batches of {self.args.batch}. Raw: `SELECT … FOR "
            "UPDATE OF e SKIP LOCKED` of the workspace's due enrollments of its active journeys "
            "(the app's claim without its moves), then `UPDATE … SET next_run_at` of the "
            "claimed ids, one transaction a batch, as the app role in `workspace_scope` on the "
            "same rows (run first, then undone and vacuumed). App: `journeys.runner.advance_due`."
            f" {self.args.rounds} rounds of raw then app a size, each after a CHECKPOINT; the "
            "totals over the rounds, and each round's ratio. RSS: this process, sampled every "
            "5 ms.\n")  # fmt: skip
        say("| waiting (due) | raw claim + UPDATE | raw rows/s | advance_due | app rows/s | "
            "ratio | rounds | RSS before → peak | load before / after |")  # fmt: skip
        say("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for size, due, raw_n, raw_s, app_n, app_s, rss, before, after, ratios in rows:
            ratio = (app_n / app_s) / (raw_n / raw_s)
            mark = f"{ratio:.3f}x" if ratio >= GOAL_RATIO else f"**{ratio:.3f}x**"
            say(
                f"| {size:,} ({due:,}) | {raw_n:,} in {raw_s:.2f} s | {raw_n / raw_s:,.0f} | "
                f"{app_n:,} in {app_s:.2f} s | {app_n / app_s:,.0f} | {mark} | "
                + ", ".join(f"{r:.2f}x" for r in ratios)
                + f" | {rss.before / MIB:.1f} → {rss.peak / MIB:.1f} MiB | {before} / {after} |"
            )
        total = sum(n for n, _ in counter.by_kind.values())
        db = sum(s for _, s in counter.by_kind.values())
        say(
            f"\nStatements of `advance_due` ({counted:,} enrollments in {seconds:.2f} s, "
            f"{total / max(counted, 1):.1f} statements an enrollment; time inside "
            f"`cursor.execute` {db:.2f} s = {db / seconds:.0%}, the rest is Python):\n"
        )
        say("| statement | count | per enrollment | seconds | µs each |")
        say("| --- | --- | --- | --- | --- |")
        for kind, (n, s) in sorted(counter.by_kind.items(), key=lambda item: -item[1][1]):
            say(f"| {kind} | {n:,} | {n / max(counted, 1):.2f} | {s:.2f} | {s / n * 1e6:,.0f} |")
        stats = pstats.Stats(profile)
        total_tt = stats.total_tt
        say(
            f"\ncProfile ({p_advanced:,} enrollments, {p_seconds:.2f} s under the profiler), "
            "inclusive time of the engine's parts:\n"
        )
        say("| where | seconds | share | per enrollment |")
        say("| --- | --- | --- | --- |")
        for label, path, name in PROFILE_POINTS:
            spent = sum(v[3] for (file, _, func), v in stats.stats.items()
                        if file.endswith(path) and func == name)  # fmt: skip
            if spent:
                say(
                    f"| {label} | {spent:.2f} | {spent / total_tt:.0%} | "
                    f"{spent / max(p_advanced, 1) * 1e6:,.0f} µs |"
                )
        say(
            "\nEXPLAIN (ANALYZE, BUFFERS) of the app's claim-and-move statement (rolled back) "
            f"at {rows[-1][0]:,} waiting:\n\n"
            f"```\n{app_plan}\n```\n\nof the raw claim:\n\n```\n{raw_plan}\n```"
        )
        worst = min(rows, key=lambda r: (r[4] / r[5]) / (r[2] / r[3]))
        ratio = (worst[4] / worst[5]) / (worst[2] / worst[3])
        self.met.append(
            f"| advance_due vs raw claim + UPDATE | ≥ {GOAL_RATIO}x | "
            + ", ".join(f"{(r[4] / r[5]) / (r[2] / r[3]):.3f}x at {r[0]:,}" for r in rows)
            + f" | {'yes' if ratio >= GOAL_RATIO else '**no**'} |"
        )
        growth = [(r[6].peak - r[6].before) / MIB for r in rows]
        self.met.append(
            f"| memory flat in waiting enrollments | flat | peak RSS growth {growth[0]:.1f} MiB "
            f"at {rows[0][0]:,}, {growth[-1]:.1f} MiB at {rows[-1][0]:,} | "
            f"{'yes' if abs(growth[-1] - growth[0]) < 10 else '**no**'} |"
        )

    # -- 2. entering at once ------------------------------------------------------------------

    def entering(self) -> None:
        from django.db import connection, transaction

        from audiences.membership import Cause, membership_replace
        from audiences.models import Audience, Membership, MembershipChange
        from journeys.models import Enrollment
        from journeys.runner import advance_due, consume_memberships

        ws = self.workspaces["enter"]
        count = self.args.entering
        self.customers("enter", 1, count)
        with self.scope(ws):
            audience = Audience.objects.create(workspace_id=ws, name="Recalculated",
                                               kind="list", rules=None)  # fmt: skip
        graph = {**ENTER_GRAPH, "trigger": {"type": "audience_entered",
                                            "audience_id": audience.id}}  # fmt: skip
        self.journey("enter", graph)
        cause = Cause(MembershipChange.Source.RECALCULATION, MembershipChange.Reason.MATCHES,
                      MembershipChange.Reason.NO_LONGER_MATCHES,
                      Membership.Source.RECALCULATION)  # fmt: skip
        before = load()
        with self.scope(ws):
            started = time.perf_counter()
            with transaction.atomic():
                entered, _ = membership_replace(
                    workspace_id=ws, audience_id=audience.id,
                    members_sql="SELECT id FROM profiles_customer WHERE workspace_id = %(ws)s",
                    members_params={"ws": ws}, cause=cause, now=self.at)  # fmt: skip
            written = time.perf_counter() - started
            rounds = consumed = advanced = 0
            counter = StatementCounter()
            with RssPeak() as rss, connection.execute_wrapper(counter):
                while True:
                    rounds += 1
                    read = consume_memberships(workspace_id=ws, now=self.at)
                    moved = advance_due(workspace_id=ws, now=self.at)
                    consumed += read
                    advanced += moved
                    if not read and not moved:
                        waiting = Enrollment.objects.filter(
                            state="waiting", current_step="a_day"
                        ).count()
                        if waiting >= entered:
                            break
                        time.sleep(0.05)  # the watermark: other databases' transactions
            total = time.perf_counter() - started
        say("\n### Entering at once from an audience recalculation\n")
        say(f"{entered:,} customers enter the audience in one `membership_replace` "
            f"({written:.2f} s, commit included); then `consume_memberships` (batches of 1,000 "
            f"changes) and `advance_due` (500) in turns until every one is enrolled and waiting "
            f"at the journey's first delay.\n")  # fmt: skip
        say(
            "| customers | until all enrolled and at the delay | enrolled/s | rounds | "
            "RSS before → peak | load before / after |"
        )
        say("| --- | --- | --- | --- | --- | --- |")
        say(
            f"| {entered:,} | {total:.1f} s | {entered / total:,.0f} | {rounds} | "
            f"{rss.before / MIB:.1f} → {rss.peak / MIB:.1f} MiB | {before} / {load()} |"
        )
        statements = sum(n for n, _ in counter.by_kind.values())
        inside = sum(seconds for _, seconds in counter.by_kind.values())
        say(
            f"\nStatements ({statements / max(entered, 1):.1f} a customer; {inside:.1f} s inside "
            f"`cursor.execute`, {inside / total:.0%} of the time):\n"
        )
        say("| statement | count | seconds | ms each |")
        say("| --- | --- | --- | --- |")
        for kind, (n, seconds) in sorted(counter.by_kind.items(), key=lambda item: -item[1][1]):
            if seconds >= inside / 100:
                say(f"| {kind} | {n:,} | {seconds:.1f} | {seconds / n * 1e3:,.1f} |")
        self.met.append(
            f"| {entered:,} entering at once | (no target) | {total:.1f} s, "
            f"{entered / total:,.0f} enrolled/s | - |"
        )
        self.admin.execute("TRUNCATE journeys_steprun, journeys_enrollment")

    # -- 3. event → resolved wait -------------------------------------------------------------

    def events(self) -> None:
        args = self.args
        ws = self.workspaces["events"]
        self.customers("events", 1, args.event_waiting)
        journey = self.journey("events", EVENT_GRAPH)
        self.waiting("events", journey, 1, args.event_waiting,
                     until=self.at + datetime.timedelta(days=7), kind="event",
                     what="Purchase", step="wait_buy")  # fmt: skip
        with self.scope(ws):
            from profiles.models import Customer

            customers = list(Customer.objects.order_by("id").values_list("id", flat=True))
        total = min(int(args.event_rate * args.event_seconds), len(customers))
        run = EventRun(self, ws, customers[:total])
        before = load()
        run.go()
        latencies = sorted(run.resolved[c] - run.stored[c] for c in run.resolved)
        to_follow = sorted(run.followed[c] - run.stored[c] for c in run.followed)
        to_tick = sorted(run.resolved[c] - run.followed[c] for c in run.resolved
                         if c in run.followed)  # fmt: skip
        say("\n### Event → resolved wait\n")
        say(f"{args.event_waiting:,} enrollments wait for \"Purchase\" (a week's timeout). "
            f"{total:,} events, one per customer, stored at {args.event_rate:g}/s (an `Event` row "
            "a transaction); the follow-up (`process_events_now`) and the tick "
            "(`workspace_tick`, real clock) each loop in a thread of their own. Latency: from "
            "the event's commit to the commit of the tick that wrote its enrollment's step row "
            "with outcome \"event\".\n")  # fmt: skip
        say(
            "| events | resolved | p50 | p95 | max | follow-up runs (mean) | tick runs (mean) | "
            "load before / after |"
        )
        say("| --- | --- | --- | --- | --- | --- | --- | --- |")
        if latencies:
            p50 = statistics.median(latencies)
            p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
            say(
                f"| {total:,} | {len(latencies):,} | {p50 * 1000:,.0f} ms | "
                f"{p95 * 1000:,.0f} ms | {latencies[-1] * 1000:,.0f} ms | "
                f"{len(run.follow_ups):,} ({statistics.mean(run.follow_ups) * 1000:,.0f} ms) | "
                f"{len(run.ticks):,} ({statistics.mean(run.ticks) * 1000:,.0f} ms) | "
                f"{before} / {load()} |"
            )
            say(
                "\nThe two halves (p50 / p95): stored → followed up (its processed-event feed "
                f"row committed) {pct(to_follow, 0.5)} / {pct(to_follow, 0.95)}; followed up → "
                f"resolved by the tick {pct(to_tick, 0.5)} / {pct(to_tick, 0.95)}. The oldest "
                "open transaction on the server (any database: the feeds' watermark waits for "
                f"it), sampled every 0.5 s: median {pct(run.oldest_ages, 0.5, sort=True)}, max "
                f"{pct(run.oldest_ages, 1.0, sort=True)}."
            )
            self.met.append(
                f"| event → resolved wait | (no target) | p50 {p50 * 1000:,.0f} ms, "
                f"p95 {p95 * 1000:,.0f} ms ({len(latencies):,} events) | - |"
            )
        else:
            say(f"| {total:,} | 0 | - | - | - | - | - | - |")


def pct(values: list[float], share: float, *, sort: bool = False) -> str:
    if not values:
        return "-"
    values = sorted(values) if sort else values
    return f"{values[min(len(values) - 1, int(len(values) * share))] * 1000:,.0f} ms"


class EventRun:
    """The producer, the follow-up loop and the tick loop of the latency measurement."""

    def __init__(self, bench: Bench, workspace_id: int, customers: list[int]):
        self.bench, self.ws, self.customers = bench, workspace_id, customers
        self.stored: dict[int, float] = {}
        self.resolved: dict[int, float] = {}
        self.followed: dict[int, float] = {}
        self.oldest_ages: list[float] = []
        self.follow_ups: list[float] = []
        self.ticks: list[float] = []
        self.producing = threading.Event()
        self.done = threading.Event()
        self.errors: list[BaseException] = []

    def go(self) -> None:
        threads = [threading.Thread(target=self._guard, args=(f,), daemon=True)
                   for f in (self.produce, self.follow_up, self.tick)]  # fmt: skip
        threads.append(threading.Thread(target=self.oldest, daemon=True))
        self.producing.set()
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + self.bench.args.event_seconds + 120
        while time.monotonic() < deadline and len(self.resolved) < len(self.customers):
            if self.errors:
                break
            time.sleep(0.2)
        self.done.set()
        for thread in threads:
            thread.join(timeout=60)
        if self.errors:
            raise self.errors[0]

    def _guard(self, function) -> None:
        from django.db import connection

        try:
            with self.bench.scope(self.ws):
                function()
        except BaseException as error:  # reported by go()
            self.errors.append(error)
        finally:
            connection.close()

    def produce(self) -> None:
        from django.utils import timezone

        from profiles.models import Event

        interval = 1 / self.bench.args.event_rate
        start = time.monotonic()
        for index, customer_id in enumerate(self.customers):
            pause = start + index * interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            Event.objects.create(workspace_id=self.ws, customer_id=customer_id, name="Purchase",
                                 properties={"n": index}, occurred_at=timezone.now(),
                                 message_id=f"purchase-{customer_id}", source="api")  # fmt: skip
            self.stored[customer_id] = time.monotonic()
            if self.done.is_set():
                break

    def follow_up(self) -> None:
        from django.db import connection

        from masivo.pipeline import process_events_now
        from masivo.tenancy.models import Workspace

        workspace = Workspace.objects.get(id=self.ws)
        last = 0
        while not self.done.is_set():
            started = time.monotonic()
            if process_events_now(workspace=workspace):
                committed = time.monotonic()
                self.follow_ups.append(committed - started)
                with connection.cursor() as cursor:
                    cursor.execute("SELECT id, customer_id FROM profiles_processedevent "
                                   "WHERE id > %s", [last])  # fmt: skip
                    for row_id, customer_id in cursor.fetchall():
                        last = max(last, row_id)
                        self.followed.setdefault(customer_id, committed)
            else:
                time.sleep(0.02)

    def oldest(self) -> None:
        """The age of the oldest open transaction on the whole server (the feeds' watermark
        waits for it), every 0.5 s, from a connection of its own."""
        import psycopg

        with psycopg.connect(self.bench.admin.info.dsn, password="", autocommit=True) as admin:
            while not self.done.wait(0.5):
                age = admin.execute(
                    "SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0) "
                    "FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> "
                    "pg_backend_pid()").fetchone()[0]  # fmt: skip
                self.oldest_ages.append(float(age))

    def tick(self) -> None:
        from django.db import connection
        from django.utils import timezone

        from journeys.runner import workspace_tick

        last = 0
        while not self.done.is_set():
            started = time.monotonic()
            counts = workspace_tick(workspace_id=self.ws, now=timezone.now())
            committed = time.monotonic()
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT s.id, e.customer_id FROM journeys_steprun s JOIN journeys_enrollment"
                    " e ON e.id = s.enrollment_id WHERE s.id > %s AND s.outcome = 'event'",
                    [last],
                )
                for steprun_id, customer_id in cursor.fetchall():
                    last = max(last, steprun_id)
                    self.resolved.setdefault(customer_id, committed)
            if counts.get("read") or counts.get("advanced"):
                self.ticks.append(committed - started)
            else:
                time.sleep(0.02)


PROFILE_POINTS = [
    ("whole run (`advance_due`)", "journeys/runner.py", "advance_due"),
    ("the claim and its plain moves (`advance_claimed`)", "journeys/batch.py", "advance_claimed"),
    ("  the transitions table (`transitions`)", "journeys/batch.py", "transitions"),
    ("  the versions (`reacting_versions`)", "journeys/engine.py", "reacting_versions"),
    ("`advance` (each enrollment the engine takes)", "journeys/engine.py", "advance"),
    ("psycopg execute (all statements)", "psycopg/cursor.py", "execute"),
]  # fmt: skip


class StatementCounter:
    """A connection.execute_wrapper: statements by kind (first word, table) and their time."""

    def __init__(self):
        self.by_kind: dict[str, list] = defaultdict(lambda: [0, 0.0])

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            words = sql.split()
            kind = words[0].upper() if words else "?"
            table = next((w.strip('"') for w in words if w.strip('"').startswith(
                ("journeys_", "profiles_"))), "")  # fmt: skip
            entry = self.by_kind[f"{kind} {table}".strip()]
            entry[0] += 1
            entry[1] += time.perf_counter() - started


class RssPeak:
    """(RSS before, peak RSS) of this process while the block runs (psutil, every 5 ms)."""

    def __enter__(self):
        import psutil

        self._process = psutil.Process()
        self.before = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)
        return False


if __name__ == "__main__":
    main()
