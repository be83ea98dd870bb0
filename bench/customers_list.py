"""The dashboard's customers list at a million customers: the app's queries against raw SQL.

Builds a scratch database (migrated as the app role), fills one workspace with 1,000,000
customers and another with 1,000 using SQL, then times each list query two ways in one run:
  app   the dashboard's own code (CustomerFilterForm → customers_matching → newest_first_page)
        as the application role inside workspace_scope, so both tenant walls apply
  sql   hand-written SQL for the same rows as the superuser (no row-level security), prepared
Every query's two answers are checked to be the same rows. Queries slower than 50 ms get their
EXPLAIN printed. The scratch database is dropped at the end.

Usage:
    .venv/bin/python bench/customers_list.py --admin-url postgresql://postgres@127.0.0.1:5432/postgres
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATABASE = "masivo_bench_customers"
ROLE = "masivo_bench"
SLOW_MS = 50
PAGE_SIZE = 50

FIRST_NAMES = [
    "Lucía", "Sofía", "María", "Valentina", "Camila", "Isabella", "Daniela", "Mariana",
    "Gabriela", "Fernanda", "Ximena", "Regina", "Renata", "Victoria", "Andrea", "Paula",
    "Ana", "Elena", "Carmen", "Laura", "Natalia", "Sara", "Julia", "Emma", "Olivia",
    "Santiago", "Mateo", "Sebastián", "Leonardo", "Matías", "Emiliano", "Diego", "Daniel",
    "Miguel", "Alejandro", "Javier", "Carlos", "José", "Juan", "Luis", "Pablo", "Andrés",
    "Nicolás", "Tomás", "Gabriel", "Samuel", "David", "Martín", "Hugo", "Álvaro", "Adrián",
    "Bruno", "Iker", "Rodrigo", "Joaquín", "Emilio", "Fernando", "Ricardo", "Ignacio", "Raúl",
]  # fmt: skip
LAST_NAMES = [
    "García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez", "Sánchez",
    "Ramírez", "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Cruz", "Morales", "Reyes",
    "Gutiérrez", "Ortiz", "Chávez", "Ruiz", "Jiménez", "Mendoza", "Álvarez", "Castillo",
    "Romero", "Moreno", "Vázquez", "Herrera", "Medina", "Aguilar", "Vargas", "Castro",
    "Ramos", "Guerrero", "Rojas", "Navarro", "Domínguez", "Muñoz", "Salazar", "Delgado",
    "Villanueva", "Cortés", "Ríos", "Núñez", "Soto", "Campos", "Vega", "Fuentes", "Cabrera",
    "Carrillo", "Espinoza", "Sandoval", "Ibarra", "Lara", "Miranda", "Peña", "Silva",
    "Figueroa", "Luna",
]  # fmt: skip
DOMAINS = ["gmail.com", "hotmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me"]
# 1,000 slots: Portugal is one in a thousand (the rare filter).
COUNTRIES = (
    ["MX"] * 350 + ["US"] * 150 + ["CO"] * 100 + ["BR"] * 100 + ["AR"] * 80 + ["ES"] * 70
    + ["CL"] * 50 + ["PE"] * 50 + ["EC"] * 30 + ["UY"] * 19 + ["PT"] * 1
)  # fmt: skip
PLANS = ["free", "free", "free", "basic", "basic", "pro", "business"]

INSERT_CUSTOMERS = """
INSERT INTO profiles_customer (
    workspace_id, external_id, email, phone, first_name, last_name, gender, birth_date,
    country, city, timezone, locale, tier, status, is_anonymous, tags, traits, consent,
    created_at, updated_at, last_seen_at, purchase_count, purchase_total, last_purchase_at,
    purchases_30d_count, purchases_30d_total, purchases_month_count, purchases_month_total,
    metrics_updated_at)
