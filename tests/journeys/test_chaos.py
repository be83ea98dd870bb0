"""A journey under SIGKILL: CHAOS_CUSTOMERS (10,000 by default) customers enter a journey when an
audience takes them in (memberships written by audiences.membership, read from its change feed),
wait an hour, get an email, wait up to six hours for a click (a push and the end if it comes; a
day's delay, then a push, if not; an order during that day is the goal). The tick runs as
`manage.py run_journeys --until-idle --now <t>` in a subprocess killed with SIGKILL at random
points, again and again, and restarted; the test's clock steps past each delay and timeout, and
Redis (a database of this test's own) is flushed once while a tick runs. Then the sender
(`manage.py send_messages --until-idle --recover`) hands the messages to the SendGrid and FCM
fakes, uninterrupted.

Each enrollment must end as an uninterrupted run ends it (its state, reason, finish time and its
exact step log: one row per (step, visit), with the outcome and the next step), each journey
message must exist once under its dedupe key `journey:<enrollment>:<step>:<visit>`, and the
fakes must have received each exactly once. The figures are printed.

`CHAOS_CUSTOMERS` sets the customers, `CHAOS_KILLS` the kills per clock step (2; there are five
steps), `CHAOS_SEED` the kill points, `CHAOS_REDIS_URL` the Redis database this test owns and
flushes (redis://127.0.0.1:6379/10: not the suite's shared one, where other runs keep counters).

Time goes to the sends (the engine takes each enrollment at a send, 25 a transaction); the
delays and timeouts move set-based in the tick's claim (journeys/batch.py). Measured on this
2-core machine (2026-12-01 22:26-22:34 UTC, load average about 1): 10,000 customers, 9 kills,
Redis flushed once, 406 s of ticks and 466 s with the send (17,500 messages, each received
once); 1,559 s before the set-based moves. A CI that is slower can run it with
`CHAOS_CUSTOMERS=1000`.
"""

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction

from audiences.membership import cause_list, membership_replace
from audiences.models import Audience
from journeys import services
from masivo.pipeline import process_events_now
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import all_workspaces, workspace_scope
from masivo.tenancy.models import Workspace
from masivo.tenancy.redis import get_redis
from masivo.tenancy.roles import Role
from tests.fakes.conftest import fcm_fake, fcm_server, sendgrid_fake, sendgrid_server  # noqa: F401
from tests.feeds.support import wait_until_committed_rows_readable
from tests.messaging.test_sending_support import connect_fcm, connect_sendgrid, template_version

ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = int(os.environ.get("CHAOS_CUSTOMERS", "10000"))
KILLS = int(os.environ.get("CHAOS_KILLS", "2"))
REDIS_URL = os.environ.get("CHAOS_REDIS_URL", "redis://127.0.0.1:6379/10")
MARKETER = Actor(role=Role.MARKETER)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(3600)]  # fmt: skip

INSERT_CUSTOMERS = """
INSERT INTO profiles_customer (
    workspace_id, external_id, email, phone, first_name, last_name, gender, birth_date,
    country, city, timezone, locale, tier, status, is_anonymous, tags, traits, consent,
    consent_vendors, consent_string, consent_string_version,
    created_at, updated_at, last_seen_at, purchase_count, purchase_total, last_purchase_at,
    purchases_30d_count, purchases_30d_total, purchases_month_count, purchases_month_total)
SELECT %(workspace)s, 'chaos-' || g, 'chaos' || g || '@example.com', NULL, 'Ana ' || g, '', '',
       NULL, 'MX', '', 'UTC', 'es', '', 'active', false, '[]', '{}',
       '{"email_marketing": {"status": "granted"}, "push_notifications": {"status": "granted"}}',
       '{}', '', '', now(), now(), NULL, 0, 0, NULL, 0, 0, 0, 0
  FROM generate_series(1, %(count)s) AS g;
INSERT INTO profiles_device (workspace_id, customer_id, token, platform, model, os_version,
                             push_enabled, created_at, updated_at, expires_at)
SELECT workspace_id, id, 'chaos-token-' || id, 'android', '', '', true, now(), now(),
       now() + interval '30 days'
  FROM profiles_customer WHERE workspace_id = %(workspace)s
"""
EVERYONE = "SELECT id FROM profiles_customer WHERE workspace_id = %(ws)s"
# The customer's number g (from external_id 'chaos-<g>') picks the path: g % 4 = 0 click,
# g % 4 = 1 order during the day's delay (the goal), the others neither.
INSERT_EVENTS = """
INSERT INTO profiles_event (workspace_id, type, name, properties, occurred_at, received_at,
                            message_id, customer_id, user_id, anonymous_id, context, source)
SELECT workspace_id, 'track', %(name)s, '{}', %(at)s, %(at)s, %(name)s || '-' || id, id,
       external_id, '', '{}', 'api'
  FROM profiles_customer
 WHERE workspace_id = %(workspace)s AND (substring(external_id from 7))::int %% 4 = %(rest)s
"""
STATES = """
SELECT (substring(c.external_id from 7))::int, e.id, e.state, e.exit_reason, e.current_step,
       e.finished_at, e.next_run_at,
       (SELECT array_agg(ARRAY[s.step, s.visit::text, s.outcome, s.next_step] ORDER BY s.id)
          FROM journeys_steprun s WHERE s.enrollment_id = e.id)
  FROM journeys_enrollment e JOIN profiles_customer c ON c.id = e.customer_id
 WHERE e.journey_id = %(journey)s
"""


