"""SendGrid's Event Webhook: verify a batch's signature, then record each event.

SendGrid signs `timestamp + raw body` with ECDSA P-256 / SHA-256 and sends the base64 DER
signature and the unix timestamp in headers; the connection holds the webhook's verification
key (`event_webhook_public_key`). A request without a signature, with a wrong one, or with a
timestamp too old (`MASIVO_SENDGRID_WEBHOOK_MAX_AGE_SECONDS`, 10 minutes by default) or in the
future (beyond a minute of clock skew) is refused before its body is read as JSON.

Events name our message by the `masivo_message_id` custom argument the sender puts on each
personalization (SendGrid flattens custom arguments into every event); events without one, or
naming a message this workspace does not have, are ignored and counted. `sg_event_id` is the
provider event id: SendGrid retries for 24 hours, and a repeat is recorded once.
"""

from __future__ import annotations

import binascii
import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from sendgrid.helpers.eventwebhook import EventWebhook, EventWebhookHeader

from masivo.tenancy.errors import InvalidInput, ServiceError
from masivo.tenancy.models import Workspace
from messaging.feedback.engagement import (
    SPAM_REPORTED,
    UNSUBSCRIBED,
    EngagementBatch,
    record_engagement,
)
from messaging.models import Channel, ChannelConnection, Message, MessageStatus, Suppression
from profiles.consent import consent_update
from profiles.models import ConsentPurpose, ConsentStatus, Customer

# The custom argument (on each personalization) that names our message in every event.
MESSAGE_ID_ARG = "masivo_message_id"
SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP
DEFAULT_MAX_AGE_SECONDS = 600
FUTURE_SKEW_SECONDS = 60

# A hard bounce's classification that says the address itself is bad (suppress it); the others
# (Reputation, Content, Technical Failure, Frequency or Volume Too High) are the sender's
# problem and leave the address usable. Bounces without a classification count as hard.
SUPPRESSING_CLASSIFICATIONS = {
    "": Suppression.Reason.HARD_BOUNCE,
    "Invalid Address": Suppression.Reason.INVALID_ADDRESS,
    "Mailbox Unavailable": Suppression.Reason.HARD_BOUNCE,
    "Unclassified": Suppression.Reason.HARD_BOUNCE,
}
# A drop because SendGrid already lists the address: mirror it in ours.
DROP_REASONS = {
    "Bounced Address": Suppression.Reason.HARD_BOUNCE,
    "Invalid": Suppression.Reason.INVALID_ADDRESS,
    "Spam Reporting Address": Suppression.Reason.SPAM_REPORT,
    "Unsubscribed Address": Suppression.Reason.UNSUBSCRIBE,
}
KNOWN_WITHOUT_EFFECT = {"processed", "group_resubscribe"}


class Refused(ServiceError):
    """The request does not prove it comes from SendGrid (403), or is malformed (400)."""

    status = 403
    code = "permission_denied"


@dataclass
class Outcome:
    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    ignored: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def ignore(self, reason: str) -> None:
        self.ignored += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "recorded": self.recorded,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "ignored_reasons": self.reasons,
        }


def max_age_seconds() -> int:
    value = getattr(settings, "MASIVO_SENDGRID_WEBHOOK_MAX_AGE_SECONDS", None)
    return int(value or DEFAULT_MAX_AGE_SECONDS)


def verify(
    connection: ChannelConnection, *, body: bytes, signature: str, timestamp: str, now: datetime
) -> str:
    """The body as text once its signature and timestamp hold; else Refused."""
    public_key = connection.settings.get("event_webhook_public_key")
    if not public_key:
        raise Refused(
            "signature verification is not set up: paste the Event Webhook's verification key "
            "into the SendGrid connection (unsigned events are never accepted)"
        )
    if not signature or not timestamp:
        raise Refused(
            f"unsigned: the {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} headers are required"
        )
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise Refused(f"{TIMESTAMP_HEADER} must be unix seconds")
    age = now.timestamp() - int(timestamp)
    if age > max_age_seconds():
        raise Refused(f"stale: signed {int(age)} seconds ago, more than {max_age_seconds()}")
    if age < -FUTURE_SKEW_SECONDS:
        raise Refused("the signature's timestamp is in the future")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("the body is not UTF-8") from None
    try:
        verifier = EventWebhook(public_key)
        is_valid = verifier.verify_signature(text, signature, timestamp)
    except (binascii.Error, ValueError, TypeError):  # malformed base64, a bad key
        is_valid = False
    if not is_valid:
        raise Refused("invalid signature: check the verification key of this Event Webhook")
    return text


def parse(text: str) -> list:
    try:
        events = json.loads(text)
    except ValueError:
        raise InvalidInput("the body is not JSON", field="body") from None
    if not isinstance(events, list):
        raise InvalidInput("the body must be a JSON array of events", field="body")
    return events


def _message_id(event: dict) -> int | None:
    value = event.get(MESSAGE_ID_ARG)
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value < 2**63 else None
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def _occurred_at(event: dict, now: datetime) -> datetime:
    value = event.get("timestamp")
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 2**33:
        at = datetime.fromtimestamp(value, tz=UTC)
        return min(at, now)
    return now


def _text(event: dict, name: str, limit: int = 200) -> str:
    value = event.get(name)
    return str(value)[:limit] if isinstance(value, str | int | float) else ""


