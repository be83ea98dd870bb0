"""End to end: ingestion and the follow-up together, 20 real-time audiences, lag from the 200 to
the membership change, and the drain rate of a stored backlog.

1. Sets up as bench/ingest does (own role and database, app role under RLS, a workspace and keys
   from the CLI, known customers and past events), starts gunicorn, a Celery worker and beat
   (the arguments `masivo up` gives them) and creates 20 real-time audiences of five rule shapes
   through the REST API (bench/pipeline/audiences.py); waits for their first calculations.
2. Offers fixed rates (`--rates`), open loop, in 100-event batches of bench/ingest's generator,
   while a poller measures each batch's follow-up lag (bench/pipeline/lag.py) and the CPU of each
   process group is sampled; after each step, waits for the follow-up to catch up.
3. Stops everything, COPYs a `--backlog` of unresolved events as the tracking API stores them
   (the raw-SQL baseline of storing them), clones the database, and times the drain with each
   `--drain-workers` Celery concurrency from the same backlog; py-spy samples the first.
4. Runs the follow-up in-process on a small fresh backlog with every statement timed, and the
   compiled rules of the 20 audiences as set-based SQL (bench/pipeline/statements.py).
5. Prints markdown; drops its databases and its Redis keys (`--keep` keeps the databases).

    .venv/bin/python bench/pipeline/run.py                                  # ~15 minutes
    .venv/bin/python bench/pipeline/run.py --rates 500,1000 --step-seconds 10 --backlog 50000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.ingest import pyspy
from bench.ingest.generate import SegmentStream, serialize
from bench.ingest.load import drive_open_loop
from bench.ingest.server import BenchDatabase, CeleryProcess, Gunicorn
from bench.pipeline import drain, report
from bench.pipeline.audiences import SHAPES, create_audiences, wait_for_recalculations
from bench.pipeline.lag import LagPoller, backlog_growth, batch_lags, quantile
from bench.pipeline.profile import PipelineSampler, summarize_worker

GOAL_RATE = 5_000
GOAL_LAG_P95 = 2.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,2000,3000,5000", help="offered events/s")
    parser.add_argument("--step-seconds", type=float, default=30, help="measured per rate")
    parser.add_argument("--warmup", type=float, default=5, help="offered, unmeasured, per rate")
    parser.add_argument("--settle", type=float, default=20, help="max wait to catch up after")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--worker-concurrency", type=int, default=1, help="during the steps")
    parser.add_argument("--drain-workers", default="1,2", help="Celery concurrencies to drain")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="events to drain")
    parser.add_argument(
        "--backlog-distinct", type=int, default=100_000, help="of it generated (rest repeated)"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=120, help="per shape; the rate is then partial"
    )
    parser.add_argument("--statements-events", type=int, default=20_000)
    parser.add_argument("--pyspy-seconds", type=float, default=40)
    parser.add_argument("--connections", type=int, default=16, help="driver connections")
    parser.add_argument("--poll-interval", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--history", type=int, default=200_000, help="past events seeded")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--no-beat", action="store_true", help="no beat (no sweep)")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--app-url",
        default="postgresql://masivo_bench_pipeline:bench@127.0.0.1:5432/masivo_bench_pipeline",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Step:
    rate: int
    window: float
    offered: int = 0
    answered: int = 0
    events: int = 0
    errors: dict = field(default_factory=dict)
    http_p50: float = 0.0
    http_p99: float = 0.0
    lags: list[float] = field(default_factory=list)
    unseen: int = 0
    lag_p95_halves: tuple[float, float] = (math.nan, math.nan)
    growth: float = math.nan
    backlog_end: int = 0
    caught_up_after: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0
    worker_errors: dict = field(default_factory=dict)

    @property
    def achieved(self) -> float:
        return self.events / self.window

    @property
    def lag_p95(self) -> float:
        return quantile(self.lags, 0.95)

    @property
    def bounded(self) -> bool:
        return self.caught_up_after is not None and not self.growth > 0.05 * self.rate

    @property
    def sustained(self) -> bool:
        return (
            self.bounded
            and not self.errors
            and self.achieved >= 0.97 * self.rate
            and self.lag_p95 <= GOAL_LAG_P95
        )


class Redis:
    """The bench's Redis database: refuse one that someone else uses; empty it at the end."""

    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url)

    def check_unused(self) -> None:
        if self.client.dbsize():
            raise SystemExit(f"Redis {self.client} holds keys: use another --redis-url database")

    def clean(self) -> None:
        with contextlib.suppress(Exception):
            self.client.flushdb()


