"""Per-workspace send rates per provider: a token bucket in Redis, shared by every sender.

Redis only meters; Postgres decides what is due. A batch takes as many tokens as it can; the
messages over the rate go back to `queued` with a short `due_at` (messaging.sending.pipeline),
their attempt not counted. Redis unreachable: the bucket lets everything through (sends go on,
unmetered) and says so in the log, rather than stopping every send.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from redis.exceptions import RedisError

from masivo.tenancy.redis import get_redis
from messaging.sending.config import provider_rate

logger = logging.getLogger(__name__)

# KEYS[1]: the bucket (a hash of tokens and the time they were counted). ARGV: rate per
# second, burst, tokens wanted, now (seconds). Returns the tokens granted (all or part).
_TAKE = """
local rate, burst, wanted, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
    tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return granted
"""


def bucket_key(workspace_id: int, provider: str) -> str:
    return f"{settings.MASIVO_REDIS_PREFIX}send-rate:{workspace_id}:{provider}"


def send_tokens_take(
    *, workspace_id: int, provider: str, wanted: int, now: float | None = None
) -> int:
    """How many of `wanted` messages may go now (between 0 and `wanted`)."""
    if wanted <= 0:
        return 0
    rate, burst = provider_rate(provider)
    try:
        granted = get_redis().eval(
            _TAKE,
            1,
            bucket_key(workspace_id, provider),
            rate,
            burst,
            wanted,
            time.time() if now is None else now,
        )
    except RedisError as error:
        logger.warning("send rate of %s not metered (Redis: %s)", provider, error)
        return wanted
    return int(granted)


def seconds_for(count: int, provider: str) -> float:
    """Time the bucket needs to earn `count` tokens."""
    rate, _ = provider_rate(provider)
    return count / rate
