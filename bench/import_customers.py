"""A customers CSV import of a million rows, against COPY of the same file.

Writes a CSV (external id, email, names, country, a trait, a tag, a consent column), uploads it
through `profiles.imports.customer_import_create` (chunked into the database) and runs the import
as a worker would (`customer_import_run`, batches of 1,000 rows, each committed with its
checkpoint), as the app role under row-level security. The baseline, in the same run and
database, is the superuser's `COPY` of the same file into a staging table and one
`INSERT ... SELECT` into `profiles_customer` for a second workspace. Also reports the worker's
peak memory, to show that it does not grow with the file.

    .venv/bin/python bench/import_customers.py --admin-url postgresql://postgres@127.0.0.1:5432/postgres
"""

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROLE, DATABASE = "masivo_bench", "masivo_bench_import"
COUNTRIES = ["MX", "MX", "MX", "US", "AR", "CO", "ES", "CL", "PE", "BR"]
PLANS = ["free", "basic", "pro", "gold"]
MAPPING = {
    "id": "external_id", "email": "email", "first_name": "first_name", "last_name": "last_name",
    "country": "country", "plan": "traits.plan", "vip": "tags.vip",
    "newsletter": "consent.email_marketing",
}  # fmt: skip


def write_csv(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "email", "first_name", "last_name", "country", "plan", "vip",
                         "newsletter"])  # fmt: skip
        for number in range(rows):
            writer.writerow([
                f"crm-{number}", f"user{number}@example.com", rng.choice(["Ana", "Luis", "Eva"]),
                f"Apellido{rng.randrange(5000)}", rng.choice(COUNTRIES), rng.choice(PLANS),
                rng.choice(["yes", "no", ""]), rng.choice(["granted", "denied", ""]),
            ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import psycopg

    from masivo.dbsetup import bootstrap_app_role

    bootstrap_app_role(
        admin_url=args.admin_url,
        role=ROLE,
        password="bench",  # noqa: S106 (a throwaway local role)
        database=DATABASE,
    )
    host_url = args.admin_url.rsplit("/", 1)[0]
    admin_db_url = f"{host_url}/{DATABASE}"
    os.environ["DATABASE_URL"] = host_url.replace("postgres@", f"{ROLE}:bench@", 1) + f"/{DATABASE}"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    os.environ["DJANGO_SETTINGS_MODULE"] = "masivo.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from masivo.tenancy.context import workspace_scope
    from masivo.tenancy.models import Organization, Workspace
    from profiles.imports import customer_import_create, customer_import_run

    try:
        call_command("migrate", verbosity=0)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "customers.csv"
            started = time.perf_counter()
            write_csv(path, args.rows, args.seed)
            size_mb = path.stat().st_size / 1e6
            took = time.perf_counter() - started
            print(f"wrote {args.rows:,} rows ({size_mb:.0f} MB) in {took:.0f} s")

            organization = Organization.objects.create(name="Bench", slug="bench")
            workspace = Workspace.objects.create(organization=organization, name="Import")
            baseline_ws = Workspace.objects.create(organization=organization, name="Copy")
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            with workspace_scope(workspace.id):
                started = time.perf_counter()
                with path.open("rb") as upload:
                    job = customer_import_create(
                        workspace=workspace, upload=upload, filename="customers.csv",
                        mapping=MAPPING, match_by="external_id", actor="bench",
                    )  # fmt: skip
                stored = time.perf_counter() - started
                started = time.perf_counter()
                job.status = "running"
                job.save(update_fields=["status"])
                if os.environ.get("BENCH_PROFILE"):
                    import cProfile
                    import pstats

                    profiler = cProfile.Profile()
                    profiler.runcall(customer_import_run, customer_import=job)
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
                else:
                    customer_import_run(customer_import=job)
                ran = time.perf_counter() - started
                job.refresh_from_db()
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            assert job.status == "succeeded", job.error
            assert job.rows_created == args.rows, (job.rows_created, job.rows_failed)

            with psycopg.connect(admin_db_url, autocommit=True) as admin:
                started = time.perf_counter()
                admin.execute(
                    "CREATE TEMP TABLE staging (id text, email text, first_name text, "
                    "last_name text, country text, plan text, vip text, newsletter text)"
                )
                with (
                    path.open("rb") as source,
                    admin.cursor().copy(
                        "COPY staging FROM STDIN WITH (FORMAT csv, HEADER true)"
                    ) as copy,
                ):
                    while block := source.read(1 << 20):
                        copy.write(block)
                admin.execute(
                    "INSERT INTO profiles_customer (workspace_id, external_id, email, first_name, "
                    "last_name, gender, country, city, timezone, locale, tier, status, "
                    "is_anonymous, tags, traits, consent, created_at, updated_at, purchase_count, "
                    "purchase_total, purchases_30d_count, purchases_30d_total, "
                    "purchases_month_count, purchases_month_total) "
                    "SELECT %s, id, email, first_name, last_name, '', country, '', '', '', '', "
                    "'active', false, CASE WHEN vip = '' THEN '{}'::jsonb "
                    "ELSE jsonb_build_object('vip', vip) END, jsonb_build_object('plan', plan), "
                    "CASE WHEN newsletter = '' THEN '{}'::jsonb ELSE jsonb_build_object("
                    "'email_marketing', jsonb_build_object('status', newsletter)) END, "
                    "now(), now(), 0, 0, 0, 0, 0, 0 FROM staging",
                    [baseline_ws.id],
                )
                copied = time.perf_counter() - started

        total = stored + ran
        print(f"\n{args.rows:,} rows, {size_mb:.0f} MB CSV\n")
        print("| path | time | rows/s | vs COPY |")
        print("| --- | --- | --- | --- |")
        rate = args.rows / copied
        print(f"| COPY + INSERT ... SELECT (superuser) | {copied:.1f} s | {rate:,.0f} | 1.00x |")
        print(f"| Masivo: store the upload in chunks | {stored:.1f} s | | |")
        print(f"| Masivo: the import (batches of 1,000) | {ran:.1f} s | {args.rows / ran:,.0f} | |")
        print(
            f"| Masivo: total | {total:.1f} s | {args.rows / total:,.0f} | {total / copied:.1f}x |"
        )
        print(f"\npeak RSS of this process: {rss_before:.0f} MiB before the import, "
              f"{rss_after:.0f} MiB after ({size_mb:.0f} MB file)")  # fmt: skip
    finally:
        connections.close_all()
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        print(f"(dropped the scratch database {DATABASE})")


if __name__ == "__main__":
    main()
