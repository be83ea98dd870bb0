"""`masivo up` with no DATABASE_URL/REDIS_URL: embedded servers, a demo workspace, a working API.

Starts real processes (embedded PostgreSQL and Redis, gunicorn, a Celery worker and beat) in a
temporary data dir, so it takes a while; it runs in CI to keep the newcomer's path working.
"""

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow
MASIVO = str(Path(sys.executable).parent / "masivo")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Up:
    def __init__(self, data_dir: Path, port: int):
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env |= {"MASIVO_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
        env.pop("XDG_RUNTIME_DIR", None)
        self.process = subprocess.Popen(
            [MASIVO, "up", "--port", str(port), "--web-workers", "1", "--worker-concurrency", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"never saw {pattern!r}; output:\n{''.join(self.output)[-5000:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def assert_the_worker_follows_up_on_tracked_events(base: str, write: str, secret: str):
    """A purchase sent to the tracking API shows in the customer's metrics once the Celery
    worker has run the follow-up: web → Redis → worker → Postgres, all real."""
    tracked = requests.post(
        f"{base}/v1/track",
        json={"userId": "u-1", "event": "purchase", "properties": {"value": 25}},
        auth=(write, ""),
        timeout=10,
    )
    assert tracked.json() == {"success": True}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = requests.get(
            f"{base}/api/v1/customers?external_id=u-1",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=10,
        ).json()["results"]
        if found and found[0]["metrics"]["purchase_count"] == 1:
            assert found[0]["metrics"]["purchase_total"] == "25.00"
            return
        time.sleep(0.5)
    raise AssertionError(f"the follow-up never ran: {found}")


def test_up_runs_on_embedded_servers_and_keeps_data_across_restarts(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    first = Up(data_dir, port)
    try:
        # The summary comes last, after the worker is ready, and Celery's banner is quiet.
        first.wait_for(r"celery@\S+ ready\.")
        first.wait_for(r"Masivo is running at")
        assert first.wait_for(r"Login:\s+(\S+)").group(1) == "admin@example.com"
        write = first.wait_for(r"Write key:\s+(msv_wk_\w+)").group(1)
        secret = first.wait_for(r"Secret API key:\s+(msv_sk_\w+)").group(1)
        assert not [line for line in first.output if "[config]" in line or "[queues]" in line]
        ready = requests.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "broker": "ok"}
        workspace = requests.get(
            f"{base}/api/v1/workspace", headers={"Authorization": f"Bearer {secret}"}, timeout=10
        )
        assert workspace.status_code == 200
        assert workspace.json()["name"] == "Demo"
        assert_the_worker_follows_up_on_tracked_events(base, write, secret)

        second = subprocess.run(
            [MASIVO, "up", "--port", str(free_port())],
            env={k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
            | {"MASIVO_DATA_DIR": str(data_dir)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert "Masivo is already running from" in second.stderr
    finally:
        assert first.stop() == 0
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert not (data_dir / "redis" / "redis.pid").exists()

    again = Up(data_dir, port)
    try:
        again.wait_for(r"Masivo is running at")
        assert not any("Secret API key" in line for line in again.output)
        workspace = requests.get(
            f"{base}/api/v1/workspace", headers={"Authorization": f"Bearer {secret}"}, timeout=10
        )
        assert workspace.status_code == 200
    finally:
        assert again.stop() == 0

    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"MASIVO_DATA_DIR": str(data_dir)}
    env.pop("XDG_RUNTIME_DIR", None)
    subprocess.run(
        [sys.executable, "manage.py", "showmigrations", "tenancy"],
        env=env,
        check=True,
        capture_output=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert (data_dir / "redis" / "redis.pid").exists()  # manage.py leaves the servers running
    down = subprocess.run([MASIVO, "down"], env=env, capture_output=True, text=True, check=True)
    assert down.stdout.strip() == f"embedded servers in {data_dir} are stopped"
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert not (data_dir / "redis" / "redis.pid").exists()
