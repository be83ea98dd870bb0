"""CPU by process group (gunicorn, celery, postgres, the driver and poller, everyone else), and
py-spy's samples of the Celery worker folded into the follow-up's stages."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import psutil

from bench.ingest import pyspy
from bench.ingest.load import ResourceSampler

GROUPS = ("gunicorn", "celery", "postgres", "postgres-bg", "poller", "driver")


class PipelineSampler(ResourceSampler):
    """ResourceSampler over several process trees: `roots` is group → root pids (each with its
    children). RSS is of the Celery pool and the gunicorn workers."""

    def __init__(self, *, roots: dict[str, list[int]], postgres_pids, backend_states=None,
                 interval: float = 0.25):  # fmt: skip
        first = next(pid for pids in roots.values() for pid in pids)
        super().__init__(
            server_pid=first, postgres_pids=postgres_pids, backend_states=backend_states,
            interval=interval,
        )  # fmt: skip
        self.roots = {group: [psutil.Process(pid) for pid in pids] for group, pids in roots.items()}

    def _workers(self) -> list[psutil.Process]:
        children = []
        for processes in self.roots.values():
            for process in processes:
                try:
                    children += process.children(recursive=True)
                except psutil.NoSuchProcess:
                    continue
        return children

    def _groups(self) -> dict[str, list[psutil.Process]]:
        groups: dict[str, list[psutil.Process]] = {group: [] for group in GROUPS}
        for group, processes in self.roots.items():
            for process in processes:
                groups[group].append(process)
                try:
                    groups[group] += process.children(recursive=True)
                except psutil.NoSuchProcess:
                    continue
        groups["driver"].append(psutil.Process())
        for pid, group in self.postgres_pids().items():
            try:
                groups[group].append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        return groups


STAGES = (
    ("follow-up transaction (`process_events_now`)", ("process_events_now@pipeline.py",)),
    ("  events claim, resolution, metrics (`events_process_batch`)",
     ("events_process_batch@followup.py",)),
    ("    identity resolution (`_resolve`)", ("_resolve@followup.py",)),
    ("    metrics refresh (`customers_refresh_metrics`)",
     ("customers_refresh_metrics@metrics.py",)),
    ("  profile-change claim (`profile_changes_claim`)", ("profile_changes_claim@followup.py",)),
    ("  real time (`realtime_memberships_update`)", ("realtime_memberships_update@realtime.py",)),
    ("    judging the batch (`_judge_batch`)", ("_judge_batch@realtime.py",)),
    ("    applying enters/exits (`membership_apply`)", ("membership_apply@membership.py",)),
    ("  commit", ("commit@django/db/backends/base/base.py",)),
    ("anywhere: psycopg executing (client side, incl. building SQL text)",
     ("Cursor.execute@psycopg/cursor.py", "ClientCursorMixin._execute_send@client_cursor.py")),
    ("anywhere: json (loads/dumps)", ("loads@json/__init__.py", "dumps@json/__init__.py")),
)  # fmt: skip


def summarize_worker(path: Path, top: int = 15):
    """(samples, [(stage, share of the worker's on-CPU samples)], [(function, own share)])."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((pyspy._frames(stack), int(count)))
    total = sum(count for _, count in stacks) or 1
    stages = []
    for label, specs in STAGES:
        hits = sum(c for frames, c in stacks if any(pyspy._holds(frames, s) for s in specs))
        stages.append((label, hits / total))
    own: Counter = Counter()
    for frames, count in stacks:
        if frames:
            name, file = frames[-1]
            own[f"{name} ({file})"] += count
    return total, stages, [(function, count / total) for function, count in own.most_common(top)]
