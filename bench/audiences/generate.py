"""The benchmark's data, generated with set-based SQL as the superuser.

One call of `generate_workspace` fills a workspace with:
- customers: 5% anonymous; countries weighted (MX 35% … PT 0.1%); tier gold 5% / silver 15% /
  bronze 30% / none; traits `plan` (free 50%, basic 25%, pro 15%, gold 7%, enterprise 3%) and
  `score` (a JSON number 0-100, missing for 10%, a numeric-looking *string* for 1%: dirty data
  the rules must ignore), `signup_source`; tags; consent for email and push (granted, denied or
  not recorded); created over three years.
- devices: about 20% of known customers have one (android/ios/web, 90% push enabled, expiring
  from 30 days ago to 300 days ahead).
- events: Zipf-like activity, a Lomax (Pareto II) draw per customer, `floor(5.4 * (u^(-1/1.5) - 1))`
  capped at 20,000: mean about 10, median 2, 24% with none, the top 0.01% with thousands.
  Names: Page Viewed 38%, Product Viewed 20%, Product Added 10%, Session Started 10%, Search 6%,
  Email Opened 6%, purchase 6%, Order Completed 3%, Checkout Started 1%; properties with a
  weighted `category`, purchase `value` / Order Completed `revenue` log-normal around 60 (1% of
  purchase values are strings), product ids and prices. Times over the last year, denser
  towards now (`now - 365 days * u²`: 29% in the last 30 days). Rows are inserted in time order,
  as a live table would be, all already processed (no follow-up outbox).

Secondary indexes on events are dropped during the load and rebuilt after it, and foreign-key
triggers are skipped (`session_replication_role = replica`): the rows are consistent by
construction. `churn` changes about 1% of a workspace afterwards.
"""

from __future__ import annotations

import time

import psycopg

ACTIVITY_SCALE = 5.4
ACTIVITY_ALPHA = 1.5
ACTIVITY_CAP = 20_000

COUNTRIES = (
    ["MX"] * 350 + ["US"] * 150 + ["CO"] * 100 + ["BR"] * 100 + ["AR"] * 80 + ["ES"] * 70
    + ["CL"] * 50 + ["PE"] * 50 + ["EC"] * 30 + ["UY"] * 19 + ["PT"] * 1
)  # fmt: skip
CATEGORIES = (
    ["apparel"] * 4 + ["shoes"] * 3 + ["electronics"] * 2 + ["home"] * 2 + ["beauty"] * 2
    + ["sports", "toys", "books", "grocery"]
)  # fmt: skip
PLANS = ["free"] * 50 + ["basic"] * 25 + ["pro"] * 15 + ["gold"] * 7 + ["enterprise"] * 3
SOURCES = ["organic", "organic", "ads", "ads", "referral", "store"]
CONTEXTS = [
    '{"library": {"name": "analytics.js", "version": "4.1.0"}, "locale": "es-MX", '
    '"userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0"}',
    '{"library": {"name": "analytics-ios", "version": "4.1.8"}, "locale": "es-MX", '
    '"device": {"model": "iPhone15,3"}, "os": {"name": "iOS", "version": "18.1"}}',
    '{"library": {"name": "analytics-android", "version": "4.11.3"}, "locale": "es-CO", '
    '"device": {"model": "SM-A546E"}, "os": {"name": "Android", "version": "14"}}',
    '{"library": {"name": "analytics.js", "version": "4.1.0"}, "locale": "pt-BR", '
    '"userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Safari/604.1"}',
]
# Cumulative shares of event names (the CASE below walks them in order).
EVENT_MIX = [
    ("Page Viewed", 0.38), ("Product Viewed", 0.58), ("Product Added", 0.68),
    ("Session Started", 0.78), ("Search", 0.84), ("Email Opened", 0.90), ("purchase", 0.96),
    ("Order Completed", 0.99), ("Checkout Started", 1.0),
]  # fmt: skip

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
       '', '', '', NULL,
       (%(countries)s::text[])[1 + floor(r.u_country * cardinality(%(countries)s::text[]))::int],
       '', 'UTC', 'es',
       CASE WHEN r.u_tier < 0.05 THEN 'gold' WHEN r.u_tier < 0.20 THEN 'silver'
            WHEN r.u_tier < 0.50 THEN 'bronze' ELSE '' END,
       'active', r.anonymous,
       jsonb_strip_nulls(jsonb_build_object(
           'vip', CASE WHEN r.u_tag < 0.03 THEN true END,
           'newsletter', CASE WHEN r.u_tag >= 0.5 THEN 'weekly' END)),
       jsonb_strip_nulls(jsonb_build_object(
           'plan', (%(plans)s::text[])[1 + floor(r.u_plan * cardinality(%(plans)s::text[]))::int],
           'score', CASE WHEN r.u_score < 0.10 THEN NULL
                         WHEN r.u_score < 0.11 THEN to_jsonb(round(r.u_value * 100)::text)
                         ELSE to_jsonb(round((r.u_value * 100)::numeric, 1)) END,
           'signup_source',
               (%(sources)s::text[])[1 + floor(r.u_tag * cardinality(%(sources)s::text[]))::int])),
       jsonb_strip_nulls(jsonb_build_object(
           'email_marketing', CASE
               WHEN r.u_email < 0.55 THEN '{"status": "granted", "source": "signup"}'::jsonb
               WHEN r.u_email < 0.70 THEN '{"status": "denied", "source": "unsubscribe"}'::jsonb
               END,
           'push_notifications', CASE
               WHEN r.u_push < 0.30 THEN '{"status": "granted", "source": "app"}'::jsonb
               WHEN r.u_push < 0.40 THEN '{"status": "denied", "source": "app"}'::jsonb END)),
       r.created, r.created, NULL, 0, 0, NULL, 0, 0, 0, 0
  FROM (
    SELECT g, random() < 0.05 AS anonymous, random() AS u_country, random() AS u_tier,
           random() AS u_tag, random() AS u_plan, random() AS u_score, random() AS u_value,
           random() AS u_email, random() AS u_push,
           now() - random() * interval '1095 days' AS created
      FROM generate_series(1, %(count)s) AS g
  ) r
