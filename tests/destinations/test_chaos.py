"""Never twice, never lost, under SIGKILL: an audience of CHAOS_MEMBERS (10,000 by default)
synced to the Meta fake by `manage.py sync_destinations` in a subprocess that is killed with
SIGKILL again and again, and restarted: first the initial sync, then a second run after churn
(10 % leave, as many join, some change their email). Every other kill lands just after Meta
applied a batch and before the worker heard the answer (the fake answers a moment late), the
others at random points.

At the fake: every (session, batch) received more than once carried the same rows each time
(a resent batch is the same batch, which Meta applies once); no row was applied by two
different batches of a run; batches were resent (the kills after an apply) and applied once;
and the audience ends holding exactly the consented members.
`CHAOS_KILLS` sets the kills a phase (4), `CHAOS_SEED` the random kill points.
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from destinations import services
from destinations.identifiers import sha256_hex
from destinations.models import Destination, SyncRun
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import all_workspaces, workspace_scope
from masivo.tenancy.roles import Role
from tests.factories import AudienceFactory
from tests.fakes.meta import MetaFake, graph_params

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = int(os.environ.get("CHAOS_MEMBERS", "10000"))
KILLS = int(os.environ.get("CHAOS_KILLS", "4"))
BATCH = 250
ACCOUNT, TOKEN = "555", "chaos-token"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(900)]  # fmt: skip

SEED = """
INSERT INTO profiles_customer (
    workspace_id, external_id, email, phone, first_name, last_name, gender, birth_date,
    country, city, timezone, locale, tier, status, is_anonymous, tags, traits, consent,
    consent_vendors, consent_string, consent_string_version,
    created_at, updated_at, last_seen_at, purchase_count, purchase_total, last_purchase_at,
    purchases_30d_count, purchases_30d_total, purchases_month_count, purchases_month_total)
SELECT %(workspace)s, 'chaos-' || g, 'chaos' || g || '@example.com', NULL, '', '', '', NULL,
       'MX', '', 'UTC', 'es', '', 'active', false, '[]', '{}',
       '{"advertising": {"status": "granted"}}', '{}', '', '',
       now(), now(), NULL, 0, 0, NULL, 0, 0, 0, 0
  FROM generate_series(1, %(count)s) AS g;
INSERT INTO audiences_membership (workspace_id, audience_id, customer_id, since, source)
SELECT workspace_id, %(audience)s, id, now(), 'list' FROM profiles_customer
 WHERE workspace_id = %(workspace)s AND (substring(external_id from 7))::int <= %(members)s
"""
# 10 % leave, as many new customers join, and 2 % change their email.
CHURN = """
DELETE FROM audiences_membership
 WHERE workspace_id = %(workspace)s AND customer_id %% 10 = 0;
INSERT INTO audiences_membership (workspace_id, audience_id, customer_id, since, source)
SELECT workspace_id, %(audience)s, id, now(), 'list' FROM profiles_customer
 WHERE workspace_id = %(workspace)s AND (substring(external_id from 7))::int > %(members)s;
UPDATE profiles_customer SET email = 'moved' || id || '@example.com'
 WHERE workspace_id = %(workspace)s AND id %% 50 = 1;
