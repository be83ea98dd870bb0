"""Where the follow-up's time goes, statement by statement: `process_events_now` called
in-process on a stored backlog (no Celery, one process), with every SQL statement timed (wall,
as the worker sees it, and the CPU its Postgres backend spent, from /proc/<pid>/schedstat,
which does not depend on the neighbours); then the raw-SQL floor of the membership work: each
real-time audience's compiled rule (`Compiler.members_sql`, the statement recalculation runs)
over the whole workspace. Run by run.py, or by hand against a kept database:

    DATABASE_URL=... REDIS_URL=... DJANGO_SETTINGS_MODULE=masivo.settings \\
        .venv/bin/python -m bench.pipeline.statements --workspace-id 1
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def statement_kind(sql: str) -> str:
    text = re.sub(r"\s+", " ", sql).strip()
    if text.startswith("SELECT set_config"):
        return "set_config (RLS scope)"
    return text[:110]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace-id", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=15, help="per compiled rule, seconds")
    parser.add_argument(
        "--claims", type=int, default=4, help="follow-up transactions (of up to 5,000 events)"
    )
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.db import OperationalError, connection, transaction
    from django.utils import timezone

    from audiences.models import Audience
    from audiences.recalculation import compiler_for_workspace
    from audiences.rules.ast import parse_rules
    from masivo.pipeline import process_events_now
    from masivo.tenancy.context import workspace_scope
    from masivo.tenancy.models import Workspace

    with workspace_scope(args.workspace_id):
        workspace = Workspace.objects.get(id=args.workspace_id)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = Path(f"/proc/{cursor.fetchone()[0]}/schedstat")

        def server_cpu() -> float:
            try:
                return int(backend.read_text().split()[0]) / 1e9
            except (OSError, ValueError):
                return 0.0

        sql_time: dict[str, float] = defaultdict(float)
        sql_server: dict[str, float] = defaultdict(float)
        sql_count: dict[str, int] = defaultdict(int)

        def timed_sql(execute, sql, params, many, context):
            started, cpu = time.perf_counter(), server_cpu()
            try:
                return execute(sql, params, many, context)
            finally:
                kind = statement_kind(sql)
                sql_time[kind] += time.perf_counter() - started
                sql_server[kind] += server_cpu() - cpu
                sql_count[kind] += 1

        started, cpu, pg_started = time.perf_counter(), time.process_time(), server_cpu()
        with connection.execute_wrapper(timed_sql):
            events = process_events_now(workspace=workspace, max_batches=args.claims)
        wall = time.perf_counter() - started
        python_cpu = time.process_time() - cpu
        postgres_cpu = server_cpu() - pg_started
        sql_server["(other: BEGIN, COMMIT, between statements)"] = postgres_cpu - sum(
            sql_server.values()
        )

        now = timezone.now()
        audiences = list(Audience.objects.filter(is_realtime=True).order_by("id"))
        floor = []
        for audience in audiences:
            compiler = compiler_for_workspace(workspace=workspace, now=now)
            statement, params = compiler.members_sql(parse_rules(audience.rules))
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [f"{args.timeout}s"]
                )
                begun, cpu_before = time.perf_counter(), server_cpu()
                try:
                    with transaction.atomic():
                        cursor.execute(f"SELECT count(*) FROM ({statement}) members", params)
                        members = cursor.fetchone()[0]
                except OperationalError:  # QueryCanceled: the statement timeout
                    members = None
                floor.append(
                    (audience.name, members, time.perf_counter() - begun,
                     server_cpu() - cpu_before)
                )  # fmt: skip
        customers = _customers(connection, args.workspace_id)
    statements = [
        {"kind": kind, "count": sql_count.get(kind, 0), "wall": sql_time.get(kind, 0.0),
         "postgres": seconds}
        for kind, seconds in sql_server.items()
    ]  # fmt: skip
    print(
        json.dumps(
            {
                "events": events, "wall": wall, "python_cpu": python_cpu,
                "postgres_cpu": postgres_cpu, "statements": statements,
                "floor": floor, "customers": customers,
            }
        )
    )  # fmt: skip


def _customers(connection, workspace_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM profiles_customer WHERE workspace_id = %s", [workspace_id]
        )
        return cursor.fetchone()[0]


if __name__ == "__main__":
    main()