"""

INSERT_DEVICES = """
INSERT INTO profiles_device (workspace_id, customer_id, token, platform, model, os_version,
                             push_enabled, created_at, updated_at, expires_at)
SELECT c.workspace_id, c.id, 'tok-' || c.id || '-' || n,
       CASE WHEN u < 0.55 THEN 'android' WHEN u < 0.95 THEN 'ios' ELSE 'web' END, '', '',
       u_enabled < 0.9, now(), now(), now() + (u_expiry * 330 - 30) * interval '1 day'
  FROM (SELECT id, workspace_id, CASE WHEN random() < 0.03 THEN 2 ELSE 1 END AS devices
          FROM profiles_customer
         WHERE workspace_id = %(workspace)s AND NOT is_anonymous AND random() < 0.2
        OFFSET 0) c
 CROSS JOIN LATERAL (
    SELECT n, random() AS u, random() AS u_enabled, random() AS u_expiry
      FROM generate_series(1, c.devices) n) d
"""

STAGE_EVENTS = """
CREATE UNLOGGED TABLE bench_event_stage AS
SELECT a.customer_id, a.external_id,
       now() - interval '365 days' * (random() ^ 2) AS at,
       random() AS k, random() AS v1, random() AS v2, random() AS v3
  FROM (SELECT id AS customer_id, external_id,
               least(%(cap)s, floor(%(scale)s * (power(1 - random(), -1 / %(alpha)s) - 1)))::int
                 AS n
          FROM profiles_customer WHERE workspace_id = %(workspace)s) a
 CROSS JOIN LATERAL generate_series(1, a.n)
