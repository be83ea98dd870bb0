"""How long after its 200 a batch is followed up, from the event log alone.

A poller reads, in one statement (one snapshot), S = max(id) of the workspace's events and
U = min(id) of those still unprocessed (`processed_at IS NULL`, through the partial index
event_ws_unprocessed; U = infinity when none). Ids follow the stored order, so a batch answered
200 at t has every id ≤ S of the first poll that started after t, and is fully followed up (its
memberships changed: the follow-up sets `processed_at` in the transaction that writes them) by
the first poll that sees U > that S. Lag = the end of that poll - t: an upper bound, late by at
most one poll interval plus the poll's own time, and by the rows of batches stored in between
that the follow-up had to finish too.
"""

from __future__ import annotations

import bisect
import math
import statistics
import threading
import time
from dataclasses import dataclass, field

import psycopg

POLL_SQL = """
SELECT (SELECT max(id) FROM profiles_event WHERE workspace_id = %(ws)s),
       (SELECT min(id) FROM profiles_event WHERE workspace_id = %(ws)s AND processed_at IS NULL)
"""


@dataclass
class Poll:
    started: float
    finished: float
    stored: int  # S
    unprocessed: float  # U, math.inf when nothing waits

    @property
    def backlog(self) -> int:
        """Events stored and not yet followed up, counted in ids (dense for one workspace)."""
        return 0 if math.isinf(self.unprocessed) else int(self.stored - self.unprocessed + 1)


@dataclass(eq=False)
class LagPoller(threading.Thread):
    url: str
    workspace_id: int
    interval: float = 0.05
    polls: list[Poll] = field(default_factory=list)
    backend_pid: int = 0

    def __post_init__(self):
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        self.connected = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            self.backend_pid = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
            self.connected.set()
            params = {"ws": self.workspace_id}
            while not self.stopping.is_set():
                started = time.perf_counter()
                stored, unprocessed = connection.execute(POLL_SQL, params).fetchone()
                finished = time.perf_counter()
                self.polls.append(
                    Poll(started, finished, stored or 0,
                         math.inf if unprocessed is None else unprocessed)
                )  # fmt: skip
                self.stopping.wait(max(self.interval - (finished - started), 0.005))

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)

    def latest(self) -> Poll | None:
        return self.polls[-1] if self.polls else None

    def wait_caught_up(self, *, stored_at_least: int, timeout: float) -> float | None:
        """Seconds until a poll shows everything up to `stored_at_least` followed up."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            poll = self.latest()
            if poll and poll.started > started and poll.unprocessed > stored_at_least:
                return poll.finished - started
            time.sleep(self.interval)
        return None


def batch_lags(polls: list[Poll], answered_at: list[float]) -> list[float | None]:
    """For each 200's time (in ascending order), the lag until its batch was followed up
    (None: not seen followed up yet). S never decreases, so the poll that first shows U > S
    for a later batch is never before the one for an earlier batch: one forward pointer."""
    starts = [poll.started for poll in polls]
    lags: list[float | None] = []
    done_pointer = 0
    for answered in sorted(answered_at):
        first = bisect.bisect_left(starts, answered)
        if first >= len(polls):
            lags.append(None)
            continue
        stored = polls[first].stored
        done_pointer = max(done_pointer, first)
        while done_pointer < len(polls) and not polls[done_pointer].unprocessed > stored:
            done_pointer += 1
        if done_pointer == len(polls):
            lags.append(None)
            continue
        lags.append(polls[done_pointer].finished - answered)
    return lags


def quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def backlog_growth(polls: list[Poll], start: float, end: float) -> float:
    """Least-squares slope of the backlog over [start, end], in events per second."""
    points = [(p.finished, p.backlog) for p in polls if start <= p.finished <= end]
    if len(points) < 3:
        return math.nan
    mean_t = sum(t for t, _ in points) / len(points)
    mean_b = sum(b for _, b in points) / len(points)
    num = sum((t - mean_t) * (b - mean_b) for t, b in points)
    den = sum((t - mean_t) ** 2 for t, _ in points)
    return num / den if den else math.nan
