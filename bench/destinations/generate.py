"""The benchmark's data, generated with set-based SQL as the superuser.

- `customers`: `count` customers of one workspace, every one with an email and an E.164 phone
  (Meta hashes both) and advertising consent granted, no vendor decision recorded (so the
  workspace's default, not required, lets Meta have them).
- `membership`: a list audience's members, the first `count` customers by id.
- `churn`: 1% of the members leave, as many customers who were not members join, and 0.1% of
  the members who stay change their email: what an incremental run then has to send.
"""

from __future__ import annotations

import psycopg

INSERT_CUSTOMERS = """
INSERT INTO profiles_customer (
    workspace_id, external_id, email, phone, first_name, last_name, gender, birth_date,
    country, city, timezone, locale, tier, status, is_anonymous, tags, traits, consent,
    consent_vendors, consent_string, consent_string_version,
    created_at, updated_at, last_seen_at, purchase_count, purchase_total, last_purchase_at,
    purchases_30d_count, purchases_30d_total, purchases_month_count, purchases_month_total)
SELECT %(workspace)s, 'd-' || g, 'user' || g || '.d@example.com', '+52' || (5500000000 + g),
       'Lucía', 'Bench', '', NULL, 'MX', '', 'America/Mexico_City', 'es', '', 'active', false,
       '[]'::jsonb, '{}'::jsonb,
       '{"advertising": {"status": "granted", "source": "signup"}}'::jsonb, '{}'::jsonb, '', '',
       now(), now(), NULL, 0, 0, NULL, 0, 0, 0, 0
  FROM generate_series(1, %(count)s) AS g
"""

INSERT_MEMBERSHIP = """
INSERT INTO audiences_membership (workspace_id, audience_id, customer_id, since, source)
SELECT workspace_id, %(audience)s, id, now(), 'list'
  FROM profiles_customer WHERE workspace_id = %(workspace)s
 ORDER BY id LIMIT %(count)s
"""

# Members picked by their rank among the workspace's customers: every 100th leaves (1%), every
# 1,000th of those who stay (offset, so never one who leaves) changes email, and the customers
# ranked after the audience join, as many as left.
CHURN = [
    """
    DELETE FROM audiences_membership m USING (
        SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n
                          FROM profiles_customer WHERE workspace_id = %(workspace)s) r
         WHERE n <= %(members)s AND n %% 100 = 7) leaving
     WHERE m.workspace_id = %(workspace)s AND m.audience_id = %(audience)s
       AND m.customer_id = leaving.id
    """,
    """
    INSERT INTO audiences_membership (workspace_id, audience_id, customer_id, since, source)
    SELECT %(workspace)s, %(audience)s, id, now(), 'list'
      FROM (SELECT id, row_number() OVER (ORDER BY id) AS n
              FROM profiles_customer WHERE workspace_id = %(workspace)s) r
     WHERE n > %(members)s AND n <= %(members)s + %(members)s / 100
    """,
    """
    UPDATE profiles_customer c SET email = 'new.' || c.email, updated_at = now()
      FROM (SELECT id, row_number() OVER (ORDER BY id) AS n
              FROM profiles_customer WHERE workspace_id = %(workspace)s) r
     WHERE c.workspace_id = %(workspace)s AND c.id = r.id
       AND r.n <= %(members)s AND r.n %% 1000 = 3
    """,
]


def create_workspace(admin: psycopg.Connection) -> int:
    organization = admin.execute(
        "INSERT INTO tenancy_organization (name, slug, created_at) "
        "VALUES ('Bench destinations', 'bench-destinations', now()) RETURNING id"
    ).fetchone()[0]
    return admin.execute(
        "INSERT INTO tenancy_workspace (organization_id, name, timezone, created_at) "
        "VALUES (%s, 'Destinations', 'America/Mexico_City', now()) RETURNING id",
        [organization],
    ).fetchone()[0]


def customers(admin: psycopg.Connection, *, workspace: int, count: int) -> int:
    admin.execute("SET session_replication_role = replica")  # consistent by construction
    inserted = admin.execute(INSERT_CUSTOMERS, {"workspace": workspace, "count": count}).rowcount
    admin.execute("RESET session_replication_role")
    admin.execute("VACUUM ANALYZE profiles_customer")
    return inserted


def membership(admin: psycopg.Connection, *, workspace: int, audience: int, count: int) -> int:
    admin.execute("SET session_replication_role = replica")
    inserted = admin.execute(
        INSERT_MEMBERSHIP, {"workspace": workspace, "audience": audience, "count": count}
    ).rowcount
    admin.execute("RESET session_replication_role")
    admin.execute("UPDATE audiences_audience SET size = %s WHERE id = %s", [inserted, audience])
    admin.execute("VACUUM ANALYZE audiences_membership")
    return inserted


def churn(admin: psycopg.Connection, *, workspace: int, audience: int, members: int) -> dict:
    params = {"workspace": workspace, "audience": audience, "members": members}
    admin.execute("SET session_replication_role = replica")
    left, joined, changed = (admin.execute(sql, params).rowcount for sql in CHURN)
    admin.execute("RESET session_replication_role")
    for table in ("audiences_membership", "profiles_customer"):
        admin.execute(f"VACUUM ANALYZE {table}")
    return {"left": left, "joined": joined, "changed_email": changed}