def journey_graph(email: int, push: int) -> dict:
    return {
        "trigger": {"type": "audience_entered", "audience_id": 0},
        "goal": {"event": "Order Completed", "within_days": 7},
        "start": "pause",
        "steps": {
            "pause": {"type": "delay", "duration": {"hours": 1}, "next": "welcome"},
            "welcome": {"type": "send", "channel": "email", "template_id": email,
                        "next": "wait_click"},
            "wait_click": {"type": "wait_event", "event": "Link Clicked", "timeout": {"hours": 6},
                           "next": "thanks", "timeout_next": "a_day"},
            "thanks": {"type": "send", "channel": "push", "template_id": push,
                       "next": "done_clicked"},
            "done_clicked": {"type": "exit"},
            "a_day": {"type": "delay", "duration": {"days": 1}, "next": "nudge"},
            "nudge": {"type": "send", "channel": "push", "template_id": push, "next": "done"},
            "done": {"type": "exit"},
        },
    }  # fmt: skip


class Clock:
    """The injected clock's steps: in the past, so the sender (real time) finds the messages
    due; at noon UTC, far from any quiet hours."""

    def __init__(self):
        self.entered = (datetime.now(UTC) - timedelta(days=3)).replace(
            hour=12, minute=0, second=0, microsecond=0
        )
        self.emailed = self.entered + timedelta(hours=1, minutes=1)
        self.clicked = self.emailed + timedelta(minutes=10)
        self.timed_out = self.emailed + timedelta(hours=6, minutes=1)
        self.ordered = self.timed_out + timedelta(hours=2)
        self.nudged = self.timed_out + timedelta(days=1, minutes=1)


def expected_walk(g: int, clock: Clock) -> tuple:
    """(state, exit reason, step, finished at, steps) an uninterrupted run gives customer g."""
    head = [("pause", "1", "passed", "welcome"), ("welcome", "1", "sent", "wait_click")]
    if g % 4 == 0:
        steps = [*head, ("wait_click", "1", "event", "thanks"),
                        ("thanks", "1", "sent", "done_clicked"),
                        ("done_clicked", "1", "exited", "")]  # fmt: skip
        return "completed", "reached an exit step", "done_clicked", clock.clicked, steps
    steps = [*head, ("wait_click", "1", "timed_out", "a_day")]
    if g % 4 == 1:
        steps += [("a_day", "1", "waiting", "")]
        return "converted", "goal: Order Completed", "a_day", clock.ordered, steps
    steps += [("a_day", "1", "passed", "nudge"), ("nudge", "1", "sent", "done"),
              ("done", "1", "exited", "")]  # fmt: skip
    return "completed", "reached an exit step", "done", clock.nudged, steps


@pytest.fixture
def own_redis(settings):
    """This test's Redis database (it flushes it), for this process and the subprocesses."""
    settings.REDIS_URL = REDIS_URL
    get_redis.cache_clear()
    yield get_redis()
    get_redis.cache_clear()


