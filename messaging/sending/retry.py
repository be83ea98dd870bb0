"""The retry policy: exponential backoff with jitter, the provider's own `Retry-After` or
reset time when it gives one, and a maximum of attempts after which the message fails."""

from __future__ import annotations

import random
import socket
from datetime import UTC, datetime, timedelta

from messaging.sending.config import int_setting, setting
from messaging.sending.outcomes import Failed, RetryLater

_random = random.SystemRandom()


def backoff_seconds(attempts: int, *, jitter: float | None = None) -> float:
    """Seconds before attempt `attempts + 1`: first * 2^(attempts-1), capped, with "equal
    jitter" (between half and all of it) so that a burst of 429s does not come back at once."""
    first = setting("MASIVO_SEND_RETRY_FIRST_SECONDS")
    cap = setting("MASIVO_SEND_RETRY_MAX_SECONDS")
    ceiling = min(first * 2 ** max(attempts - 1, 0), cap)
    fraction = _random.random() if jitter is None else jitter
    return ceiling / 2 + ceiling / 2 * fraction


def retry_due_at(retry: RetryLater, *, attempts: int, now: datetime) -> datetime | Failed:
    """When to try again, or Failed when `attempts` used the maximum. The provider's word
    (`at`, `after_seconds`) is honoured as it is: never earlier."""
    if attempts >= int_setting("MASIVO_SEND_MAX_ATTEMPTS"):
        return Failed(retry.code, f"gave up after {attempts} attempts: {retry.reason}")
    if retry.at is not None:
        return max(retry.at, now)
    if retry.after_seconds is not None:
        return now + timedelta(seconds=max(retry.after_seconds, 0))
    return now + timedelta(seconds=backoff_seconds(attempts))


def seconds_header(value) -> float | None:
    """`Retry-After` in seconds (the HTTP-date form is not used by these providers)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def epoch_header(value) -> datetime | None:
    """SendGrid's `X-RateLimit-Reset`: unix seconds when the window resets."""
    seconds = seconds_header(value)
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds is not None else None


def never_reached(error: BaseException) -> bool:
    """True when a transport error proves the request never reached the provider (the
    connection was refused or never made, the name did not resolve), so it may be sent again.
    Anything else (a reset, a closed connection, a read timeout) may follow a request the
    provider took: the caller records `unknown` rather than risk a second send."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ConnectionRefusedError | socket.gaierror):
            return True
        name = type(error).__name__
        if name in {"NewConnectionError", "ConnectTimeout", "NameResolutionError"}:
            return True
        reason = getattr(error, "reason", None)
        nested = reason if isinstance(reason, BaseException) else None
        if nested is None and error.args and isinstance(error.args[0], BaseException):
            nested = error.args[0]
        error = nested or error.__cause__ or error.__context__
    return False
