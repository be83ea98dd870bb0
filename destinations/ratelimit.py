"""Per-destination request rates: a token bucket in Redis shared by every worker.

A connector's `requests_per_second` is the default; a destination's `rate_limit_per_second`
overrides it. Redis only meters (unreachable: requests go unmetered, with a warning); waiting
longer than `MAX_WAIT` gives the batch back to the run's backoff instead of holding a worker.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from redis.exceptions import RedisError

from destinations.connectors.base import RetryLater
from masivo.tenancy.redis import get_redis

logger = logging.getLogger(__name__)

MAX_WAIT = 5.0

# KEYS[1]: the bucket. ARGV: rate per second, burst, now. Returns 0 when a token was taken,
# else the seconds until one will be there.
_TAKE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""


def destination_rate(destination, connector) -> float | None:
    return destination.rate_limit_per_second or connector.requests_per_second


def request_slot(destination, connector) -> None:
    """Wait for the destination's next request slot (at most MAX_WAIT; then RetryLater)."""
    rate = destination_rate(destination, connector)
    if not rate:
        return
    key = f"{settings.MASIVO_REDIS_PREFIX}destination-rate:{destination.id}"
    deadline = time.monotonic() + MAX_WAIT
    while True:
        try:
            wait = float(get_redis().eval(_TAKE, 1, key, rate, max(1.0, rate), time.time()))
        except RedisError as error:
            logger.warning("requests to destination %s not metered (Redis: %s)",
                           destination.id, error)  # fmt: skip
            return
        if wait <= 0:
            return
        if time.monotonic() + wait > deadline:
            raise RetryLater("over the destination's rate limit", retry_after=wait)
        time.sleep(wait)