SELECT %(workspace)s,
       CASE WHEN r.anonymous THEN NULL ELSE %(prefix)s || r.g END,
       CASE WHEN r.anonymous THEN NULL ELSE lower(translate(
           (%(first)s::text[])[r.f] || '.' || (%(last)s::text[])[r.l],
           'áéíóúñÁÉÍÓÚÑ', 'aeiounAEIOUN')) || r.g || '@' || (%(domains)s::text[])[r.d] END,
       CASE WHEN r.anonymous OR r.g %% 3 = 0 THEN NULL
            ELSE '+52' || (5500000000 + r.g)::text END,
       CASE WHEN r.anonymous THEN '' ELSE (%(first)s::text[])[r.f] END,
       CASE WHEN r.anonymous THEN '' ELSE (%(last)s::text[])[r.l] END,
       '', NULL, (%(countries)s::text[])[r.c], '', '', '', '',
       CASE WHEN r.g %% 20 = 0 THEN 'inactive' ELSE 'active' END,
       r.anonymous, '{}'::jsonb,
       jsonb_build_object('plan', (%(plans)s::text[])[1 + r.g %% 7]), '{}'::jsonb,
       r.updated - interval '30 days', r.updated, r.updated - interval '1 hour',
       r.purchases, r.purchases * 37.5, CASE WHEN r.purchases > 0 THEN r.updated END,
       0, 0, 0, 0, r.updated
  FROM (
    SELECT g,
           random() < 0.08 AS anonymous,
           1 + floor(random() * cardinality(%(first)s::text[]))::int AS f,
           1 + floor(random() * cardinality(%(last)s::text[]))::int AS l,
           1 + floor(random() * cardinality(%(domains)s::text[]))::int AS d,
           1 + floor(random() * cardinality(%(countries)s::text[]))::int AS c,
           floor(random() * random() * 12)::int AS purchases,
           now() - random() * interval '730 days' AS updated
      FROM generate_series(1, %(count)s) AS g
  ) r
