"""The ingestion follow-up's profile part: claim unprocessed events (resolving who they are
about, refreshing their customers' metrics) and unprocessed profile changes, and say what
changed for whom."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from masivo.tenancy.models import Workspace
from profiles.changes import event_key
from profiles.eventlog import events_delete, events_mark_processed, processed_events_record
from profiles.metrics import customers_refresh_metrics
from profiles.models import ProfileChange
from profiles.resolution import Resolution
from profiles.tracked import TrackedMessage

# Claimed with row locks only: each event is written once, by _DONE_SQL, with its customer and
# processed_at together (an UPDATE for each would rewrite every row and its index entries twice).
_CLAIM_SQL = """
SELECT e.id, e.occurred_at, e.customer_id, e.name, e.type, e.user_id, e.anonymous_id,
       CASE WHEN e.customer_id IS NULL AND e.type IN ('identify', 'alias')
            THEN e.properties END,
       CASE WHEN e.customer_id IS NULL AND e.type = 'identify'
            THEN e.context ->> 'locale' END
  FROM profiles_event e
 WHERE e.workspace_id = %(workspace)s AND e.processed_at IS NULL
 ORDER BY e.received_at, e.id
 LIMIT %(limit)s
 FOR UPDATE SKIP LOCKED
"""


class _Claimed:
    """One claimed event, as the claim returns it."""

    __slots__ = (
        "anonymous_id",
        "customer_id",
        "document",
        "id",
        "locale",
        "name",
        "occurred_at",
        "type",
        "user_id",
    )  # fmt: skip

    def __init__(self, row):
        (self.id, self.occurred_at, self.customer_id, self.name, self.type, self.user_id,
         self.anonymous_id, self.document, self.locale) = row  # fmt: skip

    def as_message(self) -> TrackedMessage:
        document = self.document
        if isinstance(document, str):
            document = json.loads(document)
        return TrackedMessage(
            index=self.id,
            type=self.type,
            name=self.name,
            message_id="",
            occurred_at=self.occurred_at,
            user_id=self.user_id,
            anonymous_id=self.anonymous_id,
            previous_id=(document or {}).get("previousId", "") if self.type == "alias" else "",
            traits=(document or {}) if self.type == "identify" else {},
            context={"locale": self.locale} if self.locale else {},
        )


def _up_to_each_alias(events: list[_Claimed]):
    """The events in runs that each end at an alias: a resolution merges aliased profiles
    before it applies traits, so what came before an alias must be applied before it."""
    segment = []
    for event in events:
        segment.append(event)
        if event.type == "alias":
            yield segment
            segment = []
    if segment:
        yield segment


def _resolve(workspace: Workspace, claimed: list[_Claimed], now: datetime) -> list[_Claimed]:
    """Decide who the claimed unresolved events are about (the tracking API stores them as
    received), in the order they were stored. Returns the events naming an erased id."""
    pending = [e for e in claimed if e.customer_id is None and (e.user_id or e.anonymous_id)]
    by_id = {e.id: e for e in pending}
    erased = []
    for segment in _up_to_each_alias(pending):
        resolution = Resolution(
            workspace,
            [e.as_message() for e in segment],
            source="tracking",
            now=now,
        )
        resolution.run()
        erased += [by_id[r.index] for r in resolution.result.rejected]
        for message in resolution.messages:
            by_id[message.index].customer_id = resolution.customer_of(message)
    return erased


def _write(workspace: Workspace, claimed: list[_Claimed], erased: list[_Claimed], now) -> None:
    """Each claimed event processed, with its customer, in one statement; erased ones gone."""
    gone = {e.id for e in erased}
    events_mark_processed(
        workspace_id=workspace.id,
        events=[(e.id, e.occurred_at, e.customer_id) for e in claimed if e.id not in gone],
        now=now,
    )
    events_delete(workspace_id=workspace.id, events=[(e.id, e.occurred_at) for e in erased])
    processed_events_record(
        workspace_id=workspace.id,
        events=[(e.id, e.occurred_at, e.customer_id, e.name, e.type)
                for e in claimed if e.id not in gone],
        now=now,
    )  # fmt: skip
    for event in erased:
        event.customer_id = None


def events_process_batch(*, workspace: Workspace, limit: int = 5000, now: datetime | None = None):
    """Claim up to `limit` unprocessed events in the order they were stored, resolve who the
    unresolved ones are about (creating customers, linking ids, applying identify traits and
    aliases), and refresh their customers' metrics (which records the customers whose figures
    changed in the profile-change outbox).

    Call inside a transaction, one per workspace at a time (masivo.pipeline holds the lock): if
    anything fails, the claim rolls back with it and the sweep retries. Returns (events
    claimed, customer id → {"event:<name>", ...}).
    """
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"now": now, "workspace": workspace.id, "limit": limit})
        claimed = sorted((_Claimed(row) for row in cursor.fetchall()), key=lambda e: e.id)
    _write(workspace, claimed, _resolve(workspace, claimed, now), now)
    changes: dict[int, set[str]] = defaultdict(set)
    for event in claimed:
        if event.customer_id is not None:
            changes[event.customer_id].add(event_key(event.name))
    customers_refresh_metrics(workspace=workspace, customer_ids=sorted(changes), now=now)
    return len(claimed), dict(changes)


_CLAIM_CHANGES_SQL = """
UPDATE profiles_profilechange SET processed_at = %(now)s
 WHERE id IN (SELECT id FROM profiles_profilechange
               WHERE workspace_id = %(workspace)s AND processed_at IS NULL
               ORDER BY changed_at
               LIMIT %(limit)s
               FOR UPDATE SKIP LOCKED)
RETURNING customer_id, kind, keys
"""
_GONE = (ProfileChange.Kind.DELETED, ProfileChange.Kind.ERASED, ProfileChange.Kind.MERGED_AWAY)


def profile_changes_claim(
    *, workspace: Workspace, limit: int = 5000, now: datetime | None = None
) -> tuple[int, dict[int, set[str]]]:
    """Claim up to `limit` unprocessed profile changes (call inside a transaction, like the
    events). Returns (rows claimed, customer id → changed keys); customers who are gone are
    left out: their removal already ended their memberships."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_CHANGES_SQL, {"now": now, "workspace": workspace.id, "limit": limit})
        rows = cursor.fetchall()
    changes: dict[int, set[str]] = defaultdict(set)
    for customer_id, kind, keys in rows:
        if kind not in _GONE:
            changes[customer_id].update(json.loads(keys) if isinstance(keys, str) else keys)
    return len(rows), dict(changes)


def workspaces_with_stale_events(
    *, older_than: timedelta, now: datetime | None = None
) -> list[int]:
    """Workspaces holding events whose follow-up is overdue (call in all_workspaces scope)."""
    cutoff = (now or timezone.now()) - older_than
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT workspace_id FROM profiles_event "
            "WHERE processed_at IS NULL AND received_at < %(cutoff)s "
            "UNION SELECT DISTINCT workspace_id FROM profiles_profilechange "
            "WHERE processed_at IS NULL AND changed_at < %(cutoff)s "
            "ORDER BY 1",
            {"cutoff": cutoff},
        )
        return [row[0] for row in cursor.fetchall()]