def postgres_groups(database: BenchDatabase, admin, poller: LagPoller | None):
    def groups() -> dict[int, str]:
        pids = database.backend_pids(admin)
        if poller is not None and poller.backend_pid in pids:
            pids[poller.backend_pid] = "poller"
        return pids

    return groups


def measure_step(args, database, admin, processes, poller, workspace, rate, bodies, sizes) -> Step:
    worker = processes["celery"][0]
    seconds = args.warmup + args.step_seconds
    batches = math.ceil(rate * seconds / args.batch_size)
    mine, bodies[:] = bodies[:batches], bodies[batches:]
    my_sizes, sizes[:] = sizes[:batches], sizes[batches:]
    sampler = PipelineSampler(
        roots={group: [p.process.pid for p in items] for group, items in processes.items()},
        postgres_pids=postgres_groups(database, admin, poller),
    )
    result: dict = {}
    driver = threading.Thread(
        target=lambda: result.setdefault("samples", drive_open_loop(
            host="127.0.0.1", port=args.port, write_key=workspace.write_key, bodies=mine,
            events_per_body=my_sizes, rate=rate, seconds=seconds, connections=args.connections,
            give_up_after=5,
        )),
        daemon=True,
    )  # fmt: skip
    log(f"{rate:,} events/s: {args.warmup:g} + {args.step_seconds:g} s, {len(mine):,} batches")
    begin = time.perf_counter()
    sampler.start()
    driver.start()
    window_start = begin + args.warmup
    time.sleep(max(window_start - time.perf_counter(), 0))
    sampler.start_window()
    window_end = window_start + args.step_seconds
    time.sleep(max(window_end - time.perf_counter(), 0))
    sampler.end_window()
    sampler.stopping.set()
    driver.join()
    samples = result["samples"]
    stored_at_end = poller.latest().stored
    step = Step(rate=rate, window=args.step_seconds)
    step.caught_up_after = poller.wait_caught_up(
        stored_at_least=max(stored_at_end, poller.latest().stored), timeout=args.settle
    )
    in_window = [s for s in samples if window_start <= s.due < window_end]
    finished = [s for s in samples if window_start <= s.finished < window_end]
    interval = sum(my_sizes) / len(my_sizes) / rate
    step.offered = sum(window_start <= begin + 0.05 + n * interval < window_end
                       for n in range(len(mine)))  # fmt: skip
    step.answered = sum(s.status == 200 for s in in_window)
    step.events = sum(s.events for s in finished if s.status == 200)
    errors: dict = {}
    for s in in_window:
        if s.status != 200:
            errors[s.status] = errors.get(s.status, 0) + 1
    if step.offered > len(in_window):
        errors["not sent: over 5 s late"] = step.offered - len(in_window)
    step.errors = errors
    latencies = [(s.finished - s.due) * 1000 for s in in_window]
    step.http_p50, step.http_p99 = quantile(latencies, 0.50), quantile(latencies, 0.99)
    answered = sorted(s.finished for s in in_window if s.status == 200)
    lags = batch_lags(poller.polls, answered)
    last_seen = poller.polls[-1].finished
    # A batch never seen followed up has waited at least until the last poll: count that, so
    # the quantiles are lower bounds when `unseen` is not zero.
    step.lags = [
        last_seen - t if lag is None else lag for lag, t in zip(lags, answered, strict=True)
    ]
    step.unseen = sum(lag is None for lag in lags)
    middle = len(step.lags) // 2
    step.lag_p95_halves = (quantile(step.lags[:middle], 0.95), quantile(step.lags[middle:], 0.95))
    step.growth = backlog_growth(poller.polls, window_start, window_end)
    at_end = [p for p in poller.polls if p.finished <= window_end]
    step.backlog_end = at_end[-1].backlog if at_end else 0
    step.cpu = dict(sampler.resources.cpu)
    step.machine_busy = sampler.resources.machine_busy
    step.worker_errors = dict(worker.logged_errors())
    log(
        f"  {step.achieved:,.0f} ev/s stored, lag p50 {quantile(step.lags, 0.5):.2f} s "
        f"p95 {step.lag_p95:.2f} s, backlog growth {step.growth:,.0f} ev/s, "
        f"caught up after {step.caught_up_after}"
    )
    return step


