"""The benchmark's data, generated with set-based SQL as the superuser.

- `customers`: the campaign workspace's customers, as bench/audiences generates them (countries
  weighted, 5% anonymous, email and push consent mixes) plus what the contact policy reads: time
  zones (10 zones weighted MX-heavy, 8% empty and 2% unknown, which fall back to the workspace's
  zone), `link_tracking` consent for half, E.164 phones for two thirds, first names.
- devices: bench/audiences' generator (about 20% of known customers, 90% push enabled, expiring
  from 30 days ago to 300 days ahead).
- `suppressions`: 1% of the email addresses (hard bounce, spam report, unsubscribe, manual,
  invalid address).
- `prior_messages`: what the frequency caps count: about 10% of customers have 1 to 4 marketing
  messages sent over the week before the send (email or push).
- `membership`: a list audience's members, `INSERT … SELECT` from the customers.
- `send_customers`: the send workspace's customers, every one sendable (email consent, an email,
  a device for the push share).
"""

from __future__ import annotations

import psycopg

from bench.audiences.generate import COUNTRIES, INSERT_DEVICES

ZONES = (
    ["America/Mexico_City"] * 35 + ["America/Bogota"] * 10 + ["America/Sao_Paulo"] * 8
    + ["America/Argentina/Buenos_Aires"] * 6 + ["Europe/Madrid"] * 6
    + ["America/New_York"] * 10 + ["Asia/Tokyo"] * 8 + ["Asia/Manila"] * 7 + [""] * 8
    + ["Mars/Olympus_Mons"] * 2
)  # fmt: skip
NAMES = ["Lucía", "Mateo", "Sofía", "Santiago", "Valentina", "Diego", "Camila", "Joaquín",
         "Ximena", "Emiliano", "Renata", "Leonardo"]  # fmt: skip

INSERT_CUSTOMERS = """
INSERT INTO profiles_customer (
    workspace_id, external_id, email, phone, first_name, last_name, gender, birth_date,
    country, city, timezone, locale, tier, status, is_anonymous, tags, traits, consent,
    created_at, updated_at, last_seen_at, purchase_count, purchase_total, last_purchase_at,
    purchases_30d_count, purchases_30d_total, purchases_month_count, purchases_month_total)
SELECT %(workspace)s,
       CASE WHEN r.anonymous THEN NULL ELSE %(prefix)s || r.g END,
       CASE WHEN r.anonymous THEN NULL
            ELSE 'user' || r.g || '.' || %(prefix)s || '@example.com' END,
       CASE WHEN r.anonymous OR r.g %% 3 = 0 THEN NULL ELSE '+52' || (5500000000 + r.g) END,
       (%(names)s::text[])[1 + r.g %% cardinality(%(names)s::text[])], 'Bench', '', NULL,
       (%(countries)s::text[])[1 + floor(r.u_country * cardinality(%(countries)s::text[]))::int],
       '', (%(zones)s::text[])[1 + floor(r.u_zone * cardinality(%(zones)s::text[]))::int], 'es',
       '', 'active', r.anonymous, '[]'::jsonb,
       jsonb_build_object('plan', CASE WHEN r.u_zone < 0.1 THEN 'gold' ELSE 'free' END),
       jsonb_strip_nulls(jsonb_build_object(
           'email_marketing', CASE
               WHEN r.u_email < 0.55 THEN '{"status": "granted", "source": "signup"}'::jsonb
               WHEN r.u_email < 0.70 THEN '{"status": "denied", "source": "unsubscribe"}'::jsonb
               END,
           'push_notifications', CASE
               WHEN r.u_push < 0.30 THEN '{"status": "granted", "source": "app"}'::jsonb
               WHEN r.u_push < 0.40 THEN '{"status": "denied", "source": "app"}'::jsonb END,
           'link_tracking', CASE
               WHEN r.u_track < 0.50 THEN '{"status": "granted", "source": "signup"}'::jsonb
               END)),
       r.created, r.created, NULL, 0, 0, NULL, 0, 0, 0, 0
  FROM (
    SELECT g, random() < 0.05 AS anonymous, random() AS u_country, random() AS u_zone,
           random() AS u_email, random() AS u_push, random() AS u_track,
           now() - random() * interval '1095 days' AS created
      FROM generate_series(1, %(count)s) AS g
  ) r
"""

