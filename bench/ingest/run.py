"""Ingestion benchmark, end to end: Masivo's /v1/batch over HTTP against COPY of the same rows.

1. Generates the Segment batches (deterministic for a seed) and serializes them, untimed.
2. Creates a dedicated role and database (`masivo db bootstrap`), migrates, and mints a workspace
   and write key with `masivo workspace create`, as an operator would.
3. For each server shape (`--workers 2,3,4`, or `3x2` for 3 workers x 2 threads): resets the
   customer tables, seeds the known customers and some event history, starts gunicorn, drives
   it for `--warmup` + `--duration` seconds, stops it. No Celery worker runs: the follow-up queued
   after each batch would compete for the same two cores; the Redis queue length is reported.
4. COPYs the same events, as Masivo stores them, into a fresh workspace as a superuser, timed.
5. Optionally (`--profile`) samples the best shape with py-spy and profiles batches in-process.
6. Prints markdown tables, drops the database and stops every process it started.

    .venv/bin/python bench/ingest/run.py                       # ~4-5 minutes
    .venv/bin/python bench/ingest/run.py --workers 3 --duration 20 --profile
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.ingest import baseline, pyspy
from bench.ingest.generate import SegmentStream, serialize
from bench.ingest.load import LoadResult, ResourceSampler, drive
from bench.ingest.server import BenchDatabase, Gunicorn

GOAL_EVENTS_PER_SECOND = 10_000
GOAL_COPY_RATIO = 0.25
GOAL_P99_MS = 250
MIB = 1024 * 1024


@dataclass
class Shape:
    workers: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> Shape:
        workers, _, threads = text.partition("x")
        return cls(int(workers), int(threads or 1))


@dataclass
class Run:
    label: str
    concurrency: int
    result: LoadResult
    queue: int
    logged_errors: Counter


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30, help="measured seconds per shape")
    parser.add_argument("--warmup", type=float, default=5, help="unmeasured seconds first")
    parser.add_argument(
        "--workers", default="1,2,3,4,2x4", help="gunicorn shapes: N workers, or NxT with T threads"
    )
    parser.add_argument(
        "--concurrency", type=int, help="client connections (default: 2 per worker thread)"
    )
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--batches", type=int, default=1500, help="distinct batches generated (then reused)"
    )
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--history", type=int, default=200_000, help="past events seeded")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--profile", action="store_true", help="py-spy + in-process cProfile")
    parser.add_argument("--profile-seconds", type=float, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--app-url",
        default="postgresql://masivo_bench:bench@127.0.0.1:5432/masivo_bench_ingest",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def prepare(database: BenchDatabase, workspace_id: int, copy_workspace_id: int, stream, args):
    """Seed once: known customers and history for the bench workspace, known customers for the
    COPY one; every shape then starts from this snapshot."""
    database.seed_customers(workspace_id, stream.population.known_rows())
    database.seed_history(workspace_id, args.history)
    database.seed_customers(copy_workspace_id, stream.population.known_rows())
    database.snapshot()


def measure_shape(args, database, workspace, shape, bodies, sizes) -> Run:
    database.restore()
    database.clear_queue()
    server = Gunicorn(database, workers=shape.workers, threads=shape.threads, port=args.port)
    concurrency = args.concurrency or 2 * shape.workers * shape.threads
    log(f"{server.label}, {concurrency} connections: {args.warmup:g}+{args.duration:g} s")
    try:
        server.start()
        with database.admin() as admin:
            sampler = ResourceSampler(
                server_pid=server.process.pid,
                postgres_pids=lambda: database.backend_pids(admin),
                backend_states=lambda: database.backend_states(admin),
            )
            result = drive(
                host="127.0.0.1",
                port=args.port,
                write_key=workspace.write_key,
                bodies=bodies,
                events_per_body=sizes,
                concurrency=concurrency,
                warmup=args.warmup,
                duration=args.duration,
                sampler=sampler,
            )
    finally:
        server.stop()
    run = Run(server.label, concurrency, result, database.queue_length(), server.logged_errors())
    log(
        f"  {result.events_per_second:,.0f} ev/s, p50 {result.p50_ms:.0f} ms, "
        f"p99 {result.p99_ms:.0f} ms, errors {dict(result.errors)}"
    )
    return run


def profile_shape(args, database, workspace, shape, bodies, sizes) -> Path | None:
    if not pyspy.available():
        log("py-spy is not installed (.venv/bin/pip install py-spy); skipping the sampling")
        return None
    database.restore()
    server = Gunicorn(database, workers=shape.workers, threads=shape.threads, port=args.port)
    output = Path(tempfile.gettempdir()) / "masivo-bench-ingest-pyspy.txt"
    log(f"py-spy on {server.label} for {args.profile_seconds:g} s")
    recorder = None

    def start_recording() -> None:
        nonlocal recorder
        recorder = pyspy.record(server.process.pid, args.profile_seconds, output)

    try:
        server.start()
        with database.admin() as admin:
            sampler = ResourceSampler(
                server_pid=server.process.pid, postgres_pids=lambda: database.backend_pids(admin)
            )
            drive(
                host="127.0.0.1",
                port=args.port,
                write_key=workspace.write_key,
                bodies=bodies,
                events_per_body=sizes,
                concurrency=args.concurrency or 2 * shape.workers * shape.threads,
                warmup=3,
                duration=args.profile_seconds + 1,
                sampler=sampler,
                on_window_start=start_recording,
            )
            if recorder is None:
                return None
            _, errors = recorder.communicate(timeout=60)
            if recorder.returncode != 0:
                log(f"py-spy failed: {errors.decode(errors='replace')[-500:]}")
                return None
    finally:
        server.stop()
    return output


def profile_in_process(args, database, workspace, now: datetime) -> str:
    database.restore()
    log("cProfile of the WSGI app in one process")
    result = subprocess.run(
        [
            sys.executable, "-m", "bench.ingest.profiling", "--write-key", workspace.write_key,
            "--batches", "150", "--seed", str(args.seed), "--customers", str(args.customers),
            "--batch-size", str(args.batch_size), "--now", now.isoformat(),
        ],
        cwd=Path(__file__).resolve().parents[2], env=database.env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    return result.stdout + (result.stderr[-2000:] if result.returncode else "")


def run_baseline(database, workspace_id, batches) -> list[baseline.CopyResult]:
    database.restore()
    user_ids = {m["userId"] for body in batches for m in body["batch"] if "userId" in m}
    with database.admin() as admin:
        customer_ids = baseline.ensure_customers(admin, workspace_id, user_ids)
        admin.execute("ANALYZE profiles_customer")
    received_at = datetime.now(UTC)
    rows = baseline.stored_rows(
        batches, workspace_id=workspace_id, customer_ids=customer_ids, received_at=received_at
    )
    log(f"COPY baseline: {sum(len(b) for b in rows):,} rows")
    whole = baseline.copy_all(database.admin_db_url, rows)
    rows = baseline.stored_rows(
        batches[: len(batches) // 3],
        workspace_id=workspace_id,
        customer_ids=customer_ids,
        received_at=received_at,
        prefix="per-batch-",
    )
    per_batch = baseline.copy_per_batch(database.admin_db_url, rows)
    return [whole, per_batch]


# -- report ---------------------------------------------------------------------------------


def rss_points(result: LoadResult) -> tuple[int, int, int]:
    """Total RSS of the workers at the start, middle and end of the measured window."""
    timeline = result.resources.rss_timeline
    start, end = timeline[0][0], timeline[-1][0]
    middle = min(timeline, key=lambda point: abs(point[0] - (start + end) / 2))
    return timeline[0][1], middle[1], timeline[-1][1]


def cores(seconds: float, window: float) -> str:
    return f"{seconds / window:.2f}"


def print_report(args, stream, bodies, runs, copies, best, generated_in, profile_txt, spy):
    events = sum(stream.counts.values())
    mix = ", ".join(f"{kind} {count / events:.1%}" for kind, count in stream.counts.most_common())
    print(f"\n## Ingestion benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(
        f"- machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB,"
        f" Python {platform.python_version()}"
    )
    print(
        f"- stream: {len(bodies):,} distinct batches of {args.batch_size} ({events:,} events, "
        f"{sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB a batch), generated in "
        f"{generated_in:.1f} s; {mix}; {args.customers:,} people (seed {args.seed})"
    )
    print(
        f"- each shape: {args.warmup:g} s warm-up + {args.duration:g} s measured, from the same "
        f"state ({len(stream.population.known_rows()):,} known customers, {args.history:,} past "
        "events); no Celery worker running\n"
    )
    print(
        "| server | conns | events/s | p50 | p99 | max | errors | worker RSS start → middle → "
        "end | CPU cores: gunicorn / postgres / pg WAL+bg / driver / other | follow-ups "
        "queued |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in runs:
        r = run.result
        res = r.resources
        ours = sum(res.cpu.values())
        errors = ", ".join(f"{count}x {status or 'conn'}" for status, count in r.errors.items())
        mark = " **(best)**" if run is best else ""
        memory = " → ".join(f"{point / MIB:.0f}" for point in rss_points(r)) + " MiB"
        print(
            f"| {run.label}{mark} | {run.concurrency} | {r.events_per_second:,.0f} | "
            f"{r.p50_ms:.0f} ms | {r.p99_ms:.0f} ms | {r.max_ms:.0f} ms | {errors or '0'} | "
            f"{memory} | "
            f"{cores(res.cpu.get('gunicorn', 0), r.window)} / "
            f"{cores(res.cpu.get('postgres', 0), r.window)} / "
            f"{cores(res.cpu.get('postgres-bg', 0), r.window)} / "
            f"{cores(res.cpu.get('driver', 0), r.window)} / "
            f"{cores(max(res.machine_busy - ours, 0), r.window)} | {run.queue:,} |"
        )
    print("\nWhat the server's Postgres backends were doing (pg_stat_activity, sampled 4x/s):\n")
    for run in runs:
        states = run.result.resources.backend_states
        total = sum(states.values()) or 1
        shares = ", ".join(f"{state} {count / total:.0%}" for state, count in states.most_common())
        print(f"- {run.label}: {shares}")
    notes = []
    for run in runs:
        r = run.result
        if r.error_count or r.rejected or r.warnings or run.logged_errors:
            logged = ", ".join(f"{name} {count}" for name, count in run.logged_errors.items())
            examples = "; ".join(sorted(set(r.error_examples)))
            notes.append(
                f"{run.label}: {r.error_count} failed requests in the window ({examples}); "
                f"server log, warm-up included: {logged or 'nothing'}; "
                f"{r.warnings:,} warnings and {r.rejected:,} rejected messages in responses"
            )
    if any(run.result.cycles for run in runs):
        notes.append("the batch pool was reused with rewritten messageIds (raise --batches)")
    if any(run.result.resources.workers_respawned for run in runs):
        notes.append("a gunicorn worker was replaced during a measured window")
    if notes:
        print()
    for note in notes:
        print(f"- {note}")
    print("\n| baseline (superuser, same rows) | events | seconds | events/s | Masivo best / it |")
    print("| --- | --- | --- | --- | --- |")
    for copy in copies:
        ratio = best.result.events_per_second / copy.events_per_second
        print(
            f"| {copy.label} | {copy.events:,} | {copy.seconds:.2f} | "
            f"{copy.events_per_second:,.0f} | {ratio:.3f} |"
        )
    r = best.result
    ratio = r.events_per_second / copies[0].events_per_second
    start, middle, end = rss_points(r)
    second_half = end - middle
    rows = [
        ("sustained events/s over HTTP", f"≥ {GOAL_EVENTS_PER_SECOND:,}",
         f"{r.events_per_second:,.0f}", r.events_per_second >= GOAL_EVENTS_PER_SECOND),
        ("share of the COPY rate", f"≥ {GOAL_COPY_RATIO:.2f}", f"{ratio:.3f}",
         ratio >= GOAL_COPY_RATIO),
        ("p99 per 100-event batch", f"< {GOAL_P99_MS} ms", f"{r.p99_ms:.0f} ms",
         r.p99_ms < GOAL_P99_MS),
        ("worker memory flat", "no growth in the 2nd half",
         f"{start / MIB:.0f} → {middle / MIB:.0f} → {end / MIB:.0f} MiB",
         abs(second_half) <= 0.01 * start),
        ("no errors", "0", f"{r.error_count}", r.error_count == 0),
    ]  # fmt: skip
    print(f"\nGoals, for the best shape ({best.label}, {best.concurrency} connections):\n")
    print("| goal | target | measured | met |")
    print("| --- | --- | --- | --- |")
    for goal, target, measured, met in rows:
        print(f"| {goal} | {target} | {measured} | {'yes' if met else '**no**'} |")
    if spy:
        samples, stages, own = spy
        print(f"\npy-spy, {best.label}, {samples:,} on-CPU samples of the workers:\n")
        print("| where the workers' CPU goes (inclusive) | share |")
        print("| --- | --- |")
        for label, share in stages:
            print(f"| {label.replace('  ', '&nbsp;&nbsp;')} | {share:.0%} |")
        print("\n| function (own time) | share |")
        print("| --- | --- |")
        for function, share in own:
            print(f"| `{function}` | {share:.1%} |")
    if profile_txt:
        print("\nIn-process profile (bench/ingest/profiling.py):")
        print(profile_txt)


def main(argv=None) -> int:
    args = parse_args(argv)
    shapes = [Shape.parse(item) for item in args.workers.split(",") if item.strip()]
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    stream = SegmentStream(seed=args.seed, customers=args.customers, now=now)
    batches = stream.batches(args.batches, args.batch_size)
    bodies = [serialize(body) for body in batches]
    sizes = [len(body["batch"]) for body in batches]
    generated_in = time.perf_counter() - started
    log(f"generated {len(bodies):,} batches in {generated_in:.1f} s")
    database = BenchDatabase(
        admin_url=args.admin_url, app_url=args.app_url, redis_url=args.redis_url
    )
    runs, copies, profile_txt, spy = [], [], "", None
    try:
        database.create()
        workspace = database.create_workspace("Bench")
        copy_workspace = database.create_workspace("Bench COPY")
        prepare(database, workspace.id, copy_workspace.id, stream, args)
        log(f"database {database.name} ready and seeded")
        for shape in shapes:
            runs.append(measure_shape(args, database, workspace, shape, bodies, sizes))
        best = max(runs, key=lambda run: run.result.events_per_second)
        if args.profile:
            shape = shapes[runs.index(best)]
            output = profile_shape(args, database, workspace, shape, bodies, sizes)
            if output:
                spy = pyspy.summarize(output)
            profile_txt = profile_in_process(args, database, workspace, now)
        copies = run_baseline(database, copy_workspace.id, batches)
    finally:
        with contextlib.suppress(Exception):
            database.forget_queue()
        if not args.keep:
            database.drop()
            log(f"dropped {database.name}")
    print_report(args, stream, bodies, runs, copies, best, generated_in, profile_txt, spy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
