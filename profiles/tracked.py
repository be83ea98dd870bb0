"""A validated tracking message and what became of a batch of them.

The parsers (`profiles.tracking` for the Segment API, the native events API) produce
`TrackedMessage`s; ingestion stores them and identity resolution decides who they are about.
(Not a message sent to a customer: that is messaging's `Message`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class TrackedMessage:
    """One validated tracking message (track, identify, alias…), whatever API it came through."""

    index: int
    type: str
    name: str
    message_id: str
    occurred_at: datetime
    user_id: str = ""
    anonymous_id: str = ""
    previous_id: str = ""
    customer_id: int | None = None  # the native API may name the customer directly
    properties: dict = field(default_factory=dict)
    traits: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)


@dataclass
class Rejection:
    index: int
    reason: str
    field: str | None = None
    message_id: str | None = None

    def as_dict(self) -> dict:
        body = {"index": self.index, "reason": self.reason}
        if self.field:
            body["field"] = self.field
        if self.message_id:
            body["messageId"] = self.message_id
        return body


@dataclass
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