INSERT_SUPPRESSIONS = """
INSERT INTO messaging_suppression (workspace_id, channel, address, reason, source, detail,
                                   message_id, created_at)
SELECT workspace_id, 'email', email,
       (ARRAY['hard_bounce', 'hard_bounce', 'spam_report', 'unsubscribe', 'unsubscribe',
              'manual', 'invalid_address'])[1 + floor(random() * 7)::int],
       'bench', '', NULL, now()
  FROM profiles_customer
 WHERE workspace_id = %(workspace)s AND email IS NOT NULL AND random() < 0.01
"""

# 1-4 marketing messages sent during the week before `at` for ~10% of customers (a quarter of
# them within the last day), email or push: what the frequency caps count.
INSERT_PRIOR_MESSAGES = """
INSERT INTO messaging_message (
    workspace_id, customer_id, channel, kind, dedupe_key, origin, campaign_id, template_id,
    template_version_id, locale, address, render_input, payload, status, decision,
    decision_code, due_at, attempts, sending_at, handover_at, provider, provider_message_id,
    error_code, error, created_at, updated_at, sent_at)
SELECT c.workspace_id, c.id, x.channel, 'marketing', 'prior:' || n || ':' || c.id,
       '{"source": "bench"}', NULL, NULL, NULL, '', coalesce(c.email, ''), '{}', '{}', 'sent',
       'queued', 'ok', x.sent_at, 1, x.sent_at, x.sent_at,
       CASE x.channel WHEN 'email' THEN 'sendgrid' ELSE 'fcm' END, 'prior-' || n || '-' || c.id,
       '', '', x.sent_at, x.sent_at, x.sent_at
  FROM (SELECT id, workspace_id, email, 1 + floor(random() * 4)::int AS count
          FROM profiles_customer WHERE workspace_id = %(workspace)s AND random() < 0.10
        OFFSET 0) c
 CROSS JOIN LATERAL generate_series(1, c.count) n
 CROSS JOIN LATERAL (
    SELECT CASE WHEN random() < 0.7 THEN 'email' ELSE 'push' END AS channel,
           %(at)s::timestamptz - CASE WHEN random() < 0.25 THEN random() * interval '1 day'
                                      ELSE random() * interval '7 days' END AS sent_at
     WHERE n > 0) x
"""

INSERT_MEMBERSHIP = """
INSERT INTO audiences_membership (workspace_id, audience_id, customer_id, since, source)
SELECT workspace_id, %(audience)s, id, now(), 'list'
  FROM profiles_customer WHERE workspace_id = %(workspace)s
 ORDER BY id LIMIT %(count)s
"""

INSERT_SEND_CUSTOMERS = """
INSERT INTO profiles_customer (
    workspace_id, external_id, email, phone, first_name, last_name, gender, birth_date,
    country, city, timezone, locale, tier, status, is_anonymous, tags, traits, consent,
    created_at, updated_at, last_seen_at, purchase_count, purchase_total, last_purchase_at,
    purchases_30d_count, purchases_30d_total, purchases_month_count, purchases_month_total)
SELECT %(workspace)s, 'send-' || g, 'send' || g || '@example.com', '+52' || (5600000000 + g),
       (%(names)s::text[])[1 + g %% cardinality(%(names)s::text[])], 'Bench', '', NULL, 'MX',
       '', 'America/Mexico_City', 'es', '', 'active', false, '[]'::jsonb,
       jsonb_build_object('plan', CASE WHEN g %% 7 = 0 THEN 'gold' ELSE 'free' END),
       jsonb_build_object(
           'email_marketing', '{"status": "granted", "source": "signup"}'::jsonb,
           'push_notifications', '{"status": "granted", "source": "app"}'::jsonb,
           'link_tracking', CASE WHEN g %% 2 = 0
               THEN '{"status": "granted", "source": "signup"}'::jsonb
               ELSE '{"status": "denied", "source": "signup"}'::jsonb END),
       now(), now(), NULL, 0, 0, NULL, 0, 0, 0, 0
  FROM generate_series(1, %(count)s) AS g
"""

