"""What a hand-over says about each message, before it is recorded (messaging.sending.store)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Sent:
    provider_message_id: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Failed:
    """Permanent: retrying cannot help. `code` is short and stable (`invalid_address`,
    `no_connection`, `twilio_21211`...), `reason` says it in words."""

    code: str
    reason: str


@dataclass(frozen=True)
class RetryLater:
    """Transient (429, 5xx, a connection error): try again after `after_seconds`, or at `at`
    (the provider's reset time), or after the backoff when neither is given."""

    code: str
    reason: str
    after_seconds: float | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class Unknown:
    """It may or may not have reached the provider, and the provider cannot say."""

    code: str
    reason: str


@dataclass(frozen=True)
class Postponed:
    """Not attempted (over the send rate): back to the queue, the attempt not counted."""

    after_seconds: float
    reason: str


Outcome = Sent | Failed | RetryLater | Unknown | Postponed