def process(*, workspace: Workspace, events: list, now: datetime) -> Outcome:
    """Record a verified batch (inside its workspace's scope), in one transaction."""
    outcome = Outcome(received=len(events))
    wanted = {_message_id(e) for e in events if isinstance(e, dict)} - {None}
    with transaction.atomic():
        messages = {
            m.id: m
            for m in Message.objects.filter(id__in=wanted, channel=Channel.EMAIL).select_related(
                "template_version"
            )
        }
        batch = EngagementBatch(workspace=workspace, now=now)
        # Messages are locked in id order (concurrent batches never wait on each other in a
        # cycle); each message's events keep the order SendGrid sent them in.
        for event in sorted(
            events, key=lambda e: _message_id(e) or 0 if isinstance(e, dict) else 0
        ):
            if not isinstance(event, dict):
                outcome.ignore("not an object")
                continue
            message = messages.get(_message_id(event))
            if message is None:
                outcome.ignore("unknown message")
                continue
            _record(workspace, message, event, now, batch, outcome)
        batch.flush()
    return outcome


def _record(
    workspace: Workspace,
    message: Message,
    event: dict,
    now: datetime,
    batch: EngagementBatch,
    outcome: Outcome,
) -> None:
    kind = _text(event, "event", 40)
    event_id = _text(event, "sg_event_id", 100)
    if not event_id:
        outcome.ignore("no sg_event_id")
        return
    at = _occurred_at(event, now)
    common = {"provider_event_id": f"sendgrid:{event_id}", "occurred_at": at, "now": now}
    response = _text(event, "response") or _text(event, "reason")
    suppress, withdraw = None, None

    if kind == "delivered":
        args = (MessageStatus.DELIVERED, f"SendGrid delivered: {response}".strip(": "))
        extra = {}
    elif kind == "open":
        args = (MessageStatus.OPENED, "SendGrid: opened")
        extra = {"machine_open": event.get("sg_machine_open") is True}
    elif kind == "click":
        url = _text(event, "url", 2000)
        args = (MessageStatus.CLICKED, f"SendGrid: clicked {url}"[:500])
        extra = {"url": url}
    elif kind == "bounce":
        bounce_type = "soft" if event.get("type") == "blocked" else "hard"
        classification = _text(event, "bounce_classification", 60)
        status_code = _text(event, "status", 20)
        detail = f"SendGrid {'blocked' if bounce_type == 'soft' else 'bounce'}"
        detail += f" {status_code}" if status_code else ""
        detail += f": {response}" if response else ""
        args = (MessageStatus.BOUNCED, detail)
        extra = {"bounce_type": bounce_type, "bounce_classification": classification}
        extra["error_code"] = status_code
        if bounce_type == "hard" and classification in SUPPRESSING_CLASSIFICATIONS:
            suppress = SUPPRESSING_CLASSIFICATIONS[classification]
    elif kind == "dropped":
        reason = _text(event, "reason")
        args = (MessageStatus.FAILED, f"SendGrid dropped: {reason}")
        extra = {"reason": reason, "error_code": "dropped"}
        suppress = DROP_REASONS.get(reason)
    elif kind == "deferred":
        attempt = _text(event, "attempt", 10)
        args = (None, f"SendGrid deferred (attempt {attempt or '?'}): {response}")
        extra = {}
        common["event"] = ""
    elif kind == "spamreport":
        args = (None, "SendGrid: reported as spam")
        extra = {}
        common["event"] = SPAM_REPORTED
        suppress = Suppression.Reason.SPAM_REPORT
        withdraw = "sendgrid:spamreport"
    elif kind in ("unsubscribe", "group_unsubscribe"):
        group = event.get("asm_group_id")
        detail = "SendGrid: unsubscribed" + (f" from group {group}" if group else "")
        args = (None, detail)
        extra = {"via": kind} | ({"asm_group_id": group} if group else {})
        common["event"] = UNSUBSCRIBED
        withdraw = f"sendgrid:{kind}"
    elif kind in KNOWN_WITHOUT_EFFECT:
        outcome.ignore(kind)
        return
    else:
        outcome.ignore("unknown event type")
        return

    recorded = record_engagement(
        message, args[0], detail=args[1], properties=extra, batch=batch, **common
    )
    if recorded.is_duplicate:
        outcome.duplicates += 1
        return
    outcome.recorded += 1
    if suppress:
        _suppress(workspace, message, event, suppress, args[1])
    if withdraw:
        _withdraw_email_consent(message, source=withdraw, now=now)


def _suppress(workspace, message, event, reason, detail) -> None:
    from messaging.policy.suppressions import suppression_add

    address = message.address or _text(event, "email", 320)
    # An address the list cannot hold is skipped; the message's status says what happened.
    with contextlib.suppress(InvalidInput):
        suppression_add(
            workspace=workspace,
            channel=Channel.EMAIL,
            address=address,
            reason=reason,
            source="sendgrid",
            detail=detail,
            message_id=message.id,
        )


def _withdraw_email_consent(message: Message, *, source: str, now: datetime) -> None:
    customer = Customer.objects.filter(id=message.customer_id).first()
    if customer is not None:
        consent_update(
            customer=customer,
            changes={ConsentPurpose.EMAIL_MARKETING: ConsentStatus.DENIED},
            source=source,
            now=now,
        )
