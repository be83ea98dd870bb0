import logging

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

from masivo.tenancy.redis import hit_counter

logger = logging.getLogger(__name__)


class ApiKeyRateThrottle(BaseThrottle):
    """Per-key requests per minute, counted in Redis; 429 with Retry-After past the limit.

    If Redis is unreachable the request is let through: a limit is protection, not data.
    """

    window_seconds = 60

    def allow_request(self, request, view):
        api_key = getattr(request, "auth", None)
        if api_key is None:
            return True
        limit = settings.MASIVO_API_RATE_LIMIT_PER_MINUTE
        try:
            hits, self.retry_after = hit_counter(
                f"{settings.MASIVO_REDIS_PREFIX}ratelimit:api:{api_key.id}",
                window_seconds=self.window_seconds,
            )
        except redis.RedisError:
            logger.warning("rate limiting skipped: Redis unavailable", exc_info=True)
            return True
        return hits <= limit

    def wait(self):
        return self.retry_after
