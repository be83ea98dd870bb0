"""Twilio's webhooks: message status callbacks and inbound messages (WhatsApp and SMS).

Both are form-encoded POSTs signed with `X-Twilio-Signature`: HMAC-SHA1 with the account's
auth token over the URL Twilio called and the sorted form parameters, checked by the SDK's own
`RequestValidator`. The URL is rebuilt from `MASIVO_PUBLIC_URL` (behind a TLS-terminating
proxy the request's own URL is not the signed one).

Status callbacks name the message by the `message` query parameter of the callback URL (the
sender passes `links.twilio_status_callback_url(connection, message.id)`), else by Twilio's
`MessageSid`. Inbound messages whose body is an opt-out keyword withdraw the sender's consent
(`whatsapp_marketing` from `whatsapp:+E164`, `sms_marketing` from a plain number); an opt-in
keyword grants it again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from twilio.request_validator import RequestValidator

from masivo.tenancy.errors import InvalidInput, ServiceError
from masivo.tenancy.models import Workspace
from messaging.feedback.engagement import record_engagement
from messaging.models import Channel, ChannelConnection, Message, MessageStatus, Suppression
from profiles.consent import consent_update
from profiles.models import ConsentPurpose, ConsentStatus, Customer

SIGNATURE_HEADER = "X-Twilio-Signature"
# Twilio's standard keywords (single-word bodies, any case).
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})

STATUSES = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "failed": MessageStatus.FAILED,
    "undelivered": MessageStatus.FAILED,
}
# Statuses before the hand-over is complete: nothing to record (the sender already has them).
EARLY_STATUSES = frozenset({"accepted", "scheduled", "queued", "sending"})
# Errors that say the address itself cannot be reached: suppress it on that channel.
# 21211 invalid 'To' number, 21614 not a mobile number, 63003 not a WhatsApp user.
UNREACHABLE_ERRORS = frozenset({"21211", "21614", "63003"})


class Refused(ServiceError):
    status = 403
    code = "permission_denied"


def verify(connection: ChannelConnection, *, url: str, params, signature: str) -> None:
    """Refused unless `signature` is Twilio's for `url` and `params` with the auth token."""
    if not signature:
        raise Refused(f"unsigned: the {SIGNATURE_HEADER} header is required")
    token = (connection.credentials or {}).get("auth_token", "")
    if not token or not RequestValidator(token).validate(url, params, signature):
        raise Refused(
            "invalid signature: check the auth token of the Twilio connection, and that "
            "MASIVO_PUBLIC_URL is the address Twilio calls"
        )


@dataclass
class StatusOutcome:
    result: str  # recorded, duplicate, ignored
    reason: str = ""

    def as_dict(self) -> dict:
        return {"result": self.result} | ({"reason": self.reason} if self.reason else {})


def _find_message(message_param: str, message_sid: str) -> Message | None:
    messages = Message.objects.filter(channel__in=[Channel.WHATSAPP, Channel.SMS]).select_related(
        "template_version"
    )
    if message_param.isdigit() and len(message_param) < 19:
        found = messages.filter(id=int(message_param)).first()
        if found is not None:
            return found
    if message_sid:
        return messages.filter(provider="twilio", provider_message_id=message_sid).first()
    return None


def process_status(*, workspace: Workspace, message_param: str, form, now: datetime):
    twilio_status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    message_sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not twilio_status:
        raise InvalidInput("required", field="MessageStatus")
    if twilio_status in EARLY_STATUSES:
        return StatusOutcome("ignored", f"{twilio_status}: nothing to record")
    status = STATUSES.get(twilio_status)
    if status is None:
        return StatusOutcome("ignored", f"unknown status {twilio_status}")
    message = _find_message(message_param, message_sid)
    if message is None:
        return StatusOutcome("ignored", "unknown message")
    error_code = (form.get("ErrorCode") or "").strip()[:20]
    detail = f"Twilio: {twilio_status}" + (f" (error {error_code})" if error_code else "")
    properties = {"provider_status": twilio_status}
    if error_code:
        properties["error_code"] = error_code
    with transaction.atomic():
        recorded = record_engagement(
            message,
            status,
            detail=detail,
            provider_event_id=f"twilio:{message_sid or message.id}:{twilio_status}",
            properties=properties,
            now=now,
        )
        if recorded.is_duplicate:
            return StatusOutcome("duplicate")
        if status == MessageStatus.FAILED and error_code in UNREACHABLE_ERRORS and message.address:
            from messaging.policy.suppressions import suppression_add

            with contextlib.suppress(InvalidInput):
                suppression_add(
                    workspace=workspace,
                    channel=message.channel,
                    address=message.address,
                    reason=Suppression.Reason.INVALID_ADDRESS,
                    source="twilio",
                    detail=detail,
                    message_id=message.id,
                )
    return StatusOutcome("recorded")


def keyword(body: str) -> str:
    return (body or "").strip().upper()


def sender_of(from_value: str) -> tuple[str, str]:
    """(channel, E.164 phone) of an inbound `From`: `whatsapp:+E164` or a plain number."""
    value = (from_value or "").strip()
    if value.lower().startswith("whatsapp:"):
        return Channel.WHATSAPP, value.split(":", 1)[1].strip()
    return Channel.SMS, value


PURPOSE_OF_CHANNEL = {
    Channel.WHATSAPP: ConsentPurpose.WHATSAPP_MARKETING,
    Channel.SMS: ConsentPurpose.SMS_MARKETING,
}


@dataclass
class InboundOutcome:
    action: str  # opt_out, opt_in, none
    customers: int = 0


def process_inbound(*, workspace: Workspace, form, now: datetime) -> InboundOutcome:
    """An opt-out (or opt-in) keyword from a phone changes the consent of every customer
    with that phone, or who was last messaged at it on that channel."""
    word = keyword(form.get("Body", ""))
    payload = keyword(form.get("ButtonPayload", ""))
    if word in OPT_OUT_KEYWORDS or payload in OPT_OUT_KEYWORDS:
        status, action, said = ConsentStatus.DENIED, "opt_out", word or payload
    elif word in OPT_IN_KEYWORDS or payload in OPT_IN_KEYWORDS:
        status, action, said = ConsentStatus.GRANTED, "opt_in", word or payload
    else:
        return InboundOutcome("none")
    channel, phone = sender_of(form.get("From", ""))
    if not phone.startswith("+"):
        return InboundOutcome("none")
    purpose = PURPOSE_OF_CHANNEL[channel]
    ids = set(Customer.objects.filter(phone=phone).values_list("id", flat=True))
    ids |= set(
        Message.objects.filter(channel=channel, address=phone).values_list("customer_id", flat=True)
    )
    with transaction.atomic():
        for customer in Customer.objects.filter(id__in=ids).order_by("id"):
            consent_update(
                customer=customer,
                changes={purpose: status},
                source=f"twilio:inbound {said}",
                now=now,
            )
    return InboundOutcome(action, len(ids))
