"""The small base class every connector implements, and the errors it raises.

A connector is one module (`destinations/connectors/<kind>.py`) with one `Connector` subclass.
It knows one platform's API and nothing of our tables: the sync engine
(`destinations.syncing`) and the forwarder (`destinations.forwarding`) decide what to send,
record what happened, retry and back off; a connector sends one batch and says how it went,
by returning (partial failures) or by raising one of the errors below.

What a connector may do is declared in `capabilities`:
- `audiences`: keep an audience (`members_add` / `members_remove`, `audience_create`);
- `replace`: full replace in sessions (`replace_batch`; otherwise a full sync sends the whole
  difference against the record);
- `events`, `profiles`, `memberships`: take forwarded items (`forward`);
- `deletion`: a deletion signal for erased customers (`customers_erased`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from rest_framework import serializers

AUDIENCES = "audiences"
REPLACE = "replace"
EVENTS = "events"
PROFILES = "profiles"
MEMBERSHIPS = "memberships"
DELETION = "deletion"


class ConnectorError(Exception):
    """Something the platform said or did; `str()` is for people (it is recorded)."""

    def __init__(self, message: str, *, code: str | int | None = None):
        super().__init__(message)
        self.code = code


class RetryLater(ConnectorError):
    """Throttled (429, Meta 80003/17/613/4/32, Google ResourceExhausted) or a 5xx/network
    error: the same batch again after a backoff, at least `retry_after` seconds if given."""

    def __init__(self, message: str, *, retry_after: float | None = None, code=None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class StillRunning(RetryLater):
    """The platform is still processing what was sent (a Google Ads job can take hours): call
    again after `retry_after`. Not a failure: it does not spend the run's retry budget."""


class BatchRejected(ConnectorError):
    """The platform refused this batch for good (invalid payload, a 4xx): its records are
    marked failed with the reason and retried by the next run, not again in this one."""


class RerunNeeded(ConnectorError):
    """The run's remote state is gone (a replace session timed out, a job expired): the run
    starts over from its plan."""


class DestinationBroken(ConnectorError):
    """Credentials revoked, the account or endpoint gone (a webhook's 410): the destination
    is disabled with this reason until someone fixes and re-enables it."""


@dataclass(frozen=True)
class Member:
    """One customer as a batch sends them: our id and their identifiers for this platform
    (`destinations.identifiers`: hashed where the platform hashes)."""

    customer_id: int
    identifiers: dict[str, str]


@dataclass
class Session:
    """The run a batch belongs to. `session_id` and `batch_seq` (1-based) are stable across a
    crash and retry: the same batch is sent again with the same numbers, which platforms with
    sessions (Meta) and our fakes use to apply it once. `state` is the connector's own
    bookkeeping for the run (a Google Ads job's resource name), persisted after each batch."""

    session_id: int
    batch_seq: int
    estimated_total: int
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult:
    """Customers the platform refused within an accepted batch (partial failure), by reason."""

    failed: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ForwardItem:
    """One thing to forward, built at send time.

    - `type`: "event", "profile" (created / updated / deleted / erased / merged_away) or
      "membership" (entered / exited an audience);
    - `dedupe_id`: stable for this item across retries (the platforms' `event_id`, the
      webhook's `webhook-id`);
    - `customer`: the profile fields the destination may receive (None once erased);
    - `identifiers`: as the platform takes them;
    - `event`: name, properties, occurred_at, message_id, context (events);
    - `changed`: the changed keys (profiles); `audience`: {id, name, kind} (memberships).
    """

    type: str
    dedupe_id: str
    customer_id: int | None
    occurred_at: datetime
    customer: dict[str, Any] | None = None
    identifiers: dict[str, str] = field(default_factory=dict)
    event: dict[str, Any] | None = None
    kind: str = ""
    changed: list[str] = field(default_factory=list)
    audience: dict[str, Any] | None = None


@dataclass
class ForwardResult:
    """How many items went, and those skipped (by dedupe id → reason), e.g. an event too old
    for the platform or one with no mapping."""

    sent: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ErasedCustomer:
    customer_id: int
    remote_id: str  # the id the destination knows them by (what was sent)