INSERT_SEND_DEVICES = """
INSERT INTO profiles_device (workspace_id, customer_id, token, platform, model, os_version,
                             push_enabled, created_at, updated_at, expires_at)
SELECT workspace_id, id, 'bench-token-' || id, 'android', '', '', true, now(), now(),
       now() + interval '60 days'
  FROM profiles_customer WHERE workspace_id = %(workspace)s
"""


def create_workspaces(admin: psycopg.Connection) -> tuple[int, int]:
    organization = admin.execute(
        "INSERT INTO tenancy_organization (name, slug, created_at) "
        "VALUES ('Bench messaging', 'bench-messaging', now()) RETURNING id"
    ).fetchone()[0]
    return tuple(
        admin.execute(
            "INSERT INTO tenancy_workspace (organization_id, name, timezone, created_at) "
            "VALUES (%s, %s, 'America/Mexico_City', now()) RETURNING id",
            [organization, name],
        ).fetchone()[0]
        for name in ("Campaigns", "Sends")
    )


def customers(admin: psycopg.Connection, *, workspace: int, count: int, seed: float) -> dict:
    admin.execute("SELECT setseed(%s)", [seed])
    admin.execute("SET session_replication_role = replica")  # consistent by construction
    admin.execute(
        INSERT_CUSTOMERS,
        {"workspace": workspace, "count": count, "prefix": "m-", "countries": COUNTRIES,
         "zones": ZONES, "names": NAMES},
    )  # fmt: skip
    admin.execute(INSERT_DEVICES, {"workspace": workspace})
    admin.execute("RESET session_replication_role")
    for table in ("profiles_customer", "profiles_device"):
        admin.execute(f"VACUUM ANALYZE {table}")
    return dict(
        zip(
            ("customers", "with_email", "devices"),
            admin.execute(
                "SELECT (SELECT count(*) FROM profiles_customer WHERE workspace_id = %(w)s), "
                "(SELECT count(email) FROM profiles_customer WHERE workspace_id = %(w)s), "
                "(SELECT count(*) FROM profiles_device WHERE workspace_id = %(w)s)",
                {"w": workspace},
            ).fetchone(),
            strict=True,
        )
    )


def membership(admin: psycopg.Connection, *, workspace: int, audience: int, count: int) -> int:
    admin.execute("SET session_replication_role = replica")
    inserted = admin.execute(
        INSERT_MEMBERSHIP, {"workspace": workspace, "audience": audience, "count": count}
    ).rowcount
    admin.execute("RESET session_replication_role")
    admin.execute("UPDATE audiences_audience SET size = %s WHERE id = %s", [inserted, audience])
    admin.execute("VACUUM ANALYZE audiences_membership")
    return inserted


def policy_state(admin: psycopg.Connection, *, workspace: int, at, seed: float) -> dict:
    """(Re)seed what the policy reads besides customers: suppressions and prior sent messages."""
    admin.execute("SELECT setseed(%s)", [seed])
    admin.execute("SET session_replication_role = replica")
    suppressions = admin.execute(INSERT_SUPPRESSIONS, {"workspace": workspace}).rowcount
    prior = admin.execute(INSERT_PRIOR_MESSAGES, {"workspace": workspace, "at": at}).rowcount
    admin.execute("RESET session_replication_role")
    for table in ("messaging_suppression", "messaging_message", "messaging_messagestatuschange"):
        admin.execute(f"VACUUM ANALYZE {table}")
    return {"suppressions": suppressions, "prior_messages": prior}


def send_customers(admin: psycopg.Connection, *, workspace: int, count: int) -> None:
    admin.execute("SET session_replication_role = replica")
    admin.execute(INSERT_SEND_CUSTOMERS, {"workspace": workspace, "count": count, "names": NAMES})
    admin.execute(INSERT_SEND_DEVICES, {"workspace": workspace})
    admin.execute("RESET session_replication_role")
    for table in ("profiles_customer", "profiles_device"):
        admin.execute(f"VACUUM ANALYZE {table}")
