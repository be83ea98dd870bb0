"""Where one batch's time goes: the WSGI app called in-process, sequentially, under cProfile.

Same bodies as the HTTP run; no HTTP server and no concurrency, so this is the cost of one batch on
one core. It reports the wall time per batch, the share spent waiting on SQL statements (grouped by
statement), the cumulative time of each stage of the request, and the top functions by own time.
Run by `run.py --profile` against the bench database, or by hand:

    DATABASE_URL=... REDIS_URL=... DJANGO_SETTINGS_MODULE=masivo.settings \\
        .venv/bin/python -m bench.ingest.profiling --write-key msv_wk_… --batches 200
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

STAGES = {
    "request total (WSGI handler)": ("django/core/handlers/wsgi.py", "__call__"),
    "authentication (write key lookup)": ("masivo/tenancy/services.py", "api_key_authenticate"),
    "JSON body parse (json.loads)": ("profiles/api/parsers.py", "parse"),
    "Segment validation (parse_segment_batch)": ("profiles/tracking.py", "parse_segment_batch"),
    "  of which json.dumps for the 32 KB check": ("profiles/tracking.py", "parse_segment_message"),
    "tracking_store (one transaction)": ("profiles/ingestion.py", "tracking_store"),
    "  drop_erased (sha256 per identifier + lookup)": ("profiles/resolution.py", "drop_erased"),
    "  events_append (dedupe + insert)": ("profiles/eventlog.py", "events_append"),
    "  commit": ("django/db/backends/base/base.py", "commit"),
    "  queue_follow_up (Celery send_task to Redis)": ("profiles/ingestion.py", "queue_follow_up"),
    "response rendering": ("rest_framework/response.py", "rendered_content"),
}  # fmt: skip


def statement_kind(sql: str) -> str:
    text = re.sub(r"\s+", " ", sql).strip()
    if text.startswith("SELECT set_config"):
        return "set_config (RLS scope)"
    return text[:90]


def environ_for(body: bytes, write_key: str) -> dict:
    import base64

    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/v1/batch",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_USER_AGENT": "analytics-python/2.3.3",
        "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write-key", required=True)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--skip", type=int, default=0, help="start this far into the stream")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--now", help="the generator's clock (ISO 8601), as run.py used")
    parser.add_argument("--message-prefix", default="prof-", help="keeps messageIds new")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    from bench.ingest.generate import SegmentStream, serialize

    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    stream = SegmentStream(seed=args.seed, customers=args.customers, now=now)
    batches = stream.batches(args.skip + args.batches, args.batch_size)[args.skip :]
    plain = [serialize(batch) for batch in batches]
    application = get_wsgi_application()
    statuses = defaultdict(int)

    def start_response(status, headers, exc_info=None):
        statuses[status] += 1

    def bodies_for(prefix: str) -> list[bytes]:
        marker = f'"messageId":"{args.message_prefix}{prefix}'.encode()
        return [body.replace(b'"messageId":"', marker) for body in plain]

    # Warm up: imports, the database connection, URL resolver caches.
    for body in bodies_for("warm-")[:3]:
        b"".join(application(environ_for(body, args.write_key), start_response))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = Path(f"/proc/{cursor.fetchone()[0]}/schedstat")

    def server_cpu() -> float:
        """The backend's CPU time, in seconds, to the nanosecond (Postgres on this machine)."""
        try:
            return int(backend.read_text().split()[0]) / 1e9
        except (OSError, ValueError):
            return 0.0

    # Pass 1, unprofiled: the real cost of a batch in one process. CPU times (ours and the
    # Postgres backend's) do not depend on what else the machine is doing; the wall time does.
    started, cpu, pg_cpu = time.perf_counter(), time.process_time(), server_cpu()
    for body in bodies_for("plain-"):
        b"".join(application(environ_for(body, args.write_key), start_response))
    plain_wall = time.perf_counter() - started
    plain_cpu = (time.process_time() - cpu, server_cpu() - pg_cpu)
    # Pass 2, the same batches with new messageIds, under cProfile and with SQL timing.
    bodies = bodies_for("profiled-")
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

    profiler = cProfile.Profile()
    started, backend_started = time.perf_counter(), server_cpu()
    with connection.execute_wrapper(timed_sql):
        profiler.enable()
        for body in bodies:
            b"".join(application(environ_for(body, args.write_key), start_response))
        profiler.disable()
    wall = time.perf_counter() - started
    sql_server["(other: BEGIN, set_config, COMMIT with deferred FK checks)"] = (
        server_cpu() - backend_started - sum(sql_server.values())
    )
    timings = (plain_wall, *plain_cpu, wall)
    report(args, profiler, bodies, timings, sql_time, sql_server, sql_count, dict(statuses))


