"""Cost of the two tenant walls on a typical indexed tenant read.

Compares, in one run on one database:
  baseline   raw SQL with an explicit `WHERE workspace_id = %s`, as a superuser (no RLS at all)
  rls_sql    the same raw SQL as the application role, so the RLS policy is evaluated too
  orm        the scoped manager (`ApiKey.objects`) inside `workspace_scope`, as the app role,
             including the backend's set_config when the workspace changes

Usage (needs a superuser URL to build the data and for the baseline):
    .venv/bin/python bench/tenancy.py --admin-url postgresql://postgres@127.0.0.1:5432/postgres
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--workspaces", type=int, default=200)
    parser.add_argument("--keys-per-workspace", type=int, default=500)
    parser.add_argument("--queries", type=int, default=3000)
    args = parser.parse_args()

    import psycopg

    from masivo.dbsetup import bootstrap_app_role

    bootstrap_app_role(
        admin_url=args.admin_url,
        role="masivo_bench",
        password="bench",  # noqa: S106 (a throwaway local role)
        database="masivo_bench",
    )
    host_url = args.admin_url.rsplit("/", 1)[0]
    os.environ["DATABASE_URL"] = host_url.replace("postgres@", "masivo_bench:bench@", 1) + (
        "/masivo_bench"
    )
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    os.environ["DJANGO_SETTINGS_MODULE"] = "masivo.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from masivo.tenancy.context import workspace_scope
    from masivo.tenancy.models import ApiKey, Organization, Workspace

    call_command("migrate", verbosity=0)
    admin_db_url = host_url + "/masivo_bench"
    with psycopg.connect(admin_db_url, autocommit=True) as admin:
        admin.execute("TRUNCATE tenancy_apikey, tenancy_workspace, tenancy_organization CASCADE")
        admin.execute(
            "INSERT INTO tenancy_organization (name, slug, created_at) VALUES ('B','b',now())"
        )
        admin.execute(
            "INSERT INTO tenancy_workspace (organization_id, name, timezone, created_at) "
            "SELECT (SELECT id FROM tenancy_organization), 'w' || g, 'UTC', now() "
            "FROM generate_series(1, %s) g",
            [args.workspaces],
        )
        admin.execute(
            "INSERT INTO tenancy_apikey (workspace_id, kind, name, role, prefix, token_hash, "
            "created_at) SELECT w.id, 'secret', 'k' || g, 'admin', 'msv_sk_x', "
            "md5(w.id || '-' || g) || md5(g || '-' || w.id), now() "
            "FROM tenancy_workspace w, generate_series(1, %s) g",
            [args.keys_per_workspace],
        )
        admin.execute("ANALYZE tenancy_apikey")
        workspace_ids = [row[0] for row in admin.execute("SELECT id FROM tenancy_workspace")]
    query = (
        "SELECT id, name, prefix, created_at FROM tenancy_apikey WHERE workspace_id = %s "
        "ORDER BY created_at DESC LIMIT 50"
    )

    def timed(run) -> list[float]:
        samples = []
        for number in range(args.queries):
            start = time.perf_counter()
            run(workspace_ids[number % len(workspace_ids)])
            samples.append(time.perf_counter() - start)
        return samples

    with psycopg.connect(admin_db_url) as admin:
        baseline = timed(lambda ws: admin.execute(query, [ws]).fetchall())
        unprepared = timed(lambda ws: admin.execute(query, [ws], prepare=False).fetchall())

    def rls_same_workspace(ws):
        with workspace_scope(workspace_ids[0]), connection.cursor() as cursor:
            cursor.execute(query, [workspace_ids[0]])
            cursor.fetchall()

    rls_same = timed(rls_same_workspace)

    def rls_sql(ws):
        with workspace_scope(ws), connection.cursor() as cursor:
            cursor.execute(query, [ws])
            cursor.fetchall()

    rls = timed(rls_sql)

    def orm(ws):
        with workspace_scope(ws):
            list(
                ApiKey.objects.order_by("-created_at").values_list(
                    "id", "name", "prefix", "created_at"
                )[:50]
            )

    orm_samples = timed(orm)
    assert Workspace.objects.count() == args.workspaces
    assert Organization.objects.count() == 1

    def line(name, samples):
        median = statistics.median(samples) * 1e6
        p95 = statistics.quantiles(samples, n=20)[18] * 1e6
        ratio = statistics.median(samples) / statistics.median(baseline)
        print(f"| {name} | {median:.0f} µs | {p95:.0f} µs | {ratio:.2f}x |")

    print(f"{args.workspaces} workspaces x {args.keys_per_workspace} keys, {args.queries} queries,")
    print(
        "each query for a different workspace than the previous one (worst case for set_config)\n"
    )
    print("| path | median | p95 | vs baseline |")
    print("| --- | --- | --- | --- |")
    line("baseline: raw SQL, superuser, no RLS (prepared)", baseline)
    line("raw SQL, superuser, no RLS, not prepared", unprepared)
    line("raw SQL as app role, same workspace each time (no set_config)", rls_same)
    line("raw SQL as app role (RLS policy + set_config)", rls)
    line("ORM scoped manager as app role", orm_samples)


if __name__ == "__main__":
    main()