class NoConfig(serializers.Serializer):
    pass


class Connector:
    """One platform. Instances are made per use from a `Destination`; they hold its
    decrypted credentials and must not outlive the task that made them."""

    kind: ClassVar[str]
    label: ClassVar[str]
    summary: ClassVar[str]  # one sentence for the catalogue: what it does
    docs_anchor: ClassVar[str] = ""  # section of docs/destinations.md
    capabilities: ClassVar[frozenset[str]] = frozenset()
    # Identifier rules (destinations.identifiers.PLATFORM_RULES) and the identifiers offered.
    platform: ClassVar[str] = "plain"
    default_identifiers: ClassVar[tuple[str, ...]] = ("email",)
    # The identifiers a sync may choose (None: every one the platform's rules know).
    offered_identifiers: ClassVar[tuple[str, ...] | None] = None
    # The consent purpose a customer must allow (None: operational data, no purpose), on top
    # of the vendor decision for this destination's key.
    consent_purpose: ClassVar[str | None] = "advertising"
    batch_size: ClassVar[int] = 1000  # members (or forwarded items) a request
    requests_per_second: ClassVar[float | None] = None  # default rate limit
    # Strict DRF serializers for the destination's `config` (shown) and `credentials`
    # (encrypted, never shown): errors name `config.<field>` / `credentials.<field>`.
    config_serializer: ClassVar[type[serializers.Serializer]] = NoConfig
    credentials_serializer: ClassVar[type[serializers.Serializer]] = NoConfig

    def __init__(self, destination):
        self.destination = destination
        self.config: dict[str, Any] = destination.config or {}
        self.credentials: dict[str, Any] = destination.credentials or {}

    # Every connector -------------------------------------------------------------------------

    def test_connection(self) -> str:
        """Check the credentials with a harmless request; returns a detail for people, raises
        ConnectorError when it does not work."""
        raise NotImplementedError

    # Audiences -------------------------------------------------------------------------------

    def audience_create(self, name: str) -> str:
        """Create the remote audience; returns its id."""
        raise NotImplementedError

    def run_begin(self, remote_id: str, *, mode: str, session: Session) -> None:
        """Called once per run before the first batch (and again after a crash; keep it
        idempotent through `session.state`)."""

    def members_add(
        self, remote_id: str, members: list[Member], *, session: Session
    ) -> BatchResult:
        raise NotImplementedError

    def members_remove(
        self, remote_id: str, members: list[Member], *, session: Session
    ) -> BatchResult:
        raise NotImplementedError

    def replace_batch(
        self, remote_id: str, members: list[Member], *, session: Session, last: bool
    ) -> BatchResult:
        """One batch of a full replace session (`last` closes it; may be an empty batch)."""
        raise NotImplementedError

    def run_finish(self, remote_id: str, *, session: Session) -> None:
        """After the last batch (run a Google Ads job and wait for it). Raises RetryLater to be
        called again later (still running)."""

    # Forwarding ------------------------------------------------------------------------------

    def forward(self, items: list[ForwardItem]) -> ForwardResult:
        """Send a batch of items (at most `batch_size`), in order. At least once: a retry
        sends the same items with the same dedupe ids."""
        raise NotImplementedError

    def customers_erased(self, customers: list[ErasedCustomer]) -> None:
        """The platform's deletion signal for customers erased here."""
        raise NotImplementedError

    # Helpers ---------------------------------------------------------------------------------

    @classmethod
    def has(cls, capability: str) -> bool:
        return capability in cls.capabilities

    @classmethod
    def identifier_choices(cls) -> list[str]:
        """The identifiers a sync of this kind may send."""
        from destinations.identifiers import PLATFORM_RULES

        return list(cls.offered_identifiers or PLATFORM_RULES[cls.platform])

    @classmethod
    def credential_hints(cls, credentials: dict) -> dict[str, str]:
        """The last characters of each credential, the only thing ever shown again."""
        return {
            name: f"…{str(value)[-4:]}" if len(str(value)) > 8 else "…"
            for name, value in (credentials or {}).items()
            if value not in (None, "")
        }