def report(args, profiler, bodies, timings, sql_time, sql_server, sql_count, statuses) -> None:
    batches = len(bodies)
    events = batches * args.batch_size
    print(f"\n{batches} batches of {args.batch_size}, one process, sequential, no HTTP server")
    plain_wall, python_cpu, postgres_cpu, wall = timings
    print(f"responses: {statuses}")
    print(
        f"unprofiled: {plain_wall / batches * 1000:.1f} ms per batch = "
        f"{events / plain_wall:,.0f} ev/s on one core (Postgres on the other); CPU per batch: "
        f"{python_cpu / batches * 1000:.1f} ms in this process, "
        f"{postgres_cpu / batches * 1000:.1f} ms in its Postgres backend"
    )
    print(
        f"under cProfile: {wall / batches * 1000:.1f} ms per batch; cProfile inflates the "
        "Python side, so read the shares, not the absolute times\n"
    )
    stats = pstats.Stats(profiler)
    cumulative = {}
    for (filename, _line, function), row in stats.stats.items():
        for label, (suffix, name) in STAGES.items():
            if function == name and filename.endswith(suffix):
                cumulative[label] = cumulative.get(label, 0.0) + row[3]
    total_sql = sum(sql_time.values())
    print("| stage | ms per batch | share of wall |")
    print("| --- | --- | --- |")
    for label in STAGES:
        seconds = cumulative.get(label, 0.0)
        if label.startswith("  of which json.dumps"):
            seconds = _dumps_in_parse(stats)
        print(f"| {label} | {seconds / batches * 1000:.1f} | {seconds / wall:.0%} |")
    print(f"| all SQL statements (wall, incl. Postgres) | {total_sql / batches * 1000:.1f} "
          f"| {total_sql / wall:.0%} |")  # fmt: skip
    server_total = sum(sql_server.values())
    print(
        f"\nPostgres backend CPU: {server_total / batches * 1000:.1f} ms per batch "
        f"({events / server_total:,.0f} ev/s per Postgres core)\n"
    )
    print("| SQL statement | per batch | wall ms per batch (incl. client) | Postgres CPU ms |")
    print("| --- | --- | --- | --- |")
    for kind, seconds in sorted(sql_server.items(), key=lambda item: -item[1]):
        print(
            f"| `{kind}` | {sql_count.get(kind, 0) / batches:.2f} | "
            f"{sql_time.get(kind, 0) / batches * 1000:.2f} | {seconds / batches * 1000:.2f} |"
        )
    print(f"\ntop {args.top} functions by own time:")
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(args.top)
    print(_trim(buffer.getvalue()))


def _dumps_in_parse(stats: pstats.Stats) -> float:
    """Cumulative time of json.dumps when called from parse_segment_message."""
    total = 0.0
    for (filename, _line, function), row in stats.stats.items():
        if function == "dumps" and filename.endswith("json/__init__.py"):
            for (caller_file, _l, caller), caller_row in row[4].items():
                if caller == "parse_segment_message" and caller_file.endswith("tracking.py"):
                    total += caller_row[3]
    return total


def _trim(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    root = str(Path(__file__).resolve().parents[2]) + "/"
    return "\n".join(line.replace(root, "") for line in lines[start:] if line.strip())


if __name__ == "__main__":
    main()