def start_workers(database, *, concurrency: int, beat: bool, tag: str) -> list[CeleryProcess]:
    workers = [
        CeleryProcess(
            database, concurrency=concurrency,
            log_path=Path(tempfile.gettempdir()) / f"masivo-bench-pipeline-worker-{tag}.log",
        )
    ]  # fmt: skip
    if beat:
        workers.append(
            CeleryProcess(
                database, kind="beat",
                log_path=Path(tempfile.gettempdir()) / f"masivo-bench-pipeline-beat-{tag}.log",
            )
        )  # fmt: skip
    for process in workers:
        process.start()
    return workers


def stop_all(processes) -> None:
    for process in processes:
        with contextlib.suppress(Exception):
            process.stop()


def run_steps(args, database, stream, workspace) -> tuple[list[Step], dict, float]:
    rates = [int(rate) for rate in args.rates.split(",") if rate.strip()]
    needed = sum(math.ceil(r * (args.warmup + args.step_seconds) / args.batch_size) for r in rates)
    started = time.perf_counter()
    batches = stream.batches(needed, args.batch_size)
    bodies = [serialize(body) for body in batches]
    sizes = [len(body["batch"]) for body in batches]
    log(f"generated {needed:,} batches in {time.perf_counter() - started:.1f} s")
    web = Gunicorn(database, workers=args.web_workers, threads=1, port=args.port)
    celery = start_workers(
        database, concurrency=args.worker_concurrency, beat=not args.no_beat, tag="steps"
    )
    steps: list[Step] = []
    try:
        web.start()
        base_url = f"http://127.0.0.1:{args.port}"
        with database.admin() as admin:
            # Autovacuum is off on the shared server: ANALYZE the memberships the first
            # calculations wrote, as autovacuum would, before the audiences that reference
            # them are planned (BENCHMARKS.md: a stale estimate makes one of them quadratic).
            audiences = create_audiences(
                base_url=base_url, secret_key=workspace.secret_key, shapes=SHAPES[:-1]
            )
            recalculated_in = wait_for_recalculations(admin)
            admin.execute("ANALYZE audiences_membership, audiences_membershipchange")
            audiences = create_audiences(
                base_url=base_url, secret_key=workspace.secret_key, shapes=SHAPES[-1:],
                created=audiences,
            )  # fmt: skip
            recalculated_in += wait_for_recalculations(admin)
            admin.execute("ANALYZE audiences_membership, audiences_membershipchange")
            log(f"{len(audiences)} real-time audiences calculated in {recalculated_in:.1f} s")
            poller = LagPoller(database.admin_db_url, workspace.id, interval=args.poll_interval)
            poller.start()
            poller.connected.wait(10)
            processes = {"gunicorn": [web], "celery": celery}
            try:
                for rate in rates:
                    steps.append(
                        measure_step(
                            args, database, admin, processes, poller, workspace, rate, bodies,
                            sizes,
                        )
                    )  # fmt: skip
            finally:
                poller.stop()
            poll_cost = statistics_of_polls(poller)
    finally:
        stop_all([web, *celery])
    return steps, audiences, poll_cost


