"""One shared Redis client per process, for counters (rate limits, login throttling)."""

from functools import cache

import redis
from django.conf import settings


@cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def hit_counter(key: str, *, window_seconds: int) -> tuple[int, int]:
    """Count one hit in a fixed window; return (hits so far, seconds until the window ends)."""
    client = get_redis()
    with client.pipeline() as pipe:
        # SET NX EX starts the window (EXPIRE NX needs Redis 7; the embedded one is 6.2).
        pipe.set(key, 0, ex=window_seconds, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, hits, ttl = pipe.execute()
    return int(hits), max(int(ttl), 1)
