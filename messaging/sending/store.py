"""The sender's writes to `messaging_message`, each one set-based statement that commits on its
own (autocommit): no transaction is ever open during a provider call.

A claim's `sending_at` is its token: the hand-over marker and the outcome are written only
where the row still carries it, so a message that recovery took back from a worker it believed
dead is never handed over, nor overwritten, by that worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from logging import DEBUG

from django.db import connection, transaction

from masivo.tenancy.context import all_workspaces
from messaging.sending.outcomes import Failed, Outcome, Postponed, RetryLater, Sent, Unknown
from messaging.sending.retry import retry_due_at

CLAIM_REASON = "messaging: the sender claims due messages of every workspace"

_CLAIM_SQL = """
WITH due AS (
    SELECT id FROM messaging_message
     WHERE status IN ('queued', 'deferred') AND due_at <= %(now)s {workspace_filter}
     ORDER BY due_at
     LIMIT %(limit)s
     FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE messaging_message m
       SET status = 'sending', sending_at = %(now)s, handover_at = NULL,
           attempts = m.attempts + 1, updated_at = %(now)s
      FROM due
     WHERE m.id = due.id
    RETURNING m.id, m.workspace_id, m.channel, m.attempts
), history AS (
    INSERT INTO messaging_messagestatuschange
           (workspace_id, message_id, status, detail, provider_event_id, at)
    SELECT workspace_id, id, 'sending', 'claimed by the sender (attempt ' || attempts || ')',
           '', %(now)s
      FROM claimed
)
SELECT id, workspace_id, channel, attempts FROM claimed ORDER BY id
"""

_HANDOVER_SQL = """
UPDATE messaging_message m
   SET handover_at = %(now)s, provider = %(provider)s, payload = v.payload, updated_at = %(now)s
  FROM unnest(%(ids)s::bigint[], %(payloads)s::jsonb[]) AS v(id, payload)
 WHERE m.id = v.id AND m.status = 'sending' AND m.sending_at = %(claimed_at)s