def _env(sendgrid, fcm) -> dict:
    database = connection.settings_dict
    url = (f"postgresql://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
           f"{database['PORT']}/{database['NAME']}")  # fmt: skip
    env = os.environ | {
        "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "masivo.settings",
        "REDIS_URL": REDIS_URL, "MASIVO_REDIS_PREFIX": django_settings.MASIVO_REDIS_PREFIX,
        "MASIVO_SENDGRID_API_URL": sendgrid.url, "MASIVO_FCM_API_URL": fcm.url,
        "MASIVO_GOOGLE_TOKEN_URL": fcm.token_url, "MASIVO_SEND_RATE_PER_SECOND": "1000000",
        "MASIVO_SEND_RETRY_FIRST_SECONDS": "1", "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    env.pop("DATABASE_OWNER_URL", None)
    return env


class Chaos:
    def __init__(self, workspace, journey, env, clock):
        self.workspace, self.journey, self.env, self.clock = workspace, journey, env, clock
        self.chance = random.Random(os.environ.get("CHAOS_SEED"))
        self.kills = 0
        self.flushed = 0

    def states(self) -> dict[int, tuple]:
        with workspace_scope(self.workspace.id), connection.cursor() as cursor:
            cursor.execute(STATES, {"journey": self.journey.id})
            return {row[0]: row[1:] for row in cursor.fetchall()}

    def tick(self, now: datetime, done, *, flush: bool = False) -> None:
        """Tick at `now` under kills until `done(states)` holds: KILLS kills at random points
        (Redis flushed while the first one ticks, when asked), then runs to the end, again
        while the feeds' rows are not yet readable (other databases' transactions on this
        server hold the watermark back)."""
        command = [sys.executable, "manage.py", "run_journeys", "--until-idle", "--skip-checks",
                   "--now", now.isoformat()]  # fmt: skip
        wait_until_committed_rows_readable()
        kills = 0
        while kills < KILLS:
            worker = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)  # fmt: skip
            worker.stdout.readline()  # Django is up: it ticks now, and dies at a random point
            if flush and not self.flushed:  # while it ticks, however fast the tick is
                get_redis().flushdb()
                self.flushed += 1
            try:
                worker.wait(timeout=self.chance.uniform(0.3, 3.0))
            except subprocess.TimeoutExpired:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                kills += 1
                continue
            assert worker.returncode == 0, worker.stderr.read().decode()[-3000:]
            break  # it finished between kills
        self.kills += kills
        for _ in range(30):
            final = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True)
            assert final.returncode == 0, final.stderr.decode()[-3000:]
            states = self.states()
            if done(states):
                return
            time.sleep(1)
        where = Counter((row[1], row[3]) for row in states.values())
        raise AssertionError(
            f"the tick at {now} did not finish its step: {dict(where)}; "
            f"{final.stdout.decode()} {final.stderr.decode()[-3000:]}"
        )

    def track(self, name: str, at: datetime, rest: int) -> None:
        with workspace_scope(self.workspace.id), connection.cursor() as cursor:
            cursor.execute(INSERT_EVENTS, {"workspace": self.workspace.id, "name": name,
                                           "at": at, "rest": rest})  # fmt: skip
            process_events_now(workspace=Workspace.objects.get(id=self.workspace.id))


def _at(states, step_of) -> bool:
    """Every customer's enrollment is where `step_of(g)` says (state, step)."""
    return len(states) == CUSTOMERS and all(
        (row[1], row[3]) == step_of(g) for g, row in states.items()
    )


def _seed(workspace) -> tuple:
    templates = {channel: template_version(workspace, channel).template_id
                 for channel in ("email", "push")}  # fmt: skip
    with workspace_scope(workspace.id):
        audience = Audience.objects.create(workspace=workspace, name="Chaos", kind="list",
                                           rules=None)  # fmt: skip
        graph = journey_graph(templates["email"], templates["push"])
        graph["trigger"]["audience_id"] = audience.id
        journey = services.journey_create(workspace=workspace, name="Chaos", graph=graph,
                                          actor=MARKETER)  # fmt: skip
        services.journey_publish(journey=journey, actor=MARKETER)
        with connection.cursor() as cursor:
            cursor.execute(INSERT_CUSTOMERS, {"workspace": workspace.id, "count": CUSTOMERS})
    return journey, audience


