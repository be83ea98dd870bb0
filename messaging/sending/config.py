"""The sender's knobs: a Django setting of that name, else the environment variable, else the
default (settings.py holds none of them, so a deployment sets only what it changes)."""

from __future__ import annotations

import os

from django.conf import settings

DEFAULTS: dict[str, float] = {
    # Messages one claim takes (one transaction, then released before any provider call).
    "MASIVO_SEND_BATCH_SIZE": 500,
    # Messages marked handed over, called and recorded together: what a worker killed during a
    # hand-over can leave `unknown`, at most.
    "MASIVO_SEND_HANDOVER_CHUNK": 20,
    # Concurrent requests per hand-over (SendGrid and Twilio take one request a message).
    "MASIVO_SEND_CONCURRENCY": 8,
    # FCM `send_each` starts a thread per message: chunks of this many (500 at most).
    "MASIVO_FCM_CHUNK": 100,
    # Attempts (claims) before a message that keeps meeting 429/5xx is failed.
    "MASIVO_SEND_MAX_ATTEMPTS": 5,
    # Exponential backoff between attempts: first, doubling up to the cap, with jitter.
    "MASIVO_SEND_RETRY_FIRST_SECONDS": 30,
    "MASIVO_SEND_RETRY_MAX_SECONDS": 3600,
    # Per workspace and provider: the token bucket's rate and burst (burst 0: one second's).
    "MASIVO_SEND_RATE_PER_SECOND": 100,
    "MASIVO_SEND_RATE_BURST": 0,
    # A message `sending` this long belongs to a worker that is gone (recovery resolves it).
    "MASIVO_SEND_STALL_SECONDS": 300,
    # How long one `messaging.send_due` run keeps claiming before it returns.
    "MASIVO_SEND_RUN_SECONDS": 50,
    # firebase-admin's own retries of 500/503: its urllib3 backoff factor.
    "MASIVO_FCM_RETRY_BACKOFF": 0.5,
}


def setting(name: str) -> float:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name)
    if value is None or value == "":
        return DEFAULTS[name]
    return float(value)


def int_setting(name: str) -> int:
    return int(setting(name))


def provider_rate(provider: str) -> tuple[float, float]:
    """(tokens per second, burst) for `provider`: `MASIVO_SEND_RATES = {"sendgrid": 50}` (a
    setting) overrides the rate for one provider."""
    rates = getattr(settings, "MASIVO_SEND_RATES", None) or {}
    rate = float(rates.get(provider) or setting("MASIVO_SEND_RATE_PER_SECOND"))
    burst = setting("MASIVO_SEND_RATE_BURST") or rate
    return rate, max(burst, 1.0)
