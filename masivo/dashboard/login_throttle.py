"""Login throttling: failed sign-ins counted in Redis per username and per client IP.

After settings.MASIVO_LOGIN_MAX_FAILURES failures within MASIVO_LOGIN_LOCKOUT_SECONDS, for either
counter, every attempt is refused (even with the right password) until the window ends. The
window is fixed, starting at the first failure. A successful sign-in clears the username's
counter, never the IP's: one good account must not reset the budget for guessing others.
"""

import hashlib
import logging

import redis
from django.conf import settings

from masivo.tenancy.redis import get_redis, hit_counter

logger = logging.getLogger(__name__)


def _prefix() -> str:
    return f"{settings.MASIVO_REDIS_PREFIX}login:"


def normalize_username(username: str) -> str:
    return username.strip().lower()


def _username_key(username: str) -> str:
    # Hashed: the key stays short and the store never holds what someone typed as a username.
    digest = hashlib.sha256(normalize_username(username).encode()).hexdigest()[:32]
    return f"{_prefix()}user:{digest}"


def _ip_key(ip: str) -> str:
    return f"{_prefix()}ip:{ip}"


def _keys(*, username: str, ip: str) -> list[str]:
    keys = [_ip_key(ip)]
    if normalize_username(username):
        keys.append(_username_key(username))
    return keys


def lockout_remaining(*, username: str, ip: str) -> int:
    """Seconds until attempts for this username or IP are allowed again; 0 when they are."""
    client = get_redis()
    keys = _keys(username=username, ip=ip)
    try:
        with client.pipeline() as pipe:
            for key in keys:
                pipe.get(key)
                pipe.ttl(key)
            results = pipe.execute()
    except redis.RedisError:
        logger.warning("login throttling skipped: Redis unavailable", exc_info=True)
        return 0
    remaining = 0
    for hits, ttl in zip(results[::2], results[1::2], strict=True):
        if hits is not None and int(hits) >= settings.MASIVO_LOGIN_MAX_FAILURES:
            remaining = max(remaining, int(ttl), 1)
    return remaining


def failure_record(*, username: str, ip: str) -> int:
    """Count one failed attempt; return the lockout it triggers in seconds (0 for none)."""
    remaining = 0
    for key in _keys(username=username, ip=ip):
        try:
            hits, ttl = hit_counter(key, window_seconds=settings.MASIVO_LOGIN_LOCKOUT_SECONDS)
        except redis.RedisError:
            logger.warning("login failure not counted: Redis unavailable", exc_info=True)
            return 0
        if hits >= settings.MASIVO_LOGIN_MAX_FAILURES:
            remaining = max(remaining, ttl)
    return remaining


def success_record(*, username: str) -> None:
    try:
        get_redis().delete(_username_key(username))
    except redis.RedisError:
        logger.warning("login counter not cleared: Redis unavailable", exc_info=True)