"""


def _name_case(column: str) -> str:
    parts = [f"WHEN {column} < {share} THEN '{name}'" for name, share in EVENT_MIX[:-1]]
    return f"CASE {' '.join(parts)} ELSE '{EVENT_MIX[-1][0]}' END"


# A log-normal amount around exp(4.1) ≈ 60, from two uniforms (Box-Muller).
AMOUNT = "round(exp(4.1 + 0.9 * sqrt(-2 * ln(1 - v1)) * cos(2 * pi() * v2))::numeric, 2)"
PRICE = "round(exp(3.5 + 0.8 * sqrt(-2 * ln(1 - v1)) * cos(2 * pi() * v2))::numeric, 2)"
CATEGORY = "(%(categories)s::text[])[1 + floor(v3 * cardinality(%(categories)s::text[]))::int]"

PROPERTIES = f"""CASE name
    WHEN 'Page Viewed' THEN jsonb_build_object('path', '/c/' || {CATEGORY}, 'category', {CATEGORY})
    WHEN 'Product Viewed' THEN jsonb_build_object(
        'product_id', 'p-' || floor(v2 * 5000), 'category', {CATEGORY}, 'price', {PRICE})
    WHEN 'Product Added' THEN jsonb_build_object(
        'product_id', 'p-' || floor(v2 * 5000), 'category', {CATEGORY}, 'price', {PRICE},
        'quantity', 1 + floor(v1 * 3))
    WHEN 'Search' THEN jsonb_build_object('query', {CATEGORY})
    WHEN 'Email Opened' THEN jsonb_build_object('campaign_id', 'cmp-' || floor(v1 * 40))
    WHEN 'purchase' THEN jsonb_build_object(
        'order_id', 'o-' || customer_id || '-' || floor(v2 * 1e9),
        'value', CASE WHEN k > 0.9594 THEN to_jsonb({AMOUNT}::text) ELSE to_jsonb({AMOUNT}) END,
        'currency', 'MXN', 'category', {CATEGORY}, 'items', 1 + floor(v1 * 4))
    WHEN 'Order Completed' THEN jsonb_build_object(
        'order_id', 'oc-' || customer_id || '-' || floor(v2 * 1e9), 'revenue', {AMOUNT},
        'currency', 'MXN', 'category', {CATEGORY})
    WHEN 'Checkout Started' THEN jsonb_build_object('value', {AMOUNT}, 'category', {CATEGORY})
    ELSE '{{}}'::jsonb END"""

INSERT_EVENTS = f"""
INSERT INTO profiles_event (workspace_id, type, name, properties, occurred_at, received_at,
                            message_id, customer_id, user_id, anonymous_id, context, source,
                            processed_at)
SELECT %(workspace)s, CASE WHEN name = 'Page Viewed' THEN 'page' ELSE 'track' END, name,
       {PROPERTIES},
       at, at + interval '2 seconds',
       %(prefix)s || lpad((row_number() OVER (ORDER BY at))::text, 10, '0'),
       customer_id, coalesce(external_id, ''),
       CASE WHEN external_id IS NULL THEN 'anon-' || customer_id ELSE '' END,
       (%(contexts)s::jsonb[])[1 + customer_id %% cardinality(%(contexts)s::jsonb[])],
       'bench', at + interval '3 seconds'
  FROM (SELECT s.*, {_name_case("k")} AS name FROM bench_event_stage s) x
 ORDER BY at
"""

LISTS = {
    "countries": COUNTRIES, "plans": PLANS, "sources": SOURCES, "categories": CATEGORIES,
    "contexts": CONTEXTS,
}  # fmt: skip


def say(message: str) -> None:
    print(message, flush=True)


def create_workspaces(admin: psycopg.Connection) -> tuple[int, int]:
    organization = admin.execute(
        "INSERT INTO tenancy_organization (name, slug, created_at) "
        "VALUES ('Bench', 'bench', now()) RETURNING id"
    ).fetchone()[0]
    big, small = (
        admin.execute(
            "INSERT INTO tenancy_workspace (organization_id, name, timezone, created_at) "
            "VALUES (%s, %s, 'UTC', now()) RETURNING id",
            [organization, name],
        ).fetchone()[0]
        for name in ("Big", "Small")
    )
    return big, small


def _event_indexes(admin: psycopg.Connection) -> list[tuple[str, str]]:
    """The events table's indexes that back no constraint (dropped during the load)."""
    return admin.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = 'profiles_event'::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid) "
        "ORDER BY i.relname"
    ).fetchall()


