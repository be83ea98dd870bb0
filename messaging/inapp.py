"""In-app messages as a mobile app sees them: the customer's active ones, and what the app
reports back (seen, clicked, dismissed).

An in-app message is a `Message` on the `in_app` channel; the send pipeline marks it `sent`
when it is handed over, which for in-app means "ready to be fetched". It is active while its
status says it reached the customer (sent, delivered, opened, read, clicked), it was not
dismissed and its `expires_at` (in the rendered payload) has not passed. Reports go through
`record_engagement`, the one writer of message status and history, with an event id per
message and report: a report sent twice is recorded once. A dismissal moves no status; its
history row (`in_app:<id>:dismissed`) is what takes the message off the list.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from messaging.feedback.engagement import record_engagement
from messaging.models import Channel, Message, MessageStatus, MessageStatusChange

ACTIVE_STATUSES = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.OPENED,
    MessageStatus.READ,
    MessageStatus.CLICKED,
)
# The newest this many active messages are listed; an app shows a handful at most.
MAX_ACTIVE = 50
LAYOUTS = ("modal", "banner", "card")
DISMISSED_EVENT = "Message Dismissed"

# report → (the status it moves the message to, the customer event; None: the status's own)
REPORTS = {
    "seen": (MessageStatus.OPENED, None),
    "clicked": (MessageStatus.CLICKED, None),
    "dismissed": (None, DISMISSED_EVENT),
}


def inapp_report_event_id(message_id: int, report: str) -> str:
    return f"in_app:{message_id}:{report}"


def inapp_messages_delivered():
    """Every in-app message of the workspace that reached its customer (dismissed or not)."""
    return Message.objects.filter(channel=Channel.IN_APP, status__in=ACTIVE_STATUSES)


def inapp_expires_at(message: Message) -> datetime | None:
    """The payload's `expires_at` as an aware datetime (no zone: UTC), or else its
    `expires_after_hours` counted from the hand-over; None when it has neither or
    `expires_at` is not an ISO 8601 date-time."""
    payload = message.payload if isinstance(message.payload, dict) else {}
    value = payload.get("expires_at")
    hours = payload.get("expires_after_hours")
    if value is None and isinstance(hours, int | float) and not isinstance(hours, bool):
        # A payload that kept the template's relative expiry: from the hand-over.
        if hours > 0:
            return (message.sent_at or message.created_at) + timedelta(hours=hours)
        return None
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:  # well-formed but impossible, like February 30
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        return None


def inapp_messages_active(*, customer_id: int, now: datetime | None = None) -> list[Message]:
    """The customer's active in-app messages, newest first, at most MAX_ACTIVE.

    Expiry lives in the payload as text, so it is checked here rather than in SQL (a cast of
    a malformed value would fail the whole query); the scan stops at MAX_ACTIVE."""
    now = now or timezone.now()
    dismissed = MessageStatusChange.objects.filter(
        message_id=OuterRef("id"),
        provider_event_id__startswith="in_app:",
        provider_event_id__endswith=":dismissed",
    )
    candidates = (
        inapp_messages_delivered()
        .filter(customer_id=customer_id)
        .exclude(Exists(dismissed))
        .order_by("-created_at", "-id")
    )
    active = []
    for message in candidates.iterator(chunk_size=MAX_ACTIVE):
        expires_at = inapp_expires_at(message)
        if expires_at is not None and expires_at <= now:
            continue
        active.append(message)
        if len(active) == MAX_ACTIVE:
            break
    return active


def inapp_message_report(*, message: Message, report: str, now: datetime | None = None) -> bool:
    """Record what the app reports about `message` (seen, clicked or dismissed); call inside
    the workspace's scope. Idempotent: returns False when this report was already recorded."""
    status, event = REPORTS[report]
    recorded = record_engagement(
        message,
        status,
        detail=f"in-app: {report}",
        provider_event_id=inapp_report_event_id(message.id, report),
        event=event,
        now=now,
    )
    return not recorded.is_duplicate
