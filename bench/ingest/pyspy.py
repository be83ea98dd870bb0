"""Sampling the gunicorn workers under load with py-spy, and reading its collapsed stacks.

py-spy samples only threads that are on the CPU (not those blocked on a socket), so the shares
below are of the workers' CPU time, not of the request latency.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# (label, frames): a sample counts for a row when its stack holds any of the frames, each given
# as "qualified.name@file suffix", or "parent>child" for a child called directly by a parent.
STAGES = (
    ("request in a gunicorn worker (everything below)", ("handle_request@gunicorn/workers/",)),
    ("  Django + DRF around the view, gunicorn HTTP", ()),
    ("  write-key authentication (lookup + last_used)", ("api_key_authenticate@services.py",)),
    ("  JSON body parse", ("SegmentJSONParser.parse@parsers.py",)),
    ("  Segment validation (parse_segment_batch)", ("parse_segment_batch@tracking.py",)),
    ("    clean_json (recursive copy of each object)", ("clean_json@normalize.py",)),
    (
        "    json.dumps of every message for the 32 KB check",
        ("parse_segment_message@tracking.py>dumps@json/__init__.py",),
    ),
    ("    timestamps (parse_datetime x2)", ("occurred_at@tracking.py",)),
    ("  tracking_store (the transaction)", ("tracking_store@ingestion.py",)),
    ("    erased-identifier check", ("Resolution.drop_erased@resolution.py",)),
    ("    events_append (dedupe + insert)", ("events_append@eventlog.py",)),
    ("    the other statements", ()),
    ("    follow-up wake-up after commit", ("queue_follow_up@ingestion.py",)),
    (
        "  psycopg: SQL text built client-side (quoting, array literals)",
        ("ClientCursorMixin._execute_send@client_cursor.py", "ListDumper._dump_list@array.py"),
    ),
)
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^:)]*)(?::\d+)?\)$")


def available() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, output: Path, rate: int = 97) -> subprocess.Popen:
    """Start py-spy on a gunicorn master and its workers; returns the running recorder."""
    command = [
        available() or "py-spy", "record", "--pid", str(pid), "--subprocesses",
        "--nonblocking", "--rate", str(rate), "--duration", str(int(seconds)),
        "--format", "raw", "--output", str(output),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame)
        if match and not frame.startswith("process "):
            frames.append((match["name"], match["file"]))
    return frames


def _matches(frame: tuple[str, str], spec: str) -> bool:
    name, _, file = spec.partition("@")
    qualname, path = frame
    return (qualname == name or qualname.endswith("." + name)) and file in path


def _holds(frames: list[tuple[str, str]], spec: str) -> bool:
    if ">" in spec:
        parent, child = spec.split(">")
        return any(
            _matches(frames[i], parent) and _matches(frames[i + 1], child)
            for i in range(len(frames) - 1)
        )
    return any(_matches(frame, spec) for frame in frames)


def summarize(path: Path, top: int = 15) -> tuple[int, list[tuple[str, float]], list]:
    """(samples, [(stage, share)], [(function, own share)]) from a raw py-spy file."""
    stacks: list[tuple[list, int]] = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((_frames(stack), int(count)))
    workers = [(frames, count) for frames, count in stacks if _holds(frames, STAGES[0][1][0])]
    total = sum(count for _, count in workers) or 1
    shares = {}
    for label, specs in STAGES:
        hits = sum(count for frames, count in workers if any(_holds(frames, s) for s in specs))
        shares[label] = hits / total
    _fill_residuals(shares)
    own: Counter = Counter()
    for frames, count in workers:
        if frames:
            name, file = frames[-1]
            own[f"{name} ({file})"] += count
    return (
        total,
        [(label, shares[label]) for label, _ in STAGES],
        [(function, count / total) for function, count in own.most_common(top)],
    )


def _fill_residuals(shares: dict[str, float]) -> None:
    """The two rows without frames are what their parent leaves after its named children."""
    view = ("write-key", "JSON body", "Segment validation", "tracking_store")
    shares["  Django + DRF around the view, gunicorn HTTP"] = max(
        shares["request in a gunicorn worker (everything below)"]
        - sum(v for k, v in shares.items() if k.startswith("  ") and k.strip().startswith(view)),
        0.0,
    )
    parts = ("erased-identifier", "events_append", "follow-up wake-up")
    shares["    the other statements"] = max(
        shares["  tracking_store (the transaction)"]
        - sum(v for k, v in shares.items() if k.startswith("    ") and k.strip().startswith(parts)),
        0.0,
    )
