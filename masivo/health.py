"""/healthz: the process answers. /readyz: its dependencies answer too (503 naming what failed)."""

import logging

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from kombu import Connection
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)


def healthz(request):
    return JsonResponse({"status": "ok"})


class BypassingRole(DatabaseError):
    """The connected role is a superuser or has BYPASSRLS: the second tenant wall is off."""


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        if cursor.fetchone()[0]:
            raise BypassingRole("the database role bypasses row-level security")


def _check_redis() -> None:
    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()


def _check_broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)


CHECKS = {"database": _check_database, "redis": _check_redis, "broker": _check_broker}
_EXPECTED_FAILURES = (DatabaseError, redis.RedisError, BrokerError, OSError, TimeoutError)


def readyz(request):
    results, failing = {}, []
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except _EXPECTED_FAILURES as error:
            logger.warning("readiness check %s failed: %s", name, error)
            results[name] = f"failing: {type(error).__name__}: {error}"[:200]
            failing.append(name)
    status = 503 if failing else 200
    return JsonResponse(
        {"status": "failing" if failing else "ok", "checks": results, "failing": failing},
        status=status,
    )
