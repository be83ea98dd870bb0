"""The contact policy's words: decision codes, the texts recorded on messages, and the
address and channel rules both forms (Python and SQL) share."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from messaging.models import Channel, MessageKind, MessageStatus, Suppression

OK = "ok"
NO_ADDRESS = "no_address"
SUPPRESSED = "suppressed"
NO_CONSENT = "no_consent"
FREQUENCY_CAP = "frequency_cap"
QUIET_HOURS_DEFERRED = "quiet_hours_deferred"
QUIET_HOURS_SKIPPED = "quiet_hours_skipped"
DECISION_CODES = (
    OK,
    NO_ADDRESS,
    SUPPRESSED,
    NO_CONSENT,
    FREQUENCY_CAP,
    QUIET_HOURS_DEFERRED,
    QUIET_HOURS_SKIPPED,
)

MARKETING = MessageKind.MARKETING.value
TRANSACTIONAL = MessageKind.TRANSACTIONAL.value
CHANNELS = tuple(Channel.values)

# The consent purpose each channel needs for marketing (in-app needs none: the app is open).
CHANNEL_PURPOSE = {
    Channel.EMAIL: "email_marketing",
    Channel.PUSH: "push_notifications",
    Channel.WHATSAPP: "whatsapp_marketing",
    Channel.SMS: "sms_marketing",
    Channel.IN_APP: None,
}
# Channels whose messages go to an address the suppression list can hold.
ADDRESSED_CHANNELS = (Channel.EMAIL, Channel.WHATSAPP, Channel.SMS)

# Both forms test addresses with these very patterns (Python `re` and Postgres ARE agree on
# them): stored emails are already validated and lower-cased, phones already E.164.
EMAIL_PATTERN = r"^[^@ \t\r\n]+@[^@ \t\r\n]+\.[^@ \t\r\n]+$"
EMAIL_MAX_LENGTH = 254
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"

SUPPRESSION_REASONS = Suppression.Reason.choices  # for the OpenAPI enum's name (settings)
# Reasons that block every kind of message; the others block marketing only.
BLOCKS_EVERY_KIND = (Suppression.Reason.HARD_BOUNCE.value, Suppression.Reason.INVALID_ADDRESS.value)
SUPPRESSION_TEXTS = {
    Suppression.Reason.HARD_BOUNCE: "suppressed: hard bounce",
    Suppression.Reason.INVALID_ADDRESS: "suppressed: invalid address",
    Suppression.Reason.SPAM_REPORT: "suppressed: spam report",
    Suppression.Reason.UNSUBSCRIBE: "suppressed: unsubscribed",
    Suppression.Reason.MANUAL: "suppressed: on the suppression list",
}
NO_ADDRESS_TEXTS = {
    Channel.EMAIL: "suppressed: no email address",
    Channel.PUSH: "suppressed: no active push device",
    Channel.WHATSAPP: "suppressed: no phone number",
    Channel.SMS: "suppressed: no phone number",
}
OK_TEXT = "queued"
NO_CONSENT_TEXT = "suppressed: no consent"

# Messages a frequency cap counts (by `sent_at`): handed over to the provider.
SENT_STATUSES = (
    MessageStatus.SENT.value,
    MessageStatus.DELIVERED.value,
    MessageStatus.OPENED.value,
    MessageStatus.CLICKED.value,
    MessageStatus.READ.value,
)

STATUS_FOR_CODE = {
    OK: MessageStatus.QUEUED.value,
    QUIET_HOURS_DEFERRED: MessageStatus.DEFERRED.value,
    NO_ADDRESS: MessageStatus.SUPPRESSED.value,
    SUPPRESSED: MessageStatus.SUPPRESSED.value,
    NO_CONSENT: MessageStatus.SUPPRESSED.value,
    FREQUENCY_CAP: MessageStatus.SUPPRESSED.value,
    QUIET_HOURS_SKIPPED: MessageStatus.SUPPRESSED.value,
}


def cap_text(cap: dict) -> str:
    scope = "all channels" if cap["channel"] == "*" else cap["channel"]
    return f"suppressed: frequency cap {cap['limit']} per {cap['window_hours']} h ({scope})"


def clock(value: datetime.time) -> str:
    return value.strftime("%H:%M")


def quiet_deferred_text(end: datetime.time, zone: str) -> str:
    return f"deferred: quiet hours until {clock(end)} {zone}"


def quiet_skipped_text(start: datetime.time, end: datetime.time, zone: str) -> str:
    return f"suppressed: quiet hours {clock(start)}-{clock(end)} {zone}"


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one customer: `code` (one of DECISION_CODES), `text` as recorded
    on the message, the `address` to send to (email, E.164 phone; empty for push and in-app,
    whose devices and app are resolved at hand-over), and `due_at` (now, or the end of quiet
    hours when deferred)."""

    code: str
    text: str
    address: str
    due_at: datetime.datetime

    @property
    def status(self) -> str:
        return STATUS_FOR_CODE[self.code]

    @property
    def is_sendable(self) -> bool:
        return self.code in (OK, QUIET_HOURS_DEFERRED)