"""


def _env(meta_fake) -> dict:
    database = connection.settings_dict
    url = (f"postgresql://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
           f"{database['PORT']}/{database['NAME']}")  # fmt: skip
    env = os.environ | {
        "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "masivo.settings",
        "MASIVO_META_GRAPH_URL": meta_fake.url, "MASIVO_SYNC_BATCH_SIZE": str(BATCH),
        "MASIVO_REDIS_PREFIX": settings.MASIVO_REDIS_PREFIX, "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    env.pop("DATABASE_OWNER_URL", None)
    return env


class MetaWithAWindow(MetaFake):
    """Meta, answering each upload a moment after applying it: the window in which a worker
    killed has had its batch applied without knowing it (the case that must not send twice)."""

    def __init__(self):
        super().__init__()
        self.applied = threading.Event()

    def route(self, request):
        answer = super().route(request)
        if request.path.endswith("/users"):
            self.applied.set()
            time.sleep(0.2)
        return answer


@pytest.fixture
def meta_fake(settings):
    fake = MetaWithAWindow().start()
    settings.MASIVO_META_GRAPH_URL = fake.url
    yield fake
    fake.stop()


def _run_with_kills(env, chance, meta) -> int:
    """Kill the worker KILLS times: every other kill just after Meta applied a batch (before
    the worker hears the answer), the others at a random moment."""
    command = [sys.executable, "manage.py", "sync_destinations", "--stall-seconds", "0"]
    kills = 0
    while kills < KILLS:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)  # fmt: skip
        worker.stdout.readline()  # Django is up: it syncs now, and dies at a random point
        meta.applied.clear()
        try:
            if kills % 2 == 0 and meta.applied.wait(timeout=30):
                raise subprocess.TimeoutExpired(command, 0)
            worker.wait(timeout=chance.uniform(0.3, 1.5))
        except subprocess.TimeoutExpired:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
            continue
        assert worker.returncode == 0, worker.stderr.read().decode()[-3000:]
        break
    for _ in range(30):  # to completion
        final = subprocess.run(command, cwd=ROOT, env=env, capture_output=True)
        assert final.returncode == 0, final.stderr.decode()[-3000:]
        with all_workspaces(reason="test: is the chaos sync done"):
            if not SyncRun.objects.filter(status__in=["queued", "running"]).exists():
                break
        time.sleep(1)
    return kills


def _check_uploads(meta_fake, audience_id) -> Counter:
    """Each (session, batch) carried the same rows every time; returns row → applications."""
    seen: dict[tuple, tuple] = {}
    applied: Counter = Counter()
    for request in meta_fake.requests_to(f"/{audience_id}/users"):
        params = graph_params(request)
        session = json.loads(params["session"])
        payload = json.loads(params["payload"])
        key = (request.method, session["session_id"], session["batch_seq"])
        rows = tuple(sorted(tuple(row) for row in payload["data"]))
        if key in seen:
            assert seen[key] == rows, f"batch {key} was resent with other rows"
            continue
        seen[key] = rows
        for row in rows:
            applied[(request.method, row)] += 1
    return applied


def test_a_sync_killed_again_and_again_sends_nothing_twice_and_loses_nothing(workspace, meta_fake):
    meta_fake.add_token(TOKEN)
    meta_fake.add_account(ACCOUNT)
    admin = Actor(role=Role.ADMIN)
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace)
        destination = services.destination_create(
            workspace=workspace, kind="meta", name="Meta", actor=admin,
            config={"ad_account_id": ACCOUNT}, credentials={"access_token": TOKEN})  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                SEED,
                {
                    "workspace": workspace.id,
                    "audience": audience.id,
                    "count": MEMBERS + MEMBERS // 10,
                    "members": MEMBERS,
                },
            )
        sync = services.sync_create(destination=destination, audience=audience, actor=admin,
                                    remote_audience_name="Chaos")  # fmt: skip
    env = _env(meta_fake)
    chance = random.Random(os.environ.get("CHAOS_SEED"))
    started = time.monotonic()

    first_kills = _run_with_kills(env, chance, meta_fake)
    applied = _check_uploads(meta_fake, sync.remote_audience_id)
    expected = {sha256_hex(f"chaos{n}@example.com") for n in range(1, MEMBERS + 1)}
    assert meta_fake.values(sync.remote_audience_id, "EMAIL") == expected
    assert set(applied.values()) == {1}
    assert len(applied) == MEMBERS

    with workspace_scope(workspace.id), connection.cursor() as cursor:
        cursor.execute(CHURN, {"workspace": workspace.id, "audience": audience.id,
                               "members": MEMBERS})  # fmt: skip
        services.sync_run_request(sync=sync)
    meta_fake.requests.clear()
    second_kills = _run_with_kills(env, chance, meta_fake)
    applied = _check_uploads(meta_fake, sync.remote_audience_id)
    duration = time.monotonic() - started

    with workspace_scope(workspace.id), connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.email FROM audiences_membership m JOIN profiles_customer c"
            " ON c.id = m.customer_id WHERE m.audience_id = %s", [audience.id])  # fmt: skip
        members = {sha256_hex(email) for (email,) in cursor.fetchall()}
        runs = Counter(SyncRun.objects.filter(sync=sync).values_list("status", flat=True))

    print(f"\nchaos: {MEMBERS} members, {first_kills} + {second_kills} kills, "
          f"{meta_fake.duplicates} batches resent and applied once, {duration:.1f} s, "
          f"runs {dict(runs)}")  # fmt: skip
    assert meta_fake.values(sync.remote_audience_id, "EMAIL") == members
    assert meta_fake.duplicates >= 1  # batches applied, then resent after the kill: once
    assert set(applied.values()) == {1}
    assert runs == {"succeeded": 2}, runs
    with workspace_scope(workspace.id):
        assert Destination.objects.get(id=destination.id).status == "active"
