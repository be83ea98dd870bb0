"""A cheap HTTP load driver: pre-serialized bodies, one keep-alive connection per thread.

The bodies are bytes before the clock starts; a thread's per-request work is one `request()` and
one `getresponse().read()` of http.client, so the driver costs a few percent of a core (reported
as `driver` CPU). Throughput counts the events of requests that *finished* inside the measured
window; latency is over the requests that *started* in it.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import math
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import psutil

SUCCESS_BODY = b'{"success":true}'


@dataclass
class Sample:
    started: float
    finished: float
    status: int
    events: int
    detail: bytes = b""


@dataclass
class Resources:
    """RSS of the server processes and CPU seconds by group, sampled through the run."""

    rss_start: dict[int, int] = field(default_factory=dict)
    rss_end: dict[int, int] = field(default_factory=dict)
    rss_peak: int = 0
    rss_timeline: list[tuple[float, int]] = field(default_factory=list)  # (time, total RSS)
    cpu: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0  # CPU seconds used by every process on the machine
    workers_respawned: bool = False
    backend_states: Counter = field(default_factory=Counter)  # samples of pg_stat_activity


@dataclass
class LoadResult:
    window: float
    requests: int
    events: int
    events_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: Counter
    accepted: int
    duplicates: int
    rejected: int
    warnings: int
    resources: Resources
    cycles: int
    error_examples: list[str]

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def basic_auth(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def with_cycle(body: bytes, cycle: int) -> bytes:
    """The same batch sent again on a later pass through the pool, with fresh messageIds."""
    if cycle == 0:
        return body
    return body.replace(b'"messageId":"', b'"messageId":"c%d-' % cycle)


class ResourceSampler(threading.Thread):
    """Samples CPU of the server, Postgres backends and this driver; RSS of the server's workers.

    CPU is accumulated per pid between the first and last time each pid is seen in the window, so
    a Postgres backend replaced mid-run (CONN_MAX_AGE) loses at most one interval.
    """

    def __init__(
        self, *, server_pid: int, postgres_pids, backend_states=None, interval: float = 0.25
    ):
        super().__init__(daemon=True)
        self.server = psutil.Process(server_pid)
        self.postgres_pids = postgres_pids  # callable → {pid: group}
        self.backend_states = backend_states  # callable → list of states, one per backend
        self.interval = interval
        self.stopping = threading.Event()
        self.measuring = threading.Event()
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self.resources = Resources()
        self.worker_pids: set[int] = set()
        self.machine_start = 0.0

    @staticmethod
    def _busy(times) -> float:
        return times.user + times.system

    @staticmethod
    def _machine_busy() -> float:
        times = psutil.cpu_times()
        return sum(times) - times.idle - getattr(times, "iowait", 0.0)

    def _workers(self) -> list[psutil.Process]:
        return self.server.children(recursive=True)

    def _groups(self) -> dict[str, list[psutil.Process]]:
        groups = {
            "gunicorn": [self.server, *self._workers()],
            "postgres": [],
            "postgres-bg": [],
            "driver": [psutil.Process()],
        }
        for pid, group in self.postgres_pids().items():
            try:
                groups[group].append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        return groups

    def sample(self) -> None:
        for group, processes in self._groups().items():
            for process in processes:
                try:
                    seconds = self._busy(process.cpu_times())
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                self.first.setdefault((group, process.pid), seconds)
                self.last[(group, process.pid)] = seconds
        if self.backend_states is not None:
            self.resources.backend_states.update(self.backend_states())
        rss = self.rss()
        self.resources.rss_peak = max(self.resources.rss_peak, sum(rss.values()))
        self.resources.rss_timeline.append((time.perf_counter(), sum(rss.values())))
        if set(rss) != self.worker_pids:
            self.resources.workers_respawned = True

    def rss(self) -> dict[int, int]:
        rss = {}
        for process in self._workers():
            try:
                rss[process.pid] = process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return rss

    def start_window(self) -> None:
        self.resources.rss_start = self.rss()
        self.worker_pids = set(self.resources.rss_start)
        self.machine_start = self._machine_busy()
        self.sample()
        self.measuring.set()

    def end_window(self) -> None:
        self.measuring.clear()
        self.sample()
        self.resources.rss_end = self.rss()
        self.resources.machine_busy = self._machine_busy() - self.machine_start
        for (group, pid), seconds in self.last.items():
            used = seconds - self.first[(group, pid)]
            self.resources.cpu[group] = self.resources.cpu.get(group, 0.0) + used

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            if self.measuring.is_set():
                self.sample()


def drive(
    *,
    host: str,
    port: int,
    write_key: str,
    bodies: list[bytes],
    events_per_body: list[int],
    concurrency: int,
    warmup: float,
    duration: float,
    sampler: ResourceSampler,
    path: str = "/v1/batch",
    on_window_start=None,
) -> LoadResult:
    headers = {
        "Content-Type": "application/json",
        "Authorization": basic_auth(write_key),
        "User-Agent": "analytics-python/2.3.3",
    }
    counter = itertools.count()
    samples: list[Sample] = []
    begin = time.perf_counter()
    window_start, stop_at = begin + warmup, begin + warmup + duration

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=120)
        while True:
            number = next(counter)
            if time.perf_counter() >= stop_at:
                break
            body = with_cycle(bodies[number % len(bodies)], number // len(bodies))
            started = time.perf_counter()
            try:
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                data, status = response.read(), response.status
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                data, status = repr(error).encode(), 0
            sample = Sample(
                started, time.perf_counter(), status, events_per_body[number % len(bodies)]
            )
            if status != 200 or data != SUCCESS_BODY:
                sample.detail = data[:2000]
            samples.append(sample)
        connection.close()

    sampler.start()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(max(window_start - time.perf_counter(), 0))
    if on_window_start is not None:
        on_window_start()
    sampler.start_window()
    time.sleep(max(stop_at - time.perf_counter(), 0))
    sampler.end_window()
    for thread in threads:
        thread.join()
    sampler.stopping.set()
    return summarize(samples, window_start, stop_at, sampler.resources, len(bodies))


def summarize(
    samples: list[Sample], window_start: float, stop_at: float, resources: Resources, pool: int
) -> LoadResult:
    finished = [s for s in samples if window_start <= s.finished < stop_at]
    started = [s for s in samples if window_start <= s.started < stop_at]
    latencies = sorted((s.finished - s.started) * 1000 for s in started)
    ok = [s for s in finished if s.status == 200]
    errors = Counter(s.status for s in finished if s.status != 200)
    accepted = duplicates = rejected = warnings = 0
    examples = []
    for sample in finished:
        if not sample.detail:
            accepted += sample.events
            continue
        try:
            payload = json.loads(sample.detail)
        except ValueError:
            payload = {}
        if sample.status == 200 and isinstance(payload, dict):
            accepted += payload.get("accepted", 0)
            duplicates += payload.get("duplicates", 0)
            rejected += len(payload.get("rejected", []))
            warnings += len(payload.get("warnings", []))
        if (sample.status != 200 or payload.get("rejected")) and len(examples) < 3:
            examples.append(f"{sample.status}: {sample.detail[:300].decode(errors='replace')}")
    window = stop_at - window_start
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return LoadResult(
        window=window,
        requests=len(finished),
        events=sum(s.events for s in ok),
        events_per_second=sum(s.events for s in ok) / window,
        p50_ms=statistics.median(latencies) if latencies else 0.0,
        p99_ms=quantiles[98],
        max_ms=latencies[-1] if latencies else 0.0,
        errors=errors,
        accepted=accepted,
        duplicates=duplicates,
        rejected=rejected,
        warnings=warnings,
        resources=resources,
        cycles=(len(samples) - 1) // pool if samples else 0,
        error_examples=examples,
    )


@dataclass
class PacedSample:
    """One request of an open-loop run: when it was due, sent, and answered."""

    due: float
    started: float
    finished: float
    status: int
    events: int
    detail: bytes = b""


def drive_open_loop(
    *,
    host: str,
    port: int,
    write_key: str,
    bodies: list[bytes],
    events_per_body: list[int],
    rate: float,
    seconds: float,
    connections: int = 16,
    path: str = "/v1/batch",
    give_up_after: float | None = None,
) -> list[PacedSample]:
    """Offer `rate` events a second for `seconds`, whatever the server does (open loop): body i
    is due at start + i / (rate / events per body); a due request waits for a free connection,
    and its latency counts from when it was due, so a server that falls behind shows it instead
    of slowing the offered load down. Bodies are used in order, once each (no messageId
    rewriting): give at least rate x seconds worth. With `give_up_after`, a request still
    unsent that many seconds after the end is never sent (the server is too slow for the
    rate; the caller counts what is missing)."""
    headers = {
        "Content-Type": "application/json",
        "Authorization": basic_auth(write_key),
        "User-Agent": "analytics-python/2.3.3",
    }
    mean_events = sum(events_per_body) / len(events_per_body)
    interval = mean_events / rate
    count = min(len(bodies), int(seconds / interval))
    samples: list[PacedSample] = []
    counter = itertools.count()
    begin = time.perf_counter() + 0.05
    deadline = math.inf if give_up_after is None else begin + seconds + give_up_after

    def sender() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=120)
        while (number := next(counter)) < count and time.perf_counter() < deadline:
            due = begin + number * interval
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            started = time.perf_counter()
            try:
                connection.request("POST", path, bodies[number], headers)
                response = connection.getresponse()
                data, status = response.read(), response.status
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                data, status = repr(error).encode(), 0
            sample = PacedSample(due, started, time.perf_counter(), status, events_per_body[number])
            if status != 200 or data != SUCCESS_BODY:
                sample.detail = data[:2000]
            samples.append(sample)
        connection.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(samples, key=lambda sample: sample.due)