"""
COLUMNS = (
    "id, first_name, last_name, email, external_id, country, status, is_anonymous, "
    "last_seen_at, purchase_count, updated_at"
)
ORDER = f"ORDER BY updated_at DESC, id DESC LIMIT {PAGE_SIZE + 1}"
# The best hand-written form: starts_with() on the prefix indexes (LIKE would do as a superuser,
# but the same text is then also what the app role can run fast under row-level security).
SEARCH = (
    "(starts_with(email, %(lower_term)s) OR external_id = %(term)s "
    "OR starts_with(phone, %(term)s) OR starts_with(first_name_upper, upper(%(term)s)) "
    "OR starts_with(last_name_upper, upper(%(term)s)))"
)


def search_params(term: str) -> dict:
    return {
        "term": term, "lower_term": term.lower(),
    }  # fmt: skip


def median_ms(run, repeat: int) -> float:
    for _ in range(3):
        run()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    import psycopg

    from masivo.dbsetup import bootstrap_app_role

    host_url = args.admin_url.rsplit("/", 1)[0]
    admin_db_url = f"{host_url}/{DATABASE}"
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
        run_benchmark(args, admin_db_url)
    finally:
        connections.close_all()
        if not args.keep:
            with psycopg.connect(args.admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            print(f"\n(dropped the scratch database {DATABASE})")


def run_benchmark(args, admin_db_url: str) -> None:
    import psycopg

    from masivo.tenancy.context import workspace_scope
    from masivo.ui.keyset import Cursor, newest_first_page, newest_first_slice
    from profiles.views.customers import customers_matching
    from profiles.views.forms import CustomerFilterForm

    with psycopg.connect(admin_db_url, autocommit=True) as admin:
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
        admin.execute("SELECT setseed(0.42)")
        lists = {
            "first": FIRST_NAMES, "last": LAST_NAMES, "domains": DOMAINS,
            "countries": COUNTRIES, "plans": PLANS,
        }  # fmt: skip
        start = time.perf_counter()
        for workspace, count, prefix in [(big, args.customers, "crm-"), (small, 1000, "s-")]:
            admin.execute(
                INSERT_CUSTOMERS,
                {"workspace": workspace, "count": count, "prefix": prefix, **lists},
            )
        admin.execute("VACUUM ANALYZE profiles_customer")
        print(
            f"Generated {args.customers:,} + 1,000 customers in "
            f"{time.perf_counter() - start:.0f} s, then VACUUM ANALYZE.\n"
        )
        page_99_last = admin.execute(
            f"SELECT updated_at, id FROM profiles_customer WHERE workspace_id = %s "
            f"ORDER BY updated_at DESC, id DESC OFFSET {99 * PAGE_SIZE - 1} LIMIT 1",
            [big],
        ).fetchone()
    cursor_100 = Cursor(at=page_99_last[0], id=page_99_last[1])

    where = "WHERE workspace_id = %(workspace)s"
    cases = [
        ("first page", {}, None, f"{where}", {}),
        (
            "search, email prefix `lucia.mart`", {"search": "lucia.mart"}, None,
            f"{where} AND {SEARCH}", search_params("lucia.mart"),
        ),
        (
            "search, name prefix `villan`", {"search": "villan"}, None,
            f"{where} AND {SEARCH}", search_params("villan"),
        ),
        (
            "search, exact external id `crm-424242`", {"search": "crm-424242"}, None,
            f"{where} AND {SEARCH}", search_params("crm-424242"),
        ),
        ("filter, country CO (10%)", {"country": "co"}, None, f"{where} AND country = 'CO'", {}),
        ("filter, country PT (0.1%)", {"country": "pt"}, None, f"{where} AND country = 'PT'", {}),
        (
            "100th page by cursor", {}, cursor_100,
            f"{where} AND (updated_at, id) < (%(at)s, %(id)s)",
            {"at": cursor_100.at, "id": cursor_100.id},
        ),
    ]  # fmt: skip

    def app_page(data, after):
        with workspace_scope(big):
            form = CustomerFilterForm(data)
            assert form.is_valid(), form.errors
            page = newest_first_page(
                customers_matching(form), time_field="updated_at", after=after, size=PAGE_SIZE
            )
            return [customer.id for customer in page.rows]

    def app_explain(data, after) -> str:
        with workspace_scope(big):
            form = CustomerFilterForm(data)
            assert form.is_valid()
            query = newest_first_slice(
                customers_matching(form), time_field="updated_at", after=after, size=PAGE_SIZE
            )
            return query.explain(analyze=True, buffers=True)

    rows, slow = [], []
    with psycopg.connect(admin_db_url) as admin:

        def sql_page(sql, params):
            found = admin.execute(sql, params).fetchall()
            return [row[0] for row in found[:PAGE_SIZE]]

        for name, data, after, condition, params in cases:
            sql = f"SELECT {COLUMNS} FROM profiles_customer {condition} {ORDER}"
            params = {"workspace": big, **params}
            expected = sql_page(sql, params)
            assert app_page(data, after) == expected, name
            app = median_ms(lambda d=data, a=after: app_page(d, a), args.repeat)
            raw = median_ms(lambda s=sql, p=params: sql_page(s, p), args.repeat)
            rows.append((name, len(expected), app, raw))
            if app > SLOW_MS or raw > SLOW_MS:
                slow.append((name, app_explain(data, after)))
        informational = [
            (
                "100th page by OFFSET (not used)",
                f"SELECT {COLUMNS} FROM profiles_customer {where} "
                f"ORDER BY updated_at DESC, id DESC OFFSET {99 * PAGE_SIZE} LIMIT {PAGE_SIZE + 1}",
            ),
            (
                "COUNT(*) of the workspace (not used)",
                f"SELECT count(*) FROM profiles_customer {where}",
            ),
        ]
        extra = [
            (name, median_ms(lambda s=sql: admin.execute(s, {"workspace": big}).fetchall(), 10))
            for name, sql in informational
        ]

    print(f"{args.customers:,} customers in one workspace, 1,000 in another; pages of {PAGE_SIZE};")
    print(f"median of {args.repeat} runs each.\n")
    print("| query | rows | app (ORM, app role, RLS) | raw SQL (superuser) | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for name, count, app, raw in rows:
        print(f"| {name} | {count} | {app:.2f} ms | {raw:.2f} ms | {app / raw:.2f}x |")
    for name, raw in extra:
        print(f"| {name} | | | {raw:.2f} ms | |")
    for name, plan in slow:
        print(f"\nSlower than {SLOW_MS} ms: {name}. EXPLAIN (ANALYZE, BUFFERS) of the app's query:")
        print(plan)


if __name__ == "__main__":
    main()
