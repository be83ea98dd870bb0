"""The `masivo` command: run the platform, run the tests, and a few operator tasks."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _setup_django(*, quiet: bool = False):
    from masivo.runtime import ensure_services

    services = ensure_services(quiet=quiet)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "masivo.settings")
    import django

    django.setup()
    return services


def _refuse_rls_bypassing_role() -> None:
    from django.db import connection

    from masivo.dbsetup import role_bypasses_rls

    if role_bypasses_rls(connection):
        sys.exit(
            "DATABASE_URL connects as a superuser or a BYPASSRLS role, which row-level security "
            "does not bind. Create the application role with `masivo db bootstrap` "
            "(docs/operations.md) and connect as it."
        )


# masivo up ------------------------------------------------------------------------------------


def _acquire_up_lock(data_dir: Path):
    lock_path = data_dir / "up.lock"
    handle = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        sys.exit(
            f"Masivo is already running from {data_dir} (pid {owner}). Stop it first, "
            "or give this one its own MASIVO_DATA_DIR."
        )
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def running_summary(url: str, first_run, *, is_running: bool = True) -> str:
    """What `masivo up` prints last, once web and the worker answer: the URL to open, the
    login, and on the first run the password and keys (shown only that once, so they are
    printed even when a process failed to start)."""
    rule = "  " + "-" * 72
    headline = (
        f"  Masivo is running at {url}  (Ctrl-C stops it)"
        if is_running
        else "  Masivo did not start (see the lines above); the first-run login still holds."
    )
    lines = ["", rule, headline]
    if first_run.created:
        lines += [
            "",
            "  Masivo created a demo workspace. Keep these; they are not shown again.",
            f"  Login:            {first_run.email}",
            f"  Password:         {first_run.password}",
            f"  Workspace:        {first_run.workspace.name} (id {first_run.workspace.id})",
            f"  Write key:        {first_run.write_key}",
            f"  Secret API key:   {first_run.secret_key}",
        ]
    else:
        lines.append(
            "  Sign in with your account (lost the first-run password? "
            "`masivo user set-password EMAIL`)"
        )
    return "\n".join([*lines, rule, ""])


def _wait_for_worker(processes: dict, timeout: float = 60) -> bool:
    """True once a Celery worker answers a ping over the broker (its banner and start-up lines
    are printed by then, so the summary after it is the last thing on the screen)."""
    from masivo.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes.values()):
            return False
        if app.control.ping(timeout=1, limit=1):
            return True
    return False


def _wait_for_http(url: str, processes: dict, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes.values()):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own local URL)
                return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    return False


def _stop_children(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes.values():
        remaining = max(deadline - time.monotonic(), 0.1)
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def command_up(args) -> int:
    from masivo.runtime import data_dir

    lock = _acquire_up_lock(data_dir())
    services = _setup_django()
    try:
        from django.core.management import call_command

        from masivo.tenancy.provisioning import demo_environment_ensure

        _refuse_rls_bypassing_role()
        call_command("migrate", interactive=False, verbosity=0)
        first_run = demo_environment_ensure()
        return _run_children(args, first_run)
    finally:
        services.stop_started()
        lock.close()


def _run_children(args, first_run) -> int:
    python = sys.executable
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    commands = {
        "web": [
            python, "-m", "gunicorn", "masivo.wsgi",
            "--bind", f"{args.host}:{args.port}",
            "--workers", str(args.web_workers),
            "--access-logfile", "-",
            "--graceful-timeout", "10",
        ],
        "worker": [
            python, "-m", "celery", "-A", "masivo", "--quiet", "worker",
            "--loglevel", "INFO", "--concurrency", str(args.worker_concurrency),
        ],
        "beat": [
            python, "-m", "celery", "-A", "masivo", "--quiet", "beat", "--loglevel", "INFO",
            "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile", "",
        ],
    }  # fmt: skip
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    processes = {
        name: subprocess.Popen(command, env=env, cwd=PROJECT_ROOT)
        for name, command in commands.items()
    }
    url = f"http://{args.host}:{args.port}/"
    is_running = _wait_for_http(url + "healthz", processes) and _wait_for_worker(processes)
    if is_running or first_run.created:
        print(running_summary(url, first_run, is_running=is_running), flush=True)
    exit_code = 0
    while not stopping:
        dead = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
        if dead:
            for name, code in dead.items():
                print(f"masivo: the {name} process exited (code {code}); stopping", flush=True)
            exit_code = 1
            break
        time.sleep(0.5)
    print("masivo: stopping web, worker and beat…", flush=True)
    _stop_children(processes)
    return exit_code


# masivo down ----------------------------------------------------------------------------------


def command_down(args) -> int:
    """Stop the embedded PostgreSQL and Redis that `manage.py` or a crashed `up` left running."""
    from masivo.runtime import EmbeddedServices, data_dir

    lock = _acquire_up_lock(data_dir())
    try:
        services = EmbeddedServices(root=data_dir())
        services.stop_redis()
        services.stop_postgres()
    finally:
        lock.close()
    print(f"embedded servers in {data_dir()} are stopped")
    return 0


# masivo workspace create ----------------------------------------------------------------------


def command_workspace_create(args) -> int:
    _setup_django(quiet=True)
    from masivo.tenancy.errors import ServiceError
    from masivo.tenancy.provisioning import workspace_create_for_operator

    try:
        result = workspace_create_for_operator(
            name=args.name, organization_name=args.org, timezone_name=args.timezone
        )
    except ServiceError as error:
        print(json.dumps({"error": error.message, "field": error.field}), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"Workspace {result['workspace']['name']} (id {result['workspace']['id']})")
        print(f"  organization: {result['organization']['name']}")
        print(f"  write key:    {result['keys']['write']}")
        print(f"  secret key:   {result['keys']['secret']}")
    return 0


# masivo db bootstrap ----------------------------------------------------------------------------


def command_db_bootstrap(args) -> int:
    from masivo.dbsetup import bootstrap_from_urls

    role = bootstrap_from_urls(
        admin_url=args.admin_url, app_url=args.app_url, owner_url=args.owner_url
    )
    print(f"role {role} is ready (LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB)")
    if args.owner_url:
        print("it owns nothing: the owner role of --owner-url owns the schema and migrates it")
    return 0


# masivo user set-password ----------------------------------------------------------------------


def _read_new_password(args) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    password = getpass.getpass("New password: ")
    if getpass.getpass("New password again: ") != password:
        print("the two passwords differ; nothing changed", file=sys.stderr)
        return None
    return password


def command_user_set_password(args) -> int:
    """For operators who lost the first-run credentials, or a member locked out without email."""
    _setup_django(quiet=True)
    from masivo.tenancy.errors import ServiceError
    from masivo.tenancy.services import user_set_password

    password = _read_new_password(args)
    if password is None:
        return 2
    try:
        user_set_password(email=args.email, password=password)
    except ServiceError as error:
        print(f"masivo: {error.message}; nothing changed", file=sys.stderr)
        return 2
    print(f"password of {args.email.strip()} changed")
    return 0


# masivo test ------------------------------------------------------------------------------------


def command_test(args) -> int:
    from masivo.runtime import ensure_services

    services = ensure_services()
    # A test database of this run's own, so that two runs on one server do not collide.
    env = os.environ | {
        "DATABASE_TEST_NAME": os.environ.get("DATABASE_TEST_NAME") or f"test_masivo_{os.getpid()}"
    }
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", *args.pytest_args],
            cwd=PROJECT_ROOT,
            check=False,
            env=env,
        )
        return result.returncode
    finally:
        services.stop_started()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="masivo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="migrate, seed a demo workspace, run web + worker + beat")
    up.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", 8000)),
        help="the dashboard's and API's port (default: $PORT, else 8000)",
    )
    up.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)",
    )
    up.add_argument(
        "--web-workers",
        type=int,
        default=2,
        help="gunicorn worker processes serving web requests (default 2)",
    )
    up.add_argument(
        "--worker-concurrency",
        type=int,
        default=2,
        help="Celery worker processes running background jobs (default 2)",
    )
    up.set_defaults(handler=command_up)

    down = commands.add_parser("down", help="stop the embedded servers of MASIVO_DATA_DIR")
    down.set_defaults(handler=command_down)

    workspace = commands.add_parser("workspace", help="manage workspaces")
    workspace_commands = workspace.add_subparsers(dest="workspace_command", required=True)
    create = workspace_commands.add_parser("create", help="create a workspace and mint its keys")
    create.add_argument("name")
    create.add_argument("--org", help="organization name or slug (created when missing)")
    create.add_argument("--timezone", default="UTC")
    create.add_argument("--json", action="store_true", help="print JSON for scripts")
    create.set_defaults(handler=command_workspace_create)

    db = commands.add_parser("db", help="database administration")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    bootstrap = db_commands.add_parser(
        "bootstrap", help="create the application role (not superuser, no BYPASSRLS) and database"
    )
    bootstrap.add_argument("--admin-url", required=True, help="a superuser's postgres:// URL")
    bootstrap.add_argument("--app-url", required=True, help="the DATABASE_URL Masivo will use")
    bootstrap.add_argument(
        "--owner-url",
        help="the DATABASE_OWNER_URL migrations run as: this role owns the schema, and the app "
        "role gets only SELECT/INSERT/UPDATE/DELETE (recommended)",
    )
    bootstrap.set_defaults(handler=command_db_bootstrap)

    user = commands.add_parser("user", help="manage dashboard accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    set_password = user_commands.add_parser(
        "set-password", help="set an account's password (prompts twice)"
    )
    set_password.add_argument("email", help="the account's email (its sign-in name)")
    set_password.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    set_password.set_defaults(handler=command_user_set_password)

    test = commands.add_parser("test", help="run the test suite (embedded servers when no URLs)")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test.set_defaults(handler=command_test)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