RETURNING m.id
"""

# `unknown` too: recovery may have given up on a slow worker that then learns the outcome.
_OUTCOME_SQL = """
WITH v AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(statuses)s::text[], %(provider_ids)s::text[],
                         %(error_codes)s::text[], %(errors)s::text[], %(due_ats)s::timestamptz[],
                         %(uncounted)s::int[], %(details)s::text[])
           AS v(id, status, provider_message_id, error_code, error, due_at, uncounted, detail)
), updated AS (
    UPDATE messaging_message m
       SET status = CASE WHEN m.status IN ('sending', 'unknown') THEN v.status ELSE m.status END,
           provider_message_id = COALESCE(NULLIF(v.provider_message_id, ''),
                                          m.provider_message_id),
           provider = CASE WHEN v.status = 'sent' AND m.provider = '' THEN %(provider)s
                           ELSE m.provider END,
           error_code = v.error_code, error = v.error,
           due_at = COALESCE(v.due_at, m.due_at),
           sent_at = CASE WHEN v.status = 'sent' THEN %(now)s ELSE m.sent_at END,
           handover_at = CASE WHEN v.status = 'queued' THEN NULL ELSE m.handover_at END,
           attempts = m.attempts - v.uncounted,
           updated_at = %(now)s
      FROM v
     WHERE m.id = v.id AND m.sending_at = %(claimed_at)s
       AND (m.status IN ('sending', 'unknown')
            -- A delivery webhook can arrive before the sender hears back: the status it set
            -- stays, the provider's id and the time sent are filled in.
            OR (v.status = 'sent' AND m.status IN ('delivered', 'opened', 'clicked', 'read')))
    RETURNING m.id, m.workspace_id, v.status, v.detail, m.status = v.status AS moved
), history AS (
    INSERT INTO messaging_messagestatuschange
           (workspace_id, message_id, status, detail, provider_event_id, at)
    SELECT workspace_id, id, status, detail, '', %(now)s FROM updated WHERE moved
)
SELECT id FROM updated
"""


@dataclass(frozen=True)
class Claimed:
    id: int
    workspace_id: int
    channel: str
    attempts: int


def messages_claim(*, now: datetime, limit: int, workspace_id: int | None = None) -> list[Claimed]:
    """Claim up to `limit` due messages (queued or deferred, `due_at <= now`), oldest due
    first, skipping rows another sender holds: each becomes `sending` (attempt + 1, history
    row) and the claim commits before this returns."""
    params = {"now": now, "limit": limit}
    workspace_filter = ""
    if workspace_id is not None:
        workspace_filter = "AND workspace_id = %(workspace)s"
        params["workspace"] = workspace_id
    with all_workspaces(reason=CLAIM_REASON), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL.format(workspace_filter=workspace_filter), params)
        return [Claimed(*row) for row in cursor.fetchall()]


def messages_mark_handover(
    *, payloads: dict[int, dict], provider: str, claimed_at: datetime, now: datetime
) -> set[int]:
    """Record, committed, that these messages are about to be handed over to `provider` (and
    what is handed over). Returns the ids still held by this claim: only those may be sent."""
    if not payloads:
        return set()
    ids = list(payloads)
    with all_workspaces(reason=CLAIM_REASON, log_level=DEBUG), connection.cursor() as cursor:
        cursor.execute(
            _HANDOVER_SQL,
            {
                "now": now,
                "provider": provider,
                "ids": ids,
                "payloads": [json.dumps(payloads[message_id]) for message_id in ids],
                "claimed_at": claimed_at,
            },
        )
        return {row[0] for row in cursor.fetchall()}


def _row(outcome: Outcome, *, attempts: int, now: datetime) -> tuple:
    """(status, provider id, error code, error, due_at, uncounted attempts, history detail)."""
    if isinstance(outcome, RetryLater):
        due = retry_due_at(outcome, attempts=attempts, now=now)
        if isinstance(due, Failed):
            outcome = due
        else:
            detail = f"retry at {due.isoformat(timespec='seconds')}: {outcome.reason}"
            return ("queued", "", outcome.code, outcome.reason, due, 0, detail)
    if isinstance(outcome, Postponed):
        due = now + timedelta(seconds=outcome.after_seconds)
        return ("queued", "", "", "", due, 1, outcome.reason)
    if isinstance(outcome, Sent):
        return ("sent", outcome.provider_message_id, "", "", None, 0, outcome.detail)
    if isinstance(outcome, Failed):
        return ("failed", "", outcome.code, outcome.reason, None, 0, outcome.reason)
    if isinstance(outcome, Unknown):
        return ("unknown", "", outcome.code, outcome.reason, None, 0, outcome.reason)
    raise TypeError(f"not an outcome: {outcome!r}")


def messages_record_outcomes(
    *,
    outcomes: dict[int, Outcome],
    attempts: dict[int, int],
    provider: str,
    claimed_at: datetime,
    now: datetime,
) -> set[int]:
    """Write every outcome of one hand-over in one statement (with its history rows): sent,
    retry later (back to `queued` with its `due_at`, or failed when attempts are used up),
    postponed (queued, the attempt not counted), failed, unknown. Returns the ids written."""
    if not outcomes:
        return set()
    rows = {
        message_id: _row(outcome, attempts=attempts[message_id], now=now)
        for message_id, outcome in outcomes.items()
    }
    ids = list(rows)
    columns = list(zip(*(rows[message_id] for message_id in ids), strict=True))
    with all_workspaces(reason=CLAIM_REASON, log_level=DEBUG), connection.cursor() as cursor:
        cursor.execute(
            _OUTCOME_SQL,
            {
                "ids": ids,
                "statuses": list(columns[0]),
                "provider_ids": [value[:255] for value in columns[1]],
                "error_codes": [value[:64] for value in columns[2]],
                "errors": [value[:500] for value in columns[3]],
                "due_ats": list(columns[4]),
                "uncounted": list(columns[5]),
                "details": [value[:500] for value in columns[6]],
                "provider": provider,
                "claimed_at": claimed_at,
                "now": now,
            },
        )
        return {row[0] for row in cursor.fetchall()}
