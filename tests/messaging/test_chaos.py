"""Never twice, under SIGKILL: a send of CHAOS_MESSAGES (10,000 by default) recipients, a mix
of email, push and WhatsApp, against the fakes running in this process, by a sender in a
subprocess (`manage.py send_messages --until-idle --recover`) killed with SIGKILL at random
points, again and again, and restarted. Then a last run to completion and the recovery sweep.

Every message must end in a final state, and the fakes must have accepted each dedupe key at
most once (push: once per device). Messages a kill caught during a hand-over to SendGrid or
FCM end `unknown` (they may or may not have been delivered, and the provider cannot say);
WhatsApp ones are looked up at Twilio instead. The figures are printed.

`CHAOS_MESSAGES` sets the number of recipients (10,000 by default, as issue 10 asks) and
`CHAOS_KILLS` the kills (8; at least 5 must land before the send ends), `CHAOS_SEED` the
random kill points. Time goes mostly to the fakes and the SDKs (one HTTP request per email,
from a fresh connection). Measured on this 2-core machine shared with other work (2026-12-01):
10,000 messages, 8 kills, 110 unknown, 99 s (111 s for the test); 243 s while the load average
was near 15. A CI that is slower can run it with `CHAOS_MESSAGES=2000` (2,000: about 60 s).
"""

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from masivo.tenancy.context import all_workspaces
from messaging.models import Message
from messaging.models.messages import FINAL_STATUSES
from messaging.sending import sending_recover
from tests.messaging.test_sending_support import (
    WHATSAPP_SID,
    connect_fcm,
    connect_sendgrid,
    connect_twilio,
    template_version,
)

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = int(os.environ.get("CHAOS_MESSAGES", "10000"))
MIN_KILLS = 5
KILLS = int(os.environ.get("CHAOS_KILLS", "8"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]

INSERT_CUSTOMERS = """
INSERT INTO profiles_customer (
    workspace_id, external_id, email, phone, first_name, last_name, gender, birth_date,
    country, city, timezone, locale, tier, status, is_anonymous, tags, traits, consent,
    created_at, updated_at, last_seen_at, purchase_count, purchase_total, last_purchase_at,
    purchases_30d_count, purchases_30d_total, purchases_month_count, purchases_month_total)
SELECT %(workspace)s, 'chaos-' || g, 'chaos' || g || '@example.com', '+52' || (5500000000 + g),
       'Ana ' || g, '', '', NULL, 'MX', '', 'UTC', 'es', '', 'active', false, '[]', '{}', '{}',
       now(), now(), NULL, 0, 0, NULL, 0, 0, 0, 0
  FROM generate_series(1, %(count)s) AS g
"""

INSERT_DEVICES = """
INSERT INTO profiles_device (workspace_id, customer_id, token, platform, model, os_version,
                             push_enabled, created_at, updated_at, expires_at)
SELECT workspace_id, id, 'chaos-token-' || id, 'android', '', '', true, now(), now(),
       now() + interval '30 days'
  FROM profiles_customer WHERE workspace_id = %(workspace)s
"""

# 60 % email, 30 % push, 10 % WhatsApp, by customer number.
INSERT_MESSAGES = """
INSERT INTO messaging_message (
    workspace_id, customer_id, channel, kind, dedupe_key, origin, template_id,
    template_version_id, locale, address, render_input, payload, status, decision,
    decision_code, due_at, attempts, provider, provider_message_id, error_code, error,
    created_at, updated_at)
SELECT c.workspace_id, c.id, v.channel, 'transactional', 'chaos:' || c.id, '{}',
       v.template_id, v.id, '',
       CASE v.channel WHEN 'email' THEN c.email WHEN 'whatsapp' THEN c.phone ELSE '' END,
       '{}', '{}', 'queued', 'sent', 'sent', now(), 0, '', '', '', '', now(), now()
  FROM profiles_customer c
  JOIN LATERAL (
      SELECT CASE WHEN c.id %% 10 < 6 THEN 'email' WHEN c.id %% 10 < 9 THEN 'push'
                  ELSE 'whatsapp' END AS channel) pick ON true
  JOIN (VALUES ('email', %(email)s::bigint, %(email_template)s::bigint),
               ('push', %(push)s::bigint, %(push_template)s::bigint),
               ('whatsapp', %(whatsapp)s::bigint, %(whatsapp_template)s::bigint))
       AS v(channel, id, template_id) ON v.channel = pick.channel
 WHERE c.workspace_id = %(workspace)s
"""


def _sender_command() -> list[str]:
    return [sys.executable, "manage.py", "send_messages", "--until-idle", "--recover",
            "--stall-seconds", "0"]  # fmt: skip


def _sender_env(sendgrid_fake, fcm_fake, twilio_fake) -> dict:
    database = connection.settings_dict
    url = (
        f"postgresql://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT']}/{database['NAME']}"
    )
    env = os.environ | {
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "masivo.settings",
        "MASIVO_SENDGRID_API_URL": sendgrid_fake.url,
        "MASIVO_FCM_API_URL": fcm_fake.url,
        "MASIVO_GOOGLE_TOKEN_URL": fcm_fake.token_url,
        "MASIVO_TWILIO_API_URL": twilio_fake.url,
        "MASIVO_REDIS_PREFIX": settings.MASIVO_REDIS_PREFIX,
        "MASIVO_SEND_RATE_PER_SECOND": "1000000",
        "PYTHONUNBUFFERED": "1",
        "MASIVO_SEND_RETRY_FIRST_SECONDS": "1",
    }
    env.pop("DATABASE_OWNER_URL", None)
    return env


def _statuses(workspace) -> Counter:
    with all_workspaces(reason="test: read the chaos send's outcome"):
        return Counter(
            Message.objects.filter(workspace_id=workspace.id).values_list("status", flat=True)
        )


def _seed(workspace, versions) -> None:
    with all_workspaces(reason="test: seed the chaos send"), connection.cursor() as cursor:
        cursor.execute(INSERT_CUSTOMERS, {"workspace": workspace.id, "count": MESSAGES})
        cursor.execute(INSERT_DEVICES, {"workspace": workspace.id})
        cursor.execute(
            INSERT_MESSAGES,
            {
                "workspace": workspace.id,
                **{channel: version.id for channel, version in versions.items()},
                **{f"{channel}_template": v.template_id for channel, v in versions.items()},
            },
        )


def test_a_send_killed_again_and_again_hands_each_message_over_at_most_once(
    workspace, sendgrid_fake, fcm_fake, twilio_fake
):
    connect_sendgrid(workspace, sendgrid_fake)
    connect_fcm(workspace, fcm_fake)
    connect_twilio(workspace, twilio_fake)
    twilio_fake.add_content(WHATSAPP_SID, "order_update", {"1": "Ana"})
    versions = {channel: template_version(workspace, channel)
                for channel in ("email", "push", "whatsapp")}  # fmt: skip
    _seed(workspace, versions)
    env = _sender_env(sendgrid_fake, fcm_fake, twilio_fake)
    chance = random.Random(os.environ.get("CHAOS_SEED"))
    started = time.monotonic()

    kills = 0
    while kills < KILLS:
        sender = subprocess.Popen(_sender_command(), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)  # fmt: skip
        # Its first line comes after Django started and recovery ran: then it sends, and is
        # killed at a random point of that.
        sender.stdout.readline()
        try:
            sender.wait(timeout=chance.uniform(0.5, 2.0))
        except subprocess.TimeoutExpired:
            sender.send_signal(signal.SIGKILL)
            sender.wait()
            kills += 1
            continue
        assert sender.returncode == 0, sender.stderr.read().decode()[-3000:]
        break  # it finished between kills
    assert kills >= MIN_KILLS, f"the send finished after {kills} kills; raise CHAOS_MESSAGES"
    # To completion: again while retries (429s, refused connections) are not yet due.
    for _ in range(20):
        final = subprocess.run(_sender_command(), cwd=ROOT, env=env, capture_output=True)
        assert final.returncode == 0, final.stderr.decode()[-3000:]
        if not {"queued", "sending"} & set(_statuses(workspace)):
            break
        time.sleep(1)
    recovered = sending_recover(stall_seconds=0)
    duration = time.monotonic() - started

    statuses = _statuses(workspace)
    email_keys = sendgrid_fake.delivered_keys
    push_keys = fcm_fake.delivered_keys
    whatsapp_keys = twilio_fake.delivered_keys
    print(
        f"\nchaos: {MESSAGES} messages, {kills} kills, {statuses['unknown']} unknown, "
        f"{duration:.1f} s; statuses {dict(statuses)}; last run: "
        f"{final.stdout.decode().strip()!r}; last sweep: {recovered}"
    )
    assert sum(statuses.values()) == MESSAGES
    assert set(statuses) <= set(FINAL_STATUSES)
    assert set(statuses) <= {"sent", "unknown"}
    assert max(email_keys.values()) == 1
    assert max(push_keys.values()) == 1
    assert max(whatsapp_keys.values(), default=1) == 1
    with all_workspaces(reason="test: compare the chaos send with the fakes"):
        sent = dict(
            Message.objects.filter(workspace_id=workspace.id, status="sent").values_list(
                "dedupe_key", "channel"
            )
        )
        ids = dict(
            Message.objects.filter(workspace_id=workspace.id).values_list("id", "dedupe_key")
        )
    delivered = (
        set(email_keys)
        | {key for key, _ in push_keys}
        | {ids[int(message_id)] for message_id in whatsapp_keys}
    )
    # Every message recorded sent reached its fake; what else reached one is `unknown`.
    assert set(sent) <= delivered
    assert len(delivered - set(sent)) <= statuses["unknown"]