def statistics_of_polls(poller: LagPoller) -> float:
    durations = sorted(p.finished - p.started for p in poller.polls)
    return durations[len(durations) // 2] * 1000 if durations else 0.0


def run_drains(args, database, stream, workspace) -> tuple[drain.Backlog, list, tuple | None]:
    log(f"storing a backlog of {args.backlog:,} unresolved events (COPY)")
    backlog = drain.store_backlog(
        database, stream, workspace_id=workspace.id, events=args.backlog,
        distinct=args.backlog_distinct, batch_size=args.batch_size,
    )  # fmt: skip
    log(
        f"  {backlog.copied:,} events COPYed in {backlog.copy_seconds:.1f} s (generated in "
        f"{backlog.generate_seconds:.1f} s), {backlog.events - backlog.copied:,} repeated in "
        f"{backlog.repeat_seconds:.1f} s"
    )
    concurrencies = [int(c) for c in args.drain_workers.split(",") if c.strip()]
    drain.clone(database)
    drains, spy = [], None
    for number, concurrency in enumerate(concurrencies):
        if number:
            drain.restore_clone(database, keep_clone=number < len(concurrencies) - 1)
        database.clear_queue()
        label = f"{concurrency} worker process" + ("es" if concurrency > 1 else "")
        log(f"drain with {label}")
        celery = start_workers(
            database, concurrency=concurrency, beat=not args.no_beat, tag=f"drain{concurrency}"
        )
        recorder, spy_path = None, None
        try:
            with database.admin() as admin:
                sampler = PipelineSampler(
                    roots={"celery": [p.process.pid for p in celery]},
                    postgres_pids=postgres_groups(database, admin, None),
                )
                sampler.start()
                drain.wake_follow_up(database, workspace.id)  # Django's start-up: untimed
                started = time.perf_counter()
                sampler.start_window()
                if number == 0 and pyspy.available():
                    spy_path = Path(tempfile.mkdtemp(prefix="masivo-bench-pipeline-")) / "w.txt"
                    recorder = pyspy.record(celery[0].process.pid, args.pyspy_seconds, spy_path)
                seconds, timeline = drain.wait_drained(
                    database, workspace.id, backlog, started=started, timeout=args.drain_timeout
                )
                sampler.end_window()
                sampler.stopping.set()
            result = drain.Drain(label, backlog.events, seconds, timeline)
            result.stalls = drain.stalls_in(timeline)
            result.cpu = dict(sampler.resources.cpu)
            result.machine_busy = sampler.resources.machine_busy
            result.errors = dict(celery[0].logged_errors())
            drains.append(result)
            log(
                f"  {result.drained:,} events in {result.elapsed:.1f} s "
                f"({'all' if seconds else 'timed out'}): {result.events_per_second:,.0f} ev/s"
            )
            if recorder is not None:
                recorder.wait(timeout=args.pyspy_seconds + 30)
                if spy_path.exists():
                    spy = summarize_worker(spy_path)
        finally:
            stop_all(celery)
    return backlog, drains, spy


def run_statements(args, database, stream, workspace) -> dict | None:
    """The next `--statements-events` stored events (what a drain that timed out left, or a
    fresh backlog) followed up in-process with every statement timed."""
    if args.statements_events <= 0:
        return None
    with database.admin() as admin:
        waiting = admin.execute(
            "SELECT count(*) FROM (SELECT 1 FROM profiles_event WHERE workspace_id = %s AND "
            "processed_at IS NULL LIMIT %s) w",
            [workspace.id, args.statements_events],
        ).fetchone()[0]
    if waiting < args.statements_events:
        drain.store_backlog(
            database, stream, workspace_id=workspace.id, events=args.statements_events,
            distinct=args.statements_events, batch_size=args.batch_size, prefix="statements-",
        )  # fmt: skip
    claims = str(max(math.ceil(args.statements_events / 5000), 1))
    log(f"in-process follow-up of {args.statements_events:,} events, statements timed")
    result = subprocess.run(
        [sys.executable, "-m", "bench.pipeline.statements", "--workspace-id", str(workspace.id),
         "--claims", claims],
        cwd=Path(__file__).resolve().parents[2], env=database.env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    if result.returncode:
        log(f"statements failed:\n{result.stderr[-3000:]}")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    args = parse_args(argv)
    redis = Redis(args.redis_url)
    redis.check_unused()
    now = datetime.now(UTC).replace(microsecond=0)
    stream = SegmentStream(seed=args.seed, customers=args.customers, now=now)
    database = BenchDatabase(
        admin_url=args.admin_url, app_url=args.app_url, redis_url=args.redis_url
    )
    began = time.perf_counter()
    steps, audiences, poll_ms, backlog, drains, spy, statements = [], {}, 0.0, None, [], None, None
    try:
        database.create()
        workspace = database.create_workspace("Bench")
        database.seed_customers(workspace.id, stream.population.known_rows())
        database.seed_history(workspace.id, args.history)
        log(f"database {database.name} ready and seeded")
        steps, audiences, poll_ms = run_steps(args, database, stream, workspace)
        if args.backlog > 0:
            backlog, drains, spy = run_drains(args, database, stream, workspace)
        statements = run_statements(args, database, stream, workspace)
    finally:
        redis.clean()
        if not args.keep:
            with contextlib.suppress(Exception):
                drain.drop_clone(database)
            database.drop()
            log(f"dropped {database.name}")
    context = {
        "args": args,
        "commit": _commit(),
        "machine": f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}",
        "customers": len(stream.population.known_rows()),
        "minutes": (time.perf_counter() - began) / 60,
        "poll_ms": poll_ms,
        "when": datetime.now(UTC),
    }
    report.print_report(context, steps, audiences, backlog, drains, spy, statements)
    return 0


def _commit() -> str:
    result = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=False,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    return result.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
