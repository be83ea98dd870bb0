"""The send pipeline: claim due messages, render them, hand them over per provider, record
what happened. Postgres first, and no transaction open during a provider call:

1. claim a batch (`FOR UPDATE SKIP LOCKED`, committed: the rows are `sending`);
2. per (workspace, provider): take send-rate tokens (the rest go back to `queued`, due
   shortly), load the connection (none: `failed no_connection`), render each message (a
   template that cannot render fails that message, never the batch);
3. per hand-over chunk: mark the chunk handed over (committed), call the provider, record
   every outcome in one statement;
4. a message the worker never finished is left `sending`, which recovery
   (messaging.sending.recovery) resolves by its hand-over marker.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import Workspace
from messaging.models import ChannelConnection, Message
from messaging.sending.config import int_setting
from messaging.sending.outcomes import Failed, Outcome, Postponed, Unknown
from messaging.sending.ratelimit import seconds_for, send_tokens_take
from messaging.sending.recovery import UNKNOWN_METRIC, unknown_count
from messaging.sending.senders import PROVIDER_LABELS, PROVIDER_OF_CHANNEL, SENDERS, Prepared
from messaging.sending.store import (
    Claimed,
    messages_claim,
    messages_mark_handover,
    messages_record_outcomes,
)
from messaging.templating import TemplateRenderError, render_version
from messaging.unsubscribe import message_links

logger = logging.getLogger(__name__)


@dataclass
class SendReport:
    claimed: int = 0
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, outcomes: dict[int, Outcome]) -> None:
        for outcome in outcomes.values():
            self.statuses[type(outcome).__name__] += 1


def _render(message, workspace) -> object | Failed:
    if message.template_version is None:
        return Failed("render_error", "the message has no template version")
    try:
        return render_version(
            message.template_version,
            customer=message.customer,
            workspace=workspace,
            event=(message.render_input or {}).get("event"),
            links=message_links(message),
        )
    except TemplateRenderError as error:
        return Failed("render_error", error.reason)


def _record(outcomes, *, claimed: dict[int, Claimed], provider, claimed_at, report) -> None:
    if not outcomes:
        return
    messages_record_outcomes(
        outcomes=outcomes,
        attempts={message_id: claimed[message_id].attempts for message_id in outcomes},
        provider=provider,
        claimed_at=claimed_at,
        now=timezone.now(),
    )
    report.add(outcomes)
    unknown = [message_id for message_id, o in outcomes.items() if isinstance(o, Unknown)]
    if unknown:
        logger.warning(
            "%s messages to %s: outcome unknown (%s)",
            len(unknown),
            provider,
            outcomes[unknown[0]].reason,
            extra={"message_ids": unknown, "provider": provider, "metric": UNKNOWN_METRIC},
        )
        unknown_count(len(unknown))


def _send_group(
    *, workspace_id: int, provider: str, rows: list[Claimed], claimed_at: datetime, report
) -> None:
    claimed = {row.id: row for row in rows}
    granted = send_tokens_take(workspace_id=workspace_id, provider=provider, wanted=len(rows))
    over = rows[granted:]
    rows = rows[:granted]
    if over:
        _record(
            {
                row.id: Postponed(
                    seconds_for(position + 1, provider),
                    f"over the {PROVIDER_LABELS[provider]} send rate: back in the queue",
                )
                for position, row in enumerate(over)
            },
            claimed=claimed,
            provider=provider,
            claimed_at=claimed_at,
            report=report,
        )
    if not rows:
        return
    workspace = Workspace.objects.get(id=workspace_id)
    sender_class = SENDERS[provider]
    connection = None
    if sender_class.needs_connection:
        connection = ChannelConnection.objects.filter(provider=provider).first()
        if connection is None:
            reason = f"the workspace has no {PROVIDER_LABELS[provider]} connection"
            _record(
                {row.id: Failed("no_connection", reason) for row in rows},
                claimed=claimed,
                provider=provider,
                claimed_at=claimed_at,
                report=report,
            )
            return
    messages = list(
        Message.objects.filter(id__in=[row.id for row in rows], status="sending")
        .select_related("customer", "template_version__template")
        .order_by("id")
    )
    sender = sender_class(connection=connection, workspace=workspace, now=timezone.now())
    try:
        sender.load(messages)
        failed: dict[int, Outcome] = {}
        ready: list[Prepared] = []
        for message in messages:
            rendered = _render(message, workspace)
            prepared = (
                rendered if isinstance(rendered, Failed) else sender.prepare(message, rendered)
            )
            if isinstance(prepared, Failed):
                failed[message.id] = prepared
            else:
                ready.append(prepared)
        _record(failed, claimed=claimed, provider=provider, claimed_at=claimed_at, report=report)
        chunk_size = int_setting("MASIVO_SEND_HANDOVER_CHUNK")
        for start in range(0, len(ready), chunk_size):
            chunk = ready[start : start + chunk_size]
            held = messages_mark_handover(
                payloads={item.message.id: item.payload for item in chunk},
                provider=provider,
                claimed_at=claimed_at,
                now=timezone.now(),
            )
            chunk = [item for item in chunk if item.message.id in held]
            if not chunk:
                continue
            outcomes = sender.send(chunk)
            _record(
                outcomes, claimed=claimed, provider=provider, claimed_at=claimed_at, report=report
            )
            sender.after_send()
    finally:
        sender.close()


def send_due(
    *, now: datetime | None = None, workspace_id: int | None = None, limit: int | None = None
) -> SendReport:
    """Claim one batch of due messages (of one workspace, or all) and send it. Returns what
    happened; `claimed == 0` means nothing was due."""
    claimed_at = now or timezone.now()
    rows = messages_claim(
        now=claimed_at,
        limit=limit or int_setting("MASIVO_SEND_BATCH_SIZE"),
        workspace_id=workspace_id,
    )
    report = SendReport(claimed=len(rows))
    groups: dict[tuple[int, str], list[Claimed]] = defaultdict(list)
    for row in rows:
        groups[(row.workspace_id, PROVIDER_OF_CHANNEL[row.channel])].append(row)
    for (group_workspace, provider), group_rows in sorted(groups.items()):
        with workspace_scope(group_workspace):
            _send_group(
                workspace_id=group_workspace,
                provider=provider,
                rows=group_rows,
                claimed_at=claimed_at,
                report=report,
            )
    return report


def send_until_idle(
    *, workspace_id: int | None = None, max_seconds: float | None = None
) -> SendReport:
    """Send batch after batch until nothing is due (or `max_seconds` passed)."""
    total = SendReport()
    started = time.monotonic()
    while True:
        report = send_due(workspace_id=workspace_id)
        total.claimed += report.claimed
        for name, count in report.statuses.items():
            total.statuses[name] += count
        if report.claimed == 0:
            return total
        if max_seconds is not None and time.monotonic() - started >= max_seconds:
            return total
