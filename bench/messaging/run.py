"""Messaging at a million recipients (issue 10 section 10), end to end, printing Markdown.

1. Creates a scratch database and the application role (`bootstrap_app_role`), migrates as
   that role, and generates with set-based SQL as the superuser (generate.py): a campaign
   workspace of `--customers` customers (emails, phones, time zones, consent mixes, devices for
   ~20%), 1% of its emails on the suppression list, marketing messages sent during the past week
   to ~10% (what frequency caps count), and list audiences of all of them and of a tenth
   (`INSERT … SELECT` into `audiences_membership`); a send workspace of `--send` customers who
   may all be sent to. Templates, campaigns, the contact policy (caps `*` 3 per 168 h and email 1
   per 24 h, quiet hours 21:00-08:00 deferred) and connections go through Masivo's services.
2. Snapshot: for each channel, `messaging.outbox.messages_enqueue_from_sql` (the policy in
   SQL, one `INSERT … SELECT`, as the app role under row-level security, commit included)
   against the hand-written `INSERT … SELECT` (baseline.py) as the superuser, on the same
   table state (the messages tables are truncated and re-seeded before each); the two are checked
   to write identical rows. EXPLAIN (ANALYZE, BUFFERS) of both where the ratio misses 1.5x.
   Peak RSS of this (Python) process during the app's snapshot at both audience sizes.
3. Send: the fakes of tests/fakes in a process of their own (fakes.py); `--send-small` then
   `--send` marketing messages (email and `--push-share` push) enqueued by the outbox, then
   `manage.py send_messages --until-idle` in a subprocess (the same pipeline as the task) sends
   them through the real SendGrid and firebase-admin SDKs. Messages/s, the CPU each party used
   (sender, fakes, Postgres, other processes), the sender's peak RSS, and the fakes' count of
   each dedupe key. The floor of the fakes on this machine: raw HTTP POSTs of a rendered email
   to the SendGrid fake from 8 threads, with keep-alive and with a connection per request (as
   the SDK does). `--profile`: one more send under cProfile, with where its time goes.

    .venv/bin/python bench/messaging/run.py                                    # full, ~15 min
    .venv/bin/python bench/messaging/run.py --customers 100000 --send 20000    # quick, ~2 min
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.messaging import baseline, generate  # noqa: E402

DATABASE = "masivo_bench_messaging"
ROLE = "masivo_bench_messaging"
GOAL_RATIO = 1.5
GOAL_RATE = 5000
MIB = 1024 * 1024
CAPS = [{"channel": "*", "limit": 3, "window_hours": 168},
        {"channel": "email", "limit": 1, "window_hours": 24}]  # fmt: skip
QUIET_START, QUIET_END = datetime.time(21, 0), datetime.time(8, 0)


def say(message: str = "") -> None:
    print(message, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a superuser URL (creates the role and scratch database, runs the baseline)",
    )  # fmt: skip
    parser.add_argument("--customers", type=int, default=1_000_000, help="audience size")
    parser.add_argument(
        "--small-audience", type=int, default=None,
        help="second audience size for memory (default customers / 10)",
    )  # fmt: skip
    parser.add_argument("--channels", default="email,push", help="snapshot channels")
    parser.add_argument("--repeat", type=int, default=1, help="timed snapshot pairs per channel")
    parser.add_argument("--send", type=int, default=100_000, help="messages sent (large run)")
    parser.add_argument("--send-small", type=int, default=None,
                        help="messages sent in the small run (default send / 5)")  # fmt: skip
    parser.add_argument("--push-share", type=float, default=0.3, help="push share of the sends")
    parser.add_argument("--floor-requests", type=int, default=5000,
                        help="raw HTTP requests per floor variant")  # fmt: skip
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="one more send of N messages under cProfile")  # fmt: skip
    parser.add_argument("--phases", default="snapshot,send")
    parser.add_argument("--fake-backlog", type=int, default=128,
                        help="the fakes' listen backlog (the tests' servers: 5)")  # fmt: skip
    parser.add_argument("--explain", action="store_true", help="EXPLAIN every snapshot")
    parser.add_argument(
        "--jit-off", action="store_true",
        help="what-if: both snapshot sides with jit = off (the app leaves JIT to the server)",
    )  # fmt: skip
    parser.add_argument("--seed", type=float, default=0.42)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    args.small_audience = args.small_audience or max(1, args.customers // 10)
    args.send_small = args.send_small or max(1, args.send // 5)

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
    os.environ["MASIVO_REDIS_PREFIX"] = f"masivo-bench-messaging-{os.getpid()}:"
    os.environ["DJANGO_SETTINGS_MODULE"] = "masivo.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    try:
        call_command("migrate", verbosity=0)
        Bench(args, f"{host_url}/{DATABASE}", app_url).run()
    finally:
        connections.close_all()
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            say(f"\n(dropped the scratch database {DATABASE})")
        say(f"\nTotal {time.perf_counter() - started:.0f} s.")


class Bench:
    def __init__(self, args, admin_db_url: str, app_url: str):
        import psycopg

        self.args = args
        self.app_url = app_url
        self.admin = psycopg.connect(admin_db_url, autocommit=True)
        self.misses: list[str] = []
        self.met: list[str] = []
        now = datetime.datetime.now(datetime.UTC)
        # 14:30 UTC: 08:30 in Mexico City (just out of quiet hours), 23:30 in Tokyo (in them).
        self.at = now.replace(hour=14, minute=30, second=0, microsecond=0)

    def scope(self, workspace_id: int):
        from masivo.tenancy.context import workspace_scope

        return workspace_scope(workspace_id)

    def run(self) -> None:
        self.describe_machine()
        self.prepare()
        phases = set(self.args.phases.split(","))
        if "snapshot" in phases:
            self.snapshots()
        if "send" in phases:
            self.sends()
        say(f"\nLoad average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}.")
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
            "current_setting('jit'), current_setting('autovacuum')"
        ).fetchone()
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        say("## Messaging benchmark\n")
        say(
            f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC at {commit}"
            f"{' plus uncommitted changes' if dirty else ''}; PostgreSQL {row[0]} "
            f"(shared_buffers {row[1]}, work_mem {row[2]}, max_parallel_workers_per_gather "
            f"{row[3]}, jit {row[4]}, autovacuum {row[5]}), {os.cpu_count()} CPUs, Python "
            f"{sys.version.split()[0]}; load average before: "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}.\n"
        )

    def prepare(self) -> None:
        from audiences.models import Audience
        from masivo.tenancy.actors import Actor
        from masivo.tenancy.models import Workspace
        from masivo.tenancy.roles import Role
        from messaging.models import Campaign
        from messaging.policy.settings import contact_policy_update
        from messaging.template_services import template_create
        from profiles.services.settings import profile_settings_get

        self.actor = Actor(role=Role.ADMIN, user_id=1)
        step = time.perf_counter()
        self.ws_id, self.send_ws_id = generate.create_workspaces(self.admin)
        counts = generate.customers(
            self.admin, workspace=self.ws_id, count=self.args.customers, seed=self.args.seed
        )
        generate.send_customers(self.admin, workspace=self.send_ws_id, count=self.args.send)
        self.workspace = Workspace.objects.get(id=self.ws_id)
        self.send_workspace = Workspace.objects.get(id=self.send_ws_id)
        with self.scope(self.ws_id):
            assert profile_settings_get(workspace=self.workspace).consent_regime == "opt_in"
            contact_policy_update(
                workspace=self.workspace, actor=self.actor,
                changes={"frequency_caps": CAPS, "quiet_hours_enabled": True,
                         "quiet_hours_start": "21:00", "quiet_hours_end": "08:00",
                         "quiet_hours_action": "defer",
                         "quiet_hours_channels": ["email", "push"]},
            )  # fmt: skip
            self.templates = {
                channel: template_create(
                    workspace=self.workspace, name=f"Campaign {channel}", channel=channel,
                    content=TEMPLATES[channel], actor=self.actor,
                )
                for channel in ("email", "push")
            }  # fmt: skip
            self.audiences = {}
            for label, size in (
                ("large", self.args.customers),
                ("small", self.args.small_audience),
            ):
                audience = Audience.objects.create(
                    workspace=self.workspace, name=f"List {label}", kind="list", rules=None
                )
                members = generate.membership(
                    self.admin, workspace=self.ws_id, audience=audience.id, count=size
                )
                self.audiences[label] = (audience, members)
            self.campaigns = {
                channel: Campaign.objects.create(
                    workspace=self.workspace, name=f"Bench {channel}", channel=channel,
                    audience_ids=[self.audiences["large"][0].id],
                )
                for channel in ("email", "push")
            }  # fmt: skip
        state = self.reset_messages()
        say(
            f"Generated in {time.perf_counter() - step:.0f} s (set-based SQL as the superuser): "
            f"{counts['customers']:,} customers ({counts['with_email']:,} with an email, "
            f"{counts['devices']:,} devices), {state['suppressions']:,} suppressed addresses, "
            f"{state['prior_messages']:,} marketing messages sent in the week before; list "
            f"audiences of {self.audiences['large'][1]:,} and {self.audiences['small'][1]:,} "
            f"members; {self.args.send:,} customers in the send workspace. Snapshot time "
            f"{self.at:%H:%M} UTC.\n"
        )

    def reset_messages(self) -> dict:
        """Empty the messages tables (and those that refer to them) and seed them again, so
        that each timed snapshot starts from the same state."""
        self.admin.execute("TRUNCATE messaging_message CASCADE")
        return generate.policy_state(
            self.admin, workspace=self.ws_id, at=self.at, seed=self.args.seed
        )

    # -- snapshot -----------------------------------------------------------------------------

    def app_snapshot(self, channel: str, audience, campaign=None, *, explain: bool = False):
        from django.db import connection

        from messaging.outbox import messages_enqueue_from_sql

        arguments = {
            "workspace": self.workspace, "channel": channel, "kind": "marketing",
            "source_sql": "SELECT customer_id FROM audiences_membership "
                          "WHERE workspace_id = %(ws)s AND audience_id = %(audience)s",
            "source_params": {"ws": self.ws_id, "audience": audience.id},
            "dedupe_key_prefix": f"campaign:{campaign.id if campaign else 0}:",
            "origin": {"source": "campaign", "campaign": campaign.id if campaign else 0},
            "template": self.templates[channel], "at": self.at, "campaign": campaign,
        }  # fmt: skip
        with self.scope(self.ws_id):
            if not explain:
                started = time.perf_counter()
                counts = messages_enqueue_from_sql(**arguments)
                return time.perf_counter() - started, counts
            plan: list[str] = []

            def wrapper(execute, sql, params, many, context):
                if "INSERT INTO messaging_message" not in sql:
                    return execute(sql, params, many, context)
                execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params, many, context)
                plan.extend(row[0] for row in context["cursor"].fetchall())
                raise Explained

            try:
                with connection.execute_wrapper(wrapper):
                    messages_enqueue_from_sql(**arguments)
            except Explained:
                pass
            return "\n".join(plan)

    def baseline_snapshot(self, channel: str, audience, campaign, *, explain: bool = False):
        import psycopg

        from messaging.policy.settings import known_zones
        from messaging.policy.vocabulary import EMAIL_PATTERN

        sql = baseline.snapshot_sql(channel=channel, caps=CAPS, quiet_end=QUIET_END)
        params = baseline.snapshot_params(
            workspace=self.ws_id, audience=audience.id, at=self.at, caps=CAPS, channel=channel,
            quiet_start=QUIET_START, quiet_end=QUIET_END, zones=sorted(known_zones()),
            workspace_zone="America/Mexico_City", prefix=f"campaign:{campaign.id}:",
            origin=json.dumps({"source": "campaign", "campaign": campaign.id}),
            campaign=campaign.id, template=self.templates[channel].id,
            version=self.version_id(channel), email_pattern=EMAIL_PATTERN,
        )  # fmt: skip
        if explain:
            with self.admin.transaction():
                plan = "\n".join(
                    row[0]
                    for row in self.admin.execute(
                        "EXPLAIN (ANALYZE, BUFFERS) " + sql, params
                    ).fetchall()
                )
                raise psycopg.Rollback
            return plan
        started = time.perf_counter()
        counts = dict(self.admin.execute(sql, params).fetchall())
        return time.perf_counter() - started, counts

    def version_id(self, channel: str) -> int:
        from messaging.models import TemplateVersion

        with self.scope(self.ws_id):
            return (
                TemplateVersion.objects.filter(template=self.templates[channel])
                .order_by("-number").values_list("id", flat=True).first()
            )  # fmt: skip

    def written_rows(self) -> str:
        return (
            "SELECT customer_id, dedupe_key, campaign_id, template_version_id, channel, kind, "
            "address, status, decision, decision_code, due_at, origin::text, created_at "
            "FROM messaging_message WHERE dedupe_key LIKE 'campaign:%'"
        )

    def snapshots(self) -> None:
        from django.db import connection

        say("### Recipient snapshot\n")
        if self.args.jit_off:
            # What-if: both sides without JIT (the app does not turn it off for this statement).
            with connection.cursor() as cursor:
                cursor.execute("SET jit = off")
            self.admin.execute("SET jit = off")
            say("**What-if: `SET jit = off` on both sides' sessions.**\n")
        rows, explains = [], []
        for channel in self.args.channels.split(","):
            audience, members = self.audiences["large"]
            campaign = self.campaigns[channel]
            app_times, sql_times, app_rss = [], [], []
            monitor = Monitor(self.admin).start()
            for _ in range(self.args.repeat):
                self.reset_messages()
                with RssPeak() as rss:
                    seconds, counts = self.app_snapshot(channel, audience, campaign)
                app_times.append(seconds)
                app_rss.append(rss)
                by_code = counts.by_code
                self.admin.execute("DROP TABLE IF EXISTS bench_app_rows")
                self.admin.execute(f"CREATE UNLOGGED TABLE bench_app_rows AS {self.written_rows()}")
                self.reset_messages()
                seconds, sql_counts = self.baseline_snapshot(channel, audience, campaign)
                sql_times.append(seconds)
                differ = self.admin.execute(
                    f"SELECT (SELECT count(*) FROM ({self.written_rows()} EXCEPT "
                    "SELECT * FROM bench_app_rows) a), (SELECT count(*) FROM (SELECT * FROM "
                    f"bench_app_rows EXCEPT {self.written_rows()}) b)"
                ).fetchone()
                if differ != (0, 0) or sql_counts != by_code:
                    raise SystemExit(
                        f"{channel}: the hand-written snapshot wrote other rows than the app "
                        f"({differ[0]} only in the baseline, {differ[1]} only in the app; "
                        f"counts {by_code} vs {sql_counts})"
                    )
            # The small audience: memory flat in the number of recipients.
            self.reset_messages()
            small, small_members = self.audiences["small"]
            with RssPeak() as small_rss:
                small_seconds, _ = self.app_snapshot(channel, small)
            usage = monitor.stop()
            app, sql = statistics.median(app_times), statistics.median(sql_times)
            ratio = app / sql
            rows.append((channel, members, by_code, app, sql, ratio, app_rss, small_members,
                         small_seconds, small_rss, usage))  # fmt: skip
            if ratio > GOAL_RATIO or self.args.explain:
                self.reset_messages()
                app_plan = self.app_snapshot(channel, audience, campaign, explain=True)
                self.reset_messages()
                sql_plan = self.baseline_snapshot(channel, audience, campaign, explain=True)
                explains.append((channel, ratio, app_plan, sql_plan))
        say(
            "Both sides write the same rows (checked: every column the policy decides, dedupe "
            "key, campaign, template version; `EXCEPT` both ways) into the same tables, each from "
            "the same state (messages truncated and re-seeded before each run). App: "
            "`messages_enqueue_from_sql` as the app role in `workspace_scope` (RLS), commit "
            "included. Hand-written: baseline.py as the superuser, autocommit.\n"
        )
        say("| channel | recipients | decisions | app | hand-written SQL | ratio | app rows/s "
            "| SQL rows/s | CPU cores: postgres / bench / other |")  # fmt: skip
        say("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for channel, members, by_code, app, sql, ratio, *_, usage in rows:
            ordered = sorted(by_code.items(), key=lambda item: -item[1])
            decisions = ", ".join(f"{code} {n:,}" for code, n in ordered)
            mark = f"**{ratio:.2f}x**" if ratio > GOAL_RATIO else f"{ratio:.2f}x"
            say(f"| {channel} | {members:,} | {decisions} | {app:.2f} s | {sql:.2f} s | {mark} "
                f"| {members / app:,.0f} | {members / sql:,.0f} | {usage['postgres']:.2f} / "
                f"{usage['bench']:.2f} / {usage['other']:.2f} |")  # fmt: skip
        say("\nMemory of the Python process during the app's snapshot (RSS sampled every 5 ms):\n")
        say("| channel | recipients | RSS before → peak | time | rows/s |")
        say("| --- | --- | --- | --- | --- |")
        for (
            channel,
            members,
            _,
            app,
            _,
            _,
            app_rss,
            small_members,
            small_seconds,
            small_rss,
            _,
        ) in rows:
            big = app_rss[0]
            say(f"| {channel} | {members:,} | {big[0] / MIB:.1f} → {big[1] / MIB:.1f} MiB "
                f"| {app:.2f} s | {members / app:,.0f} |")  # fmt: skip
            say(f"| {channel} | {small_members:,} | {small_rss[0] / MIB:.1f} → "
                f"{small_rss[1] / MIB:.1f} MiB | {small_seconds:.2f} s "
                f"| {small_members / small_seconds:,.0f} |")  # fmt: skip
        if explains:
            say("\nWhere the time goes, from the plans below (EXPLAIN ANALYZE runs slower than "
                "the timed runs):\n")  # fmt: skip
            say("| channel | side | execution | of which JIT (compiling the plan) | planning |")
            say("| --- | --- | --- | --- | --- |")
            for channel, _, app_plan, sql_plan in explains:
                for side, plan in (("app", app_plan), ("hand-written", sql_plan)):
                    facts = plan_facts(plan)
                    say(f"| {channel} | {side} | {facts['execution']:.0f} ms "
                        f"| {facts['jit']:.0f} ms ({facts['functions']} functions) "
                        f"| {facts['planning']:.1f} ms |")  # fmt: skip
        for channel, ratio, app_plan, sql_plan in explains:
            say(f"\nEXPLAIN (ANALYZE, BUFFERS), {channel} snapshot ({ratio:.2f}x), app (app role, "
                f"RLS):\n\n```\n{app_plan}\n```\n\nHand-written (superuser):\n\n"
                f"```\n{sql_plan}\n```")  # fmt: skip
        worst = max(rows, key=lambda r: r[5])
        growth = max(abs((r[6][0][1] - r[6][0][0]) - (r[9][1] - r[9][0])) for r in rows) / MIB
        self.met.append(
            f"| snapshot vs hand-written SQL | ≤ {GOAL_RATIO}x | "
            + ", ".join(f"{r[0]} {r[5]:.2f}x" for r in rows)
            + f" | {'yes' if worst[5] <= GOAL_RATIO else '**no**'} |"
        )
        self.met.append(
            f"| snapshot memory flat in recipients | flat | peak growth differs by "
            f"{growth:.1f} MiB between {rows[0][7]:,} and {rows[0][1]:,} recipients | "
            f"{'yes' if growth < 5 else '**no**'} |"
        )

    # -- send ---------------------------------------------------------------------------------

    def sends(self) -> None:
        from masivo.tenancy.models import Workspace  # noqa: F401 (the app is set up)
        from messaging.services import connection_create
        from messaging.template_services import template_create

        self.admin.execute("TRUNCATE messaging_message CASCADE")
        fakes = subprocess.Popen(
            [sys.executable, "-m", "bench.messaging.fakes", str(self.args.fake_backlog)],
            cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            self.fakes = fakes
            info = json.loads(fakes.stdout.readline())
            self.fake_info = info
            with self.scope(self.send_ws_id):
                connection_create(
                    workspace=self.send_workspace, provider="sendgrid", actor=self.actor,
                    values={"api_key": info["sendgrid_key"], "from_email": "news@acme.example",
                            "from_name": "Acme", "reply_to": "help@acme.example"},
                )  # fmt: skip
                connection_create(
                    workspace=self.send_workspace,
                    provider="fcm",
                    actor=self.actor,
                    values={"service_account": info["service_account"]},
                )
                self.send_templates = {
                    channel: template_create(
                        workspace=self.send_workspace, name=f"Send {channel}", channel=channel,
                        content=TEMPLATES[channel], actor=self.actor,
                    )
                    for channel in ("email", "push")
                }  # fmt: skip
            runs = [("small", self.args.send_small), ("large", self.args.send)]
            results = [self.send_run(label, size, index) for index, (label, size) in
                       enumerate(runs, 1)]  # fmt: skip
            floors = self.http_floor()
            profile = None
            if self.args.profile:
                profile = self.send_run("profile", self.args.profile, 3, profile=True)
        finally:
            fakes.stdin.close()
            fakes.wait(timeout=30)
        self.report_sends(results, floors, profile)

    def enqueue_sends(self, size: int, run: int) -> dict:
        from messaging.outbox import messages_enqueue_from_sql

        first = self.admin.execute(
            "SELECT min(id) FROM profiles_customer WHERE workspace_id = %s", [self.send_ws_id]
        ).fetchone()[0]
        push = round(size * self.args.push_share)
        email = size - push
        counts = defaultdict(int)
        with self.scope(self.send_ws_id):
            for channel, low, count in (("email", first, email), ("push", first + email, push)):
                if not count:
                    continue
                result = messages_enqueue_from_sql(
                    workspace=self.send_workspace, channel=channel, kind="marketing",
                    source_sql="SELECT id AS customer_id FROM profiles_customer WHERE "
                               "workspace_id = %(ws)s AND id >= %(low)s AND id < %(high)s",
                    source_params={"ws": self.send_ws_id, "low": low, "high": low + count},
                    dedupe_key_prefix=f"send{run}:", origin={"source": "campaign"},
                    template=self.send_templates[channel],
                )  # fmt: skip
                for code, n in result.by_code.items():
                    counts[f"{channel} {code}"] += n
        self.admin.execute("ANALYZE messaging_message")
        return dict(counts)

    def send_run(self, label: str, size: int, run: int, *, profile: bool = False) -> dict:
        enqueued = self.enqueue_sends(size, run)
        info = self.fake_info
        env = os.environ | {
            "DATABASE_URL": self.app_url,
            "MASIVO_SENDGRID_API_URL": info["sendgrid_url"],
            "MASIVO_FCM_API_URL": info["fcm_url"],
            "MASIVO_GOOGLE_TOKEN_URL": info["token_url"],
            "MASIVO_TWILIO_API_URL": info["twilio_url"],
            # The default is 100 a second per provider and workspace: an operator's setting,
            # not what this measures.
            "MASIVO_SEND_RATE_PER_SECOND": "10000000",
            "PYTHONUNBUFFERED": "1",
        }
        command = [sys.executable, "manage.py", "send_messages", "--until-idle",
                   "--workspace", str(self.send_ws_id)]  # fmt: skip
        profile_path = None
        if profile:
            handle, profile_path = tempfile.mkstemp(suffix=".prof", prefix="bench-messaging-")
            os.close(handle)
            command[1:1] = ["-m", "cProfile", "-o", profile_path]
        started = time.perf_counter()
        sender = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)  # fmt: skip
        monitor = Monitor(self.admin, sender.pid, self.fakes.pid).start()
        out, err = sender.communicate()
        wall = time.perf_counter() - started
        usage = monitor.stop()
        if sender.returncode != 0:
            raise SystemExit(f"the sender failed:\n{err[-3000:]}")
        statuses = dict(
            self.admin.execute(
                "SELECT status, count(*) FROM messaging_message WHERE dedupe_key LIKE %s "
                "GROUP BY status",
                [f"send{run}:%"],
            ).fetchall()
        )
        window = self.admin.execute(
            "SELECT extract(epoch FROM max(sent_at) - min(sending_at)) FROM messaging_message "
            "WHERE dedupe_key LIKE %s",
            [f"send{run}:%"],
        ).fetchone()[0]
        self.fakes.stdin.write("counts\n")
        self.fakes.stdin.flush()
        accepted = json.loads(self.fakes.stdout.readline())
        result = {
            "label": label, "size": size, "enqueued": enqueued, "wall": wall,
            "window": float(window or wall), "statuses": statuses, "usage": usage,
            "accepted": accepted, "output": out.strip(), "profile": profile_path,
        }  # fmt: skip
        say(f"  sent {label} ({size:,}): {statuses} in {wall:.1f} s ({out.strip()})")
        return result

    def http_floor(self) -> list[tuple[str, int, float]]:
        """Raw HTTP POSTs of one rendered email (the payload of a message just sent) to the
        SendGrid fake from 8 threads: what the fake and this machine's loopback take."""
        payload = self.admin.execute(
            "SELECT payload, address, dedupe_key FROM messaging_message "
            "WHERE channel = 'email' AND status = 'sent' LIMIT 1"
        ).fetchone()
        body = json.dumps({
            "personalizations": [{"to": [{"email": payload[1]}],
                                  "custom_args": {"masivo_dedupe_key": "floor"}}],
            "from": {"email": "news@acme.example", "name": "Acme"},
            "subject": payload[0]["subject"],
            "content": [{"type": "text/plain", "value": payload[0]["text"]},
                        {"type": "text/html", "value": payload[0]["html"]}],
        }).encode()  # fmt: skip
        url = urlsplit(self.fake_info["sendgrid_url"])
        headers = {"Authorization": f"Bearer {self.fake_info['sendgrid_key']}",
                   "Content-Type": "application/json"}  # fmt: skip
        total = self.args.floor_requests
        results = []
        variants = [("keep-alive, one connection per thread", True),
                    ("a new connection per request (as the SDK does)", False)]  # fmt: skip
        for label, keep_alive in variants:

            def worker(count: int, keep_alive=keep_alive) -> None:
                conn = http.client.HTTPConnection(url.hostname, url.port)
                for _ in range(count):
                    if not keep_alive:
                        conn = http.client.HTTPConnection(url.hostname, url.port)
                    conn.request("POST", "/v3/mail/send", body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    assert response.status == 202, response.status
                    if not keep_alive:
                        conn.close()
                conn.close()

            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(worker, [total // 8] * 8))
            results.append((label, total // 8 * 8, time.perf_counter() - started))
        return results

    def report_sends(self, results, floors, profile) -> None:
        say("\n### Render and hand-over\n")
        say(
            "`manage.py send_messages --until-idle --workspace <send workspace>` in a subprocess "
            f"(batches of 500, hand-over chunks of 20, 8 concurrent SendGrid requests, FCM "
            f"`send_each` chunks of 100; send rate limit raised out of the way), marketing "
            f"messages ({1 - self.args.push_share:.0%} email with a tracked link and unsubscribe "
            f"headers, {self.args.push_share:.0%} push to one device each), the fakes in another "
            "process. Rate = messages / (last `sent_at` - first claim); wall includes Django's "
            "start-up. CPU in cores (CPU seconds / wall seconds) from /proc.\n"
        )
        say("| messages | sent | wall | messages/s | sender / fakes / postgres / other cores "
            "| sender peak RSS "
            "| fakes (cumulative over runs): keys accepted, most per key |")  # fmt: skip
        say("| --- | --- | --- | --- | --- | --- | --- |")
        for r in results:
            u = r["usage"]
            sent = r["statuses"].get("sent", 0)
            say(
                f"| {r['size']:,} | {sent:,} of {sum(r['statuses'].values()):,} "
                f"| {r['wall']:.1f} s "
                f"| {sent / r['window']:,.0f} | {u['sender']:.2f} / {u['fakes']:.2f} / "
                f"{u['postgres']:.2f} / {u['other']:.2f} | {u['rss'] / MIB:.0f} MiB | "
                f"{r['accepted']['email_keys'] + r['accepted']['push_keys']:,}, "
                f"{max(r['accepted']['email_max'], r['accepted']['push_max'])} |"
            )
        say("\nFloor of the fakes (raw `http.client` POSTs of one rendered email to the SendGrid "
            "fake, 8 threads, same run):\n")  # fmt: skip
        say("| client | requests | seconds | requests/s |")
        say("| --- | --- | --- | --- |")
        for label, count, seconds in floors:
            say(f"| {label} | {count:,} | {seconds:.2f} | {count / seconds:,.0f} |")
        large = results[-1]
        rate = large["statuses"].get("sent", 0) / large["window"]
        u = large["usage"]
        cpu_per_message = (
            (u["sender"] + u["fakes"] + u["postgres"])
            * large["wall"]
            / max(large["statuses"].get("sent", 1), 1)
        )
        say(
            f"\nCPU per message sent (large run, sender + fakes + Postgres): "
            f"{cpu_per_message * 1e6:,.0f} µs, i.e. at most {2 / cpu_per_message:,.0f} "
            f"messages/s on 2 free cores."
        )
        if profile:
            self.report_profile(profile)
        self.met.append(
            f"| render and hand over | ≥ {GOAL_RATE:,} messages/s | {rate:,.0f} messages/s "
            f"({large['size']:,} messages) | {'yes' if rate >= GOAL_RATE else '**no**'} |"
        )
        small = results[0]
        rss_small, rss_large = small["usage"]["rss"] / MIB, large["usage"]["rss"] / MIB
        self.met.append(
            f"| sender memory flat in recipients | flat | peak RSS {rss_small:.0f} MiB at "
            f"{small['size']:,}, {rss_large:.0f} MiB at {large['size']:,} | "
            f"{'yes' if rss_large - rss_small < 10 else '**no**'} |"
        )
        duplicates = max(
            max(r["accepted"]["email_max"], r["accepted"]["push_max"]) for r in results
        )
        self.met.append(
            f"| each dedupe key handed over once | 1 | at most {duplicates} | "
            f"{'yes' if duplicates <= 1 else '**no**'} |"
        )

    def report_profile(self, profile) -> None:
        stats = pstats.Stats(profile["profile"])
        total = stats.total_tt
        sent = profile["statuses"].get("sent", 0)
        entries = stats.stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
        say(
            f"\ncProfile of the sender's main thread ({profile['size']:,} messages, {sent:,} "
            f"sent in {profile['wall']:.1f} s under the profiler; provider calls run in pool "
            "threads, which show here as the main thread waiting in `send`):\n"
        )
        say(
            "| where the sender's main thread spends its time (inclusive) | seconds | share "
            "| per message |"
        )
        say("| --- | --- | --- | --- |")
        for label, path, name in PROFILE_POINTS:
            seconds = sum(
                v[3]
                for (file, _, func), v in entries.items()
                if file.endswith(path) and func == name
            )
            if seconds:
                say(f"| {label} | {seconds:.2f} | {seconds / total:.0%} | "
                    f"{seconds / max(sent, 1) * 1e6:,.0f} µs |")  # fmt: skip
        say("\n| function (own time) | seconds | share |")
        say("| --- | --- | --- |")
        top = sorted(entries.items(), key=lambda item: -item[1][2])[:15]
        for (file, line, func), v in top:
            short = "/".join(Path(file).parts[-2:]) if file != "~" else "builtin"
            say(f"| `{func}` ({short}:{line}) | {v[2]:.2f} | {v[2] / total:.0%} |")


PROFILE_POINTS = [
    ("whole run (`send_until_idle`)", "messaging/sending/pipeline.py", "send_until_idle"),
    ("claim (`messages_claim`)", "messaging/sending/store.py", "messages_claim"),
    ("send-rate tokens (Redis)", "messaging/sending/ratelimit.py", "send_tokens_take"),
    ("load the claimed messages + customers (ORM)", "django/db/models/query.py", "__iter__"),
    ("render (`_render`: Jinja2 sandbox, links)", "messaging/sending/pipeline.py", "_render"),
    ("  of which signed links (`message_links`)", "messaging/unsubscribe.py", "message_links"),
    ("email prepare (tracking, headers, body)", "messaging/sending/senders/sendgrid.py", "prepare"),
    ("push prepare (FCM messages)", "messaging/sending/senders/fcm.py", "prepare"),
    ("mark handed over (one UPDATE per chunk)", "messaging/sending/store.py",
     "messages_mark_handover"),
    ("SendGrid hand-over (waiting on the pool)", "messaging/sending/senders/sendgrid.py", "send"),
    ("FCM hand-over (`send_each`)", "messaging/sending/senders/fcm.py", "send"),
    ("record outcomes (one statement per chunk)", "messaging/sending/store.py",
     "messages_record_outcomes"),
    ("psycopg execute (all statements)", "psycopg/cursor.py", "execute"),
]  # fmt: skip

TEMPLATES = {
    "email": {
        "subject": "{{ customer.first_name }}, tu selección de la semana",
        "preheader": "Novedades elegidas para ti",
        "html": (
            "<html><head><style>p { color: #333; font-family: sans-serif; } .cta { color: "
            "#0a6; }</style></head><body><h1>Hola {{ customer.first_name }}</h1>"
            "<p>Tu plan: {{ customer.traits.plan | default('free') }}.</p>"
            "<p>Esta semana elegimos para ti nuevas ofertas en calzado, ropa y hogar.</p>"
            '<p><a class="cta" href="https://shop.example.com/ofertas?c=semana">Ver ofertas</a>'
            "</p><p>Gracias por comprar con nosotros.</p>"
            '<p><a href="{{ unsubscribe_url }}">Darse de baja</a></p></body></html>'
        ),
        "text": "",
    },
    "push": {
        "title": "Hola {{ customer.first_name }}",
        "body": "Nuevas ofertas para tu plan {{ customer.traits.plan | default('free') }}",
        "deep_link": "acme://ofertas",
        "data": {"campaign": "semana"},
    },
}


def plan_facts(plan: str) -> dict:
    """Execution and planning time, JIT's total and functions, from an EXPLAIN ANALYZE text."""
    import re

    def number(pattern: str) -> float:
        found = re.search(pattern, plan)
        return float(found.group(1)) if found else 0.0

    return {
        "execution": number(r"Execution Time: ([0-9.]+) ms"),
        "planning": number(r"Planning Time: ([0-9.]+) ms"),
        "jit": number(r"Timing: .*Total ([0-9.]+) ms"),
        "functions": int(number(r"Functions: ([0-9]+)")),
    }


class Explained(Exception):
    """Raised inside the app's transaction once its statement was EXPLAINed: rolls it back."""


class RssPeak:
    """(RSS before, peak RSS) of this process while the block runs, sampled every 5 ms."""

    def __enter__(self):
        self.before = self.peak = _rss(os.getpid())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss(os.getpid()))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss(os.getpid()))
        return False

    def __getitem__(self, index):
        return (self.before, self.peak)[index]


def _rss(pid: int, field: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def _busy() -> float:
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class Monitor:
    """CPU of the sender, the fakes, the database's backends (of the scratch database), this
    process, and everything else, while a send runs; the sender's peak RSS (VmHWM)."""

    def __init__(self, admin, sender_pid: int | None = None, fakes_pid: int | None = None):
        import psycopg

        # A connection of its own: the sampling thread must not share the runner's.
        self.admin = psycopg.connect(admin.info.dsn, password="", autocommit=True)
        self.groups = {os.getpid(): "bench"}
        if sender_pid:
            self.groups[sender_pid] = "sender"
        if fakes_pid:
            self.groups[fakes_pid] = "fakes"
        self.sender = sender_pid
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.rss = 0
        self._stop = threading.Event()

    def start(self) -> Monitor:
        self.start_busy, self.started = _busy(), time.monotonic()
        for pid in list(self.groups):
            self.first[pid] = _cpu(pid) or 0.0
        self.backends(initial=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def backends(self, *, initial: bool = False) -> None:
        rows = self.admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [DATABASE]
        ).fetchall()
        pids = [row[0] for row in rows]
        for pid in pids:
            if pid not in self.groups:
                self.groups[pid] = "postgres"
                self.first[pid] = (_cpu(pid) or 0.0) if initial else 0.0

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(0.1):
            ticks += 1
            if ticks % 5 == 0:
                self.backends()
            for pid in list(self.groups):
                value = _cpu(pid)
                if value is not None:
                    self.last[pid] = value
            if self.sender:
                self.rss = max(self.rss, _rss(self.sender, "VmHWM"))

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        self.admin.close()
        seconds = time.monotonic() - self.started
        busy = _busy() - self.start_busy
        used: dict[str, float] = defaultdict(float)
        for pid, group in self.groups.items():
            last = self.last.get(pid, _cpu(pid) or self.first.get(pid, 0.0))
            used[group] += max(0.0, last - self.first.get(pid, 0.0))
        ours = sum(used.values())
        return {
            "sender": used["sender"] / seconds, "fakes": used["fakes"] / seconds,
            "postgres": used["postgres"] / seconds, "bench": used["bench"] / seconds,
            "other": max(0.0, busy - ours) / seconds, "rss": self.rss, "seconds": seconds,
        }  # fmt: skip


if __name__ == "__main__":
    main()
