"""Recovery of messages a worker left `sending` (killed, or silent past the stall timeout).

The hand-over marker tells the two cases apart:
- `handover_at` empty: the worker stopped before calling the provider. Back to `queued`, due
  now; claimed again like any other message (its attempt stays counted, so a message that
  kills its worker every time ends `failed` at the maximum).
- `handover_at` set: the provider may have it. Never sent again. Twilio can be asked (the
  messages it holds for that number since the hand-over): found, `sent` with its sid; not
  found, back to `queued`. SendGrid and FCM cannot be asked: `unknown`, with the reason. Each
  `unknown` is logged and counted in the Redis counter `messaging_send_unknown_total`
  (`sending_unknown_total()`); the messages themselves are `status = 'unknown'`.
- in-app: the row is the hand-over, so a marked one is `sent`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import connection as db
from django.utils import timezone
from redis.exceptions import RedisError
from twilio.base.exceptions import TwilioRestException

from masivo.tenancy.context import all_workspaces, workspace_scope
from masivo.tenancy.redis import get_redis
from messaging.models import ChannelConnection, Message
from messaging.sending.config import setting
from messaging.sending.outcomes import Outcome, Postponed, Sent, Unknown
from messaging.sending.senders.twilio import twilio_lookup
from messaging.sending.store import messages_record_outcomes

logger = logging.getLogger(__name__)

RECOVERY_REASON = "messaging: recovery of messages left sending by a stopped worker"
UNKNOWN_METRIC = "messaging_send_unknown_total"

_REQUEUE_SQL = """
WITH requeued AS (
    UPDATE messaging_message
       SET status = 'queued', due_at = %(now)s, sending_at = NULL, updated_at = %(now)s
     WHERE status = 'sending' AND sending_at < %(stalled_before)s AND handover_at IS NULL
    RETURNING id, workspace_id
)
INSERT INTO messaging_messagestatuschange
       (workspace_id, message_id, status, detail, provider_event_id, at)
SELECT workspace_id, id, 'queued', 'the worker stopped before handing it over: queued again',
       '', %(now)s
  FROM requeued
RETURNING message_id
"""


@dataclass
class RecoveryReport:
    requeued: int = 0
    resolved_sent: int = 0
    unknown: int = 0
    by_provider: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _unknown(provider: str) -> Unknown:
    label = {"sendgrid": "SendGrid", "fcm": "FCM"}.get(provider, provider)
    return Unknown(
        "handover_interrupted",
        f"the worker stopped during the hand-over to {label}, which cannot be asked whether "
        "it took the message; not sent again",
    )


def _resolve_twilio(messages: list, now: datetime) -> dict[int, Outcome]:
    connection = ChannelConnection.objects.filter(provider="twilio").first()
    if connection is None:
        return {message.id: _unknown("twilio") for message in messages}
    known = set(
        Message.objects.filter(provider="twilio")
        .exclude(provider_message_id="")
        .filter(handover_at__gte=min(m.handover_at for m in messages) - timedelta(minutes=5))
        .values_list("provider_message_id", flat=True)
    )
    outcomes: dict[int, Outcome] = {}
    for message in messages:
        to = (message.payload or {}).get("to") or message.address
        try:
            sid = twilio_lookup(
                connection=connection, to=to, handed_over_at=message.handover_at, exclude=known
            )
        except (TwilioRestException, requests.RequestException) as error:
            outcomes[message.id] = Unknown(
                "handover_interrupted",
                f"the worker stopped during the hand-over to Twilio and looking it up failed "
                f"({error.__class__.__name__}); not sent again",
            )
            continue
        if sid:
            known.add(sid)
            outcomes[message.id] = Sent(sid, "found at Twilio after the worker stopped")
        else:
            outcomes[message.id] = Postponed(0, "not at Twilio: the hand-over never reached it")
    return outcomes


def sending_recover(
    *, now: datetime | None = None, stall_seconds: float | None = None
) -> RecoveryReport:
    """Resolve every message `sending` since before `now - stall` (all workspaces)."""
    now = now or timezone.now()
    stall = setting("MASIVO_SEND_STALL_SECONDS") if stall_seconds is None else stall_seconds
    stalled_before = now - timedelta(seconds=stall)
    report = RecoveryReport()
    with all_workspaces(reason=RECOVERY_REASON), db.cursor() as cursor:
        cursor.execute(_REQUEUE_SQL, {"now": now, "stalled_before": stalled_before})
        report.requeued = len(cursor.fetchall())
        handed = list(
            Message.objects.filter(
                status="sending", sending_at__lt=stalled_before, handover_at__isnull=False
            )
            .order_by("workspace_id", "id")
            .only(
                "id",
                "workspace_id",
                "provider",
                "address",
                "payload",
                "handover_at",
                "sending_at",
                "attempts",
            )
        )
    groups = defaultdict(list)
    for message in handed:
        groups[(message.workspace_id, message.provider, message.sending_at)].append(message)
    for (workspace_id, provider, claimed_at), messages in groups.items():
        with workspace_scope(workspace_id):
            if provider == "twilio":
                outcomes = _resolve_twilio(messages, now)
            elif provider == "in_app":
                outcomes = {m.id: Sent(detail="stored for the app to fetch") for m in messages}
            else:
                outcomes = {m.id: _unknown(provider) for m in messages}
            messages_record_outcomes(
                outcomes=outcomes,
                attempts={m.id: m.attempts for m in messages},
                provider=provider,
                claimed_at=claimed_at,
                now=now,
            )
        for message_id, outcome in outcomes.items():
            if isinstance(outcome, Unknown):
                report.unknown += 1
                report.by_provider[provider] += 1
                logger.warning(
                    "message %s: outcome unknown (%s)",
                    message_id,
                    outcome.reason,
                    extra={
                        "message_id": message_id,
                        "workspace_id": workspace_id,
                        "provider": provider,
                        "metric": UNKNOWN_METRIC,
                    },
                )
            elif isinstance(outcome, Sent):
                report.resolved_sent += 1
            else:
                report.requeued += 1
    if report.unknown:
        unknown_count(report.unknown)
    return report


def _metric_key() -> str:
    return f"{settings.MASIVO_REDIS_PREFIX}metrics:{UNKNOWN_METRIC}"


def unknown_count(count: int) -> None:
    """Add to the `messaging_send_unknown_total` counter (recovery and the pipeline)."""
    try:
        get_redis().incrby(_metric_key(), count)
    except RedisError as error:
        logger.warning("%s not counted in Redis (%s): %s", UNKNOWN_METRIC, count, error)


def sending_unknown_total() -> int:
    """The counter of messages recovery could only call `unknown`, since Redis was empty."""
    return int(get_redis().get(_metric_key()) or 0)