def test_a_journey_ticked_under_sigkill_ends_as_an_uninterrupted_run(
    workspace,
    sendgrid_fake,  # noqa: F811 (the fixture imported above)
    fcm_fake,  # noqa: F811
    own_redis,
):
    connect_sendgrid(workspace, sendgrid_fake)
    connect_fcm(workspace, fcm_fake)
    journey, audience = _seed(workspace)
    clock = Clock()
    chaos = Chaos(workspace, journey, _env(sendgrid_fake, fcm_fake), clock)
    started = time.monotonic()

    with workspace_scope(workspace.id), transaction.atomic():
        membership_replace(workspace_id=workspace.id, audience_id=audience.id,
                           members_sql=EVERYONE, members_params={"ws": workspace.id},
                           cause=cause_list("chaos"), now=clock.entered)  # fmt: skip
    chaos.tick(clock.entered, lambda s: _at(s, lambda g: ("waiting", "pause")), flush=True)
    chaos.tick(clock.emailed, lambda s: _at(s, lambda g: ("waiting", "wait_click")))
    chaos.track("Link Clicked", clock.emailed + timedelta(minutes=5), rest=0)
    chaos.tick(
        clock.clicked,
        lambda s: _at(
            s, lambda g: ("completed", "done_clicked") if g % 4 == 0 else ("waiting", "wait_click")
        ),
    )
    chaos.tick(
        clock.timed_out,
        lambda s: _at(
            s, lambda g: ("completed", "done_clicked") if g % 4 == 0 else ("waiting", "a_day")
        ),
    )
    chaos.track("Order Completed", clock.timed_out + timedelta(hours=1), rest=1)
    chaos.tick(
        clock.ordered,
        lambda s: _at(
            s,
            lambda g: {0: ("completed", "done_clicked"), 1: ("converted", "a_day")}.get(
                g % 4, ("waiting", "a_day")
            ),
        ),
    )
    chaos.tick(clock.nudged, lambda s: _at(s, lambda g: expected_walk(g, clock)[:3:2]))
    ticked = time.monotonic() - started

    sender = [sys.executable, "manage.py", "send_messages", "--until-idle", "--recover",
              "--stall-seconds", "0"]  # fmt: skip
    for _ in range(20):  # to completion, again while retries are not yet due
        final = subprocess.run(sender, cwd=ROOT, env=chaos.env, capture_output=True)
        assert final.returncode == 0, final.stderr.decode()[-3000:]
        with all_workspaces(reason="test: is the chaos send done"), connection.cursor() as c:
            c.execute("SELECT status, count(*) FROM messaging_message WHERE workspace_id = %s"
                      " GROUP BY status", [workspace.id])  # fmt: skip
            statuses = dict(c.fetchall())
        if not {"queued", "sending"} & set(statuses):
            break
        time.sleep(1)
    duration = time.monotonic() - started

    states = chaos.states()
    walks = Counter(row[1] for row in states.values())
    print(
        f"\nchaos: {CUSTOMERS} customers, {chaos.kills} kills, Redis flushed {chaos.flushed}"
        f" time(s), ticks {ticked:.1f} s, {duration:.1f} s with the send; enrollments "
        f"{dict(walks)}; messages {statuses}; last send: {final.stdout.decode().strip()!r}"
    )
    assert chaos.flushed == 1
    assert chaos.kills >= KILLS * 3, "the ticks finished before the kills: raise CHAOS_CUSTOMERS"
    assert sorted(states) == list(range(1, CUSTOMERS + 1))
    wanted_keys = {"email": set(), "push": set()}
    for g, (enrollment, state, reason, step, finished_at, next_run_at, steps) in states.items():
        walk = expected_walk(g, clock)
        assert (state, reason, step, finished_at, next_run_at) == (*walk[:4], None), g
        assert [tuple(s) for s in steps] == walk[4], g
        for sent_step, _, outcome, _ in walk[4]:
            if outcome == "sent":
                channel = "email" if sent_step == "welcome" else "push"
                wanted_keys[channel].add(f"journey:{enrollment}:{sent_step}:1")
    with all_workspaces(reason="test: the chaos journey's messages"), connection.cursor() as c:
        c.execute("SELECT channel, dedupe_key, status, customer_id FROM messaging_message"
                  " WHERE workspace_id = %s", [workspace.id])  # fmt: skip
        messages = c.fetchall()
    keys = Counter(key for _, key, _, _ in messages)
    assert max(keys.values()) == 1
    assert {channel: {key for ch, key, _, _ in messages if ch == channel}
            for channel in ("email", "push")} == wanted_keys  # fmt: skip
    assert statuses == {"sent": len(messages)}
    assert dict(sendgrid_fake.delivered_keys) == dict.fromkeys(wanted_keys["email"], 1)
    tokens = {key: f"chaos-token-{customer}" for ch, key, _, customer in messages if ch == "push"}
    assert dict(fcm_fake.delivered_keys) == {(key, tokens[key]): 1 for key in wanted_keys["push"]}
