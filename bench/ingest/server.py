"""The server under test, set up the way an operator would: its own role and database, migrated,
a workspace minted by the CLI, gunicorn in a subprocess. Cleanup drops the database."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


MUTABLE_CUSTOMER = (
    "email", "phone", "first_name", "last_name", "gender", "birth_date", "country", "city",
    "timezone", "locale", "tier", "traits", "updated_at",
)  # fmt: skip


@dataclass
class Workspace:
    id: int
    write_key: str
    secret_key: str = ""


class BenchDatabase:
    def __init__(self, *, admin_url: str, app_url: str, redis_url: str):
        self.admin_url = admin_url
        self.app_url = app_url
        self.redis_url = redis_url
        self.name = urlsplit(app_url).path.lstrip("/")
        parts = urlsplit(admin_url)
        self.admin_db_url = urlunsplit(parts._replace(path=f"/{self.name}"))
        self.secret_keys = base64.urlsafe_b64encode(os.urandom(32)).decode()  # a Fernet key

    @property
    def env(self) -> dict[str, str]:
        return os.environ | {
            "DATABASE_URL": self.app_url,
            "REDIS_URL": self.redis_url,
            "DJANGO_SETTINGS_MODULE": "masivo.settings",
            "DEBUG": "0",
            "SECRET_KEY": "bench-ingest-not-secret",
            # A deployment (SECRET_KEY set) must give its credential-encryption keys too.
            "MASIVO_SECRET_KEYS": os.environ.get("MASIVO_SECRET_KEYS", self.secret_keys),
            "PYTHONUNBUFFERED": "1",
        }

    def _run(self, *command: str) -> str:
        result = subprocess.run(
            command, cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def create(self) -> None:
        self.drop()
        self._run(
            str(VENV_BIN / "masivo"), "db", "bootstrap",
            "--admin-url", self.admin_url, "--app-url", self.app_url,
        )  # fmt: skip
        self._run(sys.executable, "-m", "django", "migrate", "--verbosity", "0")

    def create_workspace(self, name: str) -> Workspace:
        output = self._run(
            str(VENV_BIN / "masivo"), "workspace", "create", name, "--org", "Bench", "--json"
        )
        result = json.loads(output)
        return Workspace(
            id=result["workspace"]["id"],
            write_key=result["keys"]["write"],
            secret_key=result["keys"].get("secret", ""),
        )

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_db_url, autocommit=True)

    def seed_customers(self, workspace_id: int, rows, *, link_anonymous: bool = True) -> None:
        """The customers that already exist: (user_id, anonymous_id, email, first, last)."""
        if not rows:
            return
        user_ids, anonymous_ids, emails, firsts, lasts = (
            list(column) for column in zip(*rows, strict=True)
        )
        with self.admin() as admin:
            admin.execute(
                """
                INSERT INTO profiles_customer (
                    workspace_id, external_id, email, phone, first_name, last_name, gender,
                    birth_date, country, city, timezone, locale, tier, status, is_anonymous, tags,
                    traits, consent, created_at, updated_at, purchase_count, purchase_total,
                    purchases_30d_count, purchases_30d_total, purchases_month_count,
                    purchases_month_total)
                SELECT %(ws)s, u, e, NULL, f, l, '', NULL, '', '', '', '', '', 'active', false,
                       '{}', '{"plan": "free"}', '{}', now() - interval '90 days', now(),
                       0, 0, 0, 0, 0, 0
                  FROM unnest(%(users)s::text[], %(emails)s::text[], %(firsts)s::text[],
                              %(lasts)s::text[]) AS v(u, e, f, l)
                ON CONFLICT DO NOTHING
                """,
                {"ws": workspace_id, "users": user_ids, "emails": emails, "firsts": firsts,
                 "lasts": lasts},
            )  # fmt: skip
            if link_anonymous:
                admin.execute(
                    """
                    INSERT INTO profiles_identity (workspace_id, customer_id, kind, value,
                                                   created_at)
                    SELECT c.workspace_id, c.id, 'anonymous_id', v.a, now()
                      FROM unnest(%(users)s::text[], %(anons)s::text[]) AS v(u, a)
                      JOIN profiles_customer c ON c.workspace_id = %(ws)s AND c.external_id = v.u
                    ON CONFLICT DO NOTHING
                    """,
                    {"ws": workspace_id, "users": user_ids, "anons": anonymous_ids},
                )
            admin.execute("ANALYZE profiles_customer, profiles_identity, profiles_event")

    def seed_history(self, workspace_id: int, count: int) -> None:
        """Past, already processed events of the seeded customers, so that the event table, its
        indexes and the planner's statistics look like a live workspace's, not an empty one's."""
        if count <= 0:
            return
        with self.admin() as admin:
            admin.execute(
                """
                WITH c AS (
                    SELECT array_agg(id ORDER BY id) AS ids,
                           array_agg(external_id ORDER BY id) AS users
                      FROM profiles_customer WHERE workspace_id = %(ws)s
                )
                INSERT INTO profiles_event (
                    workspace_id, type, name, properties, occurred_at, received_at, message_id,
                    customer_id, user_id, anonymous_id, context, source, processed_at)
                SELECT %(ws)s, 'track',
                       (ARRAY['Product Viewed', 'Product Added', 'Cart Viewed',
                              'Order Completed'])[1 + g %% 4],
                       jsonb_build_object('product_id', 'prod_' || lpad((g %% 2000)::text, 5, '0'),
                                          'price', (g %% 9973) / 100.0, 'currency', 'USD'),
                       now() - (g %% 2592000) * interval '1 second',
                       now() - (g %% 2592000) * interval '1 second',
                       'hist-' || md5(g::text),
                       c.ids[1 + (g * 7919) %% cardinality(c.ids)],
                       c.users[1 + (g * 7919) %% cardinality(c.ids)],
                       '', '{"library": {"name": "analytics-python", "version": "2.3.3"}}',
                       'segment', now()
                  FROM generate_series(1, %(count)s) AS g, c
                """,
                {"ws": workspace_id, "count": count},
            )
            # What autovacuum would have done by now on a live server (it is off on some).
            admin.execute("VACUUM (ANALYZE) profiles_event, profiles_customer, profiles_identity")

    def snapshot(self) -> None:
        """Remember the seeded state, so that `restore` can bring every shape back to it."""
        with self.admin() as admin:
            admin.execute("DROP TABLE IF EXISTS bench_customer_seed")
            admin.execute(
                f"CREATE TABLE bench_customer_seed AS SELECT id, {', '.join(MUTABLE_CUSTOMER)} "
                "FROM profiles_customer"
            )
            admin.execute("DROP TABLE IF EXISTS bench_high_water")
            admin.execute(
                "CREATE TABLE bench_high_water AS SELECT "
                "(SELECT coalesce(max(id), 0) FROM profiles_event) AS event, "
                "(SELECT coalesce(max(id), 0) FROM profiles_identity) AS identity, "
                "(SELECT coalesce(max(id), 0) FROM profiles_customer) AS customer"
            )

    def restore(self) -> None:
        """Undo what a run wrote: its events, new customers and identities, trait updates."""
        assignments = ", ".join(f"{column} = s.{column}" for column in MUTABLE_CUSTOMER)
        with self.admin() as admin:
            admin.execute(
                "DELETE FROM profiles_event WHERE id > (SELECT event FROM bench_high_water)"
            )
            admin.execute(
                "DELETE FROM profiles_identity WHERE id > (SELECT identity FROM bench_high_water)"
            )
            admin.execute("DELETE FROM profiles_customermerge")
            admin.execute(
                "DELETE FROM profiles_customer WHERE id > (SELECT customer FROM bench_high_water)"
            )
            admin.execute(
                f"UPDATE profiles_customer c SET {assignments} FROM bench_customer_seed s "
                "WHERE c.id = s.id AND c.updated_at IS DISTINCT FROM s.updated_at"
            )
            admin.execute("VACUUM (ANALYZE) profiles_event, profiles_customer, profiles_identity")

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )

    def queue_length(self, queue: str = "celery") -> int:
        import redis

        return int(redis.Redis.from_url(self.redis_url).llen(queue))

    def clear_queue(self, queue: str = "celery") -> None:
        import redis

        redis.Redis.from_url(self.redis_url).delete(queue)

    def forget_queue(self, queue: str = "celery") -> None:
        """At the end: the queue and the bindings kombu declared for it in the bench's Redis db."""
        import redis

        client = redis.Redis.from_url(self.redis_url)
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")

    def backend_pids(self, admin: psycopg.Connection) -> dict[int, str]:
        """pid → group: this database's client backends ("postgres"), and the WAL writer,
        checkpointer and background writer they lean on ("postgres-bg", shared with any other
        database on the server)."""
        rows = admin.execute(
            "SELECT pid, backend_type FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND "
            "(datname = %s OR backend_type IN ('walwriter', 'checkpointer', 'background writer'))",
            [self.name],
        ).fetchall()
        return {
            pid: "postgres" if kind == "client backend" else "postgres-bg" for pid, kind in rows
        }

    def backend_states(self, admin: psycopg.Connection) -> list[str]:
        """What each of this database's client backends is doing right now."""
        rows = admin.execute(
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
            "WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            [self.name],
        ).fetchall()
        states = []
        for state, wait_type, wait_event in rows:
            if state == "active" and wait_type == "Lock":
                states.append(f"waiting on a lock ({wait_event})")
            elif state == "active" and wait_type in ("IO", "LWLock"):
                states.append(f"active, {wait_type} wait")
            elif state == "active":
                states.append("active (CPU)")
            elif state == "idle in transaction":
                states.append("idle in transaction (app working)")
            else:
                states.append("idle")
        return states