def generate(
    admin: psycopg.Connection, workspaces: list[tuple[int, int, str]], *, seed: float = 0.42
) -> dict:
    """Fill each (workspace, customers, prefix); returns row counts and seconds taken."""
    started = time.perf_counter()
    admin.execute("SET work_mem = '1GB'")
    admin.execute("SET maintenance_work_mem = '2GB'")
    admin.execute("SET session_replication_role = replica")  # no FK triggers: built consistent
    admin.execute("SELECT setseed(%s)", [seed])
    indexes = _event_indexes(admin)
    for name, _ in indexes:
        admin.execute(f'DROP INDEX "{name}"')
    for workspace, count, prefix in workspaces:
        step = time.perf_counter()
        admin.execute(
            INSERT_CUSTOMERS, {"workspace": workspace, "count": count, "prefix": prefix, **LISTS}
        )
        admin.execute(INSERT_DEVICES, {"workspace": workspace})
        admin.execute("DROP TABLE IF EXISTS bench_event_stage")
        admin.execute(
            STAGE_EVENTS,
            {
                "workspace": workspace, "cap": ACTIVITY_CAP, "scale": ACTIVITY_SCALE,
                "alpha": ACTIVITY_ALPHA,
            },
        )  # fmt: skip
        admin.execute(INSERT_EVENTS, {"workspace": workspace, "prefix": f"{prefix}m-", **LISTS})
        admin.execute("DROP TABLE bench_event_stage")
        say(f"  workspace {workspace}: {count:,} customers in {time.perf_counter() - step:.0f} s")
    step = time.perf_counter()
    for _, definition in indexes:
        # A partitioned table's index definition reads `ON ONLY` (the parent alone, invalid
        # until each partition has its own): rebuilt on the whole table instead.
        admin.execute(definition.replace(" ON ONLY ", " ON ", 1))
    admin.execute("RESET session_replication_role")
    say(f"  rebuilt {len(indexes)} event indexes in {time.perf_counter() - step:.0f} s")
    step = time.perf_counter()
    for table in ("profiles_customer", "profiles_device", "profiles_event"):
        admin.execute(f"VACUUM ANALYZE {table}")
    say(f"  VACUUM ANALYZE in {time.perf_counter() - step:.0f} s")
    counts = {
        workspace: admin.execute(
            "SELECT (SELECT count(*) FROM profiles_customer WHERE workspace_id = %(w)s), "
            "(SELECT count(*) FROM profiles_event WHERE workspace_id = %(w)s), "
            "(SELECT count(*) FROM profiles_device WHERE workspace_id = %(w)s)",
            {"w": workspace},
        ).fetchone()
        for workspace, _, _ in workspaces
    }
    admin.execute("RESET work_mem")
    admin.execute("RESET maintenance_work_mem")
    return {"counts": counts, "seconds": time.perf_counter() - started}


CHURN_TRAITS = """
UPDATE profiles_customer c
   SET traits = c.traits || jsonb_build_object(
           'plan', (%(plans)s::text[])[1 + floor(random() * cardinality(%(plans)s::text[]))::int],
           'score', round((random() * 100)::numeric, 1)),
       tier = CASE WHEN random() < 0.3 THEN 'gold' WHEN random() < 0.5 THEN '' ELSE c.tier END,
       country = CASE WHEN random() < 0.3 THEN (%(countries)s::text[])[
           1 + floor(random() * cardinality(%(countries)s::text[]))::int] ELSE c.country END,
       consent = c.consent || jsonb_build_object('email_marketing', jsonb_build_object(
           'status', CASE WHEN random() < 0.6 THEN 'granted' ELSE 'denied' END,
           'source', 'preferences')),
       updated_at = now()
 WHERE c.workspace_id = %(workspace)s AND c.id IN (
       SELECT id FROM profiles_customer WHERE workspace_id = %(workspace)s
        ORDER BY random() LIMIT %(count)s)
"""

CHURN_PURCHASES = f"""
INSERT INTO profiles_event (workspace_id, type, name, properties, occurred_at, received_at,
                            message_id, customer_id, user_id, anonymous_id, context, source,
                            processed_at)
SELECT %(workspace)s, 'track', name, {PROPERTIES}, at, at, %(prefix)s || row_number() OVER (),
       customer_id, coalesce(external_id, ''), '', '{{}}'::jsonb, 'bench', at
  FROM (SELECT c.id AS customer_id, c.external_id, 'purchase' AS name,
               now() - random() * interval '20 days' AS at,
               0.5 AS k, 0.5 + random() * 0.5 AS v1, random() AS v2, random() AS v3
          FROM (SELECT id, external_id FROM profiles_customer
                 WHERE workspace_id = %(workspace)s AND NOT is_anonymous
                 ORDER BY random() LIMIT %(count)s) c
         CROSS JOIN LATERAL generate_series(1, 1 + floor(random() * 3 + c.id * 0)::int)) x
"""


def churn(admin: psycopg.Connection, *, workspace: int, customers: int, round_: int) -> dict:
    """Change about 1% of the workspace: 0.5% of customers get new traits/tier/country/consent,
    another 0.5% one to three new purchases in the last 20 days (large ones: values drawn from
    the upper half). Returns what changed."""
    count = max(1, customers // 200)
    admin.execute(CHURN_TRAITS, {"workspace": workspace, "count": count, **LISTS})
    inserted = admin.execute(
        CHURN_PURCHASES,
        {
            "workspace": workspace,
            "count": count,
            "prefix": f"churn{round_}-{time.time_ns()}-",
            **LISTS,
        },
    ).rowcount
    return {"customers_changed": count, "customers_buying": count, "purchases": inserted}