def stop_process(process: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 30 s: a server or worker started by the benchmark."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Gunicorn:
    def __init__(
        self,
        database: BenchDatabase,
        *,
        workers: int,
        threads: int,
        port: int,
        app: str = "masivo.wsgi",
        extra_env: dict[str, str] | None = None,
    ):
        self.database = database
        self.app = app
        self.extra_env = extra_env or {}
        self.workers = workers
        self.threads = threads
        self.port = port
        self.process: subprocess.Popen | None = None
        self.log_path = Path(f"/tmp/masivo-bench-ingest-gunicorn-{port}.log")  # noqa: S108

    @property
    def label(self) -> str:
        noun = "worker" if self.workers == 1 else "workers"
        return f"{self.workers} {noun}" + (f" x {self.threads} threads" if self.threads > 1 else "")

    def start(self) -> None:
        command = [
            sys.executable, "-m", "gunicorn", self.app,
            "--workers", str(self.workers),
            "--bind", f"127.0.0.1:{self.port}",
        ]  # fmt: skip
        if self.threads > 1:
            command += ["--threads", str(self.threads)]
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=self.database.env | self.extra_env,
            stdout=log,
            stderr=log,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer on {url}; see {self.log_path}")

    def logged_errors(self) -> Counter:
        """Internal errors in the server log, by the database error that caused them."""
        counts: Counter = Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            if "Internal Server Error" in line:
                counts["internal errors"] += 1
            elif match := re.match(r"^psycopg\.errors\.(\w+): ", line):
                counts[match[1]] += 1
        return counts

    def stop(self) -> None:
        stop_process(self.process)


class CeleryProcess:
    """`celery -A masivo worker` (or `beat`) in a subprocess, with the arguments `masivo up`
    gives it (masivo/cli.py), against the bench database and Redis."""

    def __init__(
        self,
        database: BenchDatabase,
        *,
        kind: str = "worker",
        concurrency: int = 1,
        log_path: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ):
        self.database = database
        self.kind = kind
        self.concurrency = concurrency
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        self.log_path = log_path or Path(f"/tmp/masivo-bench-celery-{kind}-{os.getpid()}.log")  # noqa: S108

    def start(self) -> None:
        command = [sys.executable, "-m", "celery", "-A", "masivo", "--quiet", self.kind,
                   "--loglevel", "INFO"]  # fmt: skip
        if self.kind == "worker":
            command += ["--concurrency", str(self.concurrency), "--without-gossip",
                        "--without-mingle"]  # fmt: skip
        else:
            command += ["--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
                        "--pidfile", ""]  # fmt: skip
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=self.database.env | self.extra_env,
            stdout=log,
            stderr=log,
        )
        if self.kind == "worker":
            self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        """Ready once the pool's processes exist and the log says the worker is ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery {self.kind} exited; see {self.log_path}")
            if "ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"celery {self.kind} did not start; see {self.log_path}")

    def logged_errors(self) -> Counter:
        """Failed tasks and database errors in the worker's log."""
        counts: Counter = Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            if re.search(r"Task \S+\[[^]]+\] raised unexpected", line):
                counts["task failed"] += 1
            elif match := re.match(r"^psycopg\.errors\.(\w+): ", line):
                counts[match[1]] += 1
        return counts

    def stop(self) -> None:
        stop_process(self.process)
