"""Event retention and the dedupe window, applied to one workspace at a time.

Whole months go when every workspace's retention has passed them (`event_months_expire`, once
for the platform, through the SQL function in profiles/partitions.py); what is left of a
workspace whose retention is shorter goes here, in bounded batches of one transaction each, so
a pass can stop and run again at any point. The same pass prunes the message ids older than the
dedupe window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import Workspace
from profiles.partitions import event_partitions_expire
from profiles.services.settings import profile_settings_get

BATCH_SIZE = 5000

# (id, occurred_at) is the primary key; the outer DELETE repeats the sub-select's conditions so
# that it, too, reads only the months before the cut-off (and the default partition).
_DELETE_EXPIRED_EVENTS = """
DELETE FROM profiles_event
 WHERE workspace_id = %(workspace)s AND occurred_at < %(cutoff)s
   AND (id, occurred_at) IN (
       SELECT id, occurred_at FROM profiles_event
        WHERE workspace_id = %(workspace)s AND occurred_at < %(cutoff)s
        LIMIT %(limit)s)
"""
_DELETE_EXPIRED_MESSAGE_IDS = """
DELETE FROM profiles_eventmessageid
 WHERE id IN (SELECT id FROM profiles_eventmessageid
               WHERE workspace_id = %(workspace)s AND seen_at < %(cutoff)s
               LIMIT %(limit)s)
"""


@dataclass(frozen=True)
class RetentionPass:
    events_deleted: int
    message_ids_deleted: int


def event_retention_days(*, workspace: Workspace) -> int | None:
    """The workspace's event retention in days after the platform cap; None keeps everything."""
    days = profile_settings_get(workspace=workspace).event_retention_days
    cap = settings.MASIVO_EVENT_RETENTION_MAX_DAYS
    if days is None or cap is None:
        return days if cap is None else cap
    return min(days, cap)


def events_longest_retention_days() -> int | None:
    """The longest event retention of any workspace (each read in its own scope); None when
    some workspace keeps everything. With no workspace, the platform cap."""
    longest = None
    for workspace in Workspace.objects.order_by("id"):
        with workspace_scope(workspace.id):
            days = event_retention_days(workspace=workspace)
        if days is None:
            return None
        longest = days if longest is None else max(longest, days)
    return settings.MASIVO_EVENT_RETENTION_MAX_DAYS if longest is None else longest


def event_months_expire() -> list[str]:
    """Drop (or detach) the months that every workspace's retention has passed."""
    keep_days = events_longest_retention_days()
    return [] if keep_days is None else event_partitions_expire(keep_days=keep_days)


def _delete_in_batches(sql: str, params: dict, batch_size: int) -> int:
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params | {"limit": batch_size})
            count = cursor.rowcount
        deleted += count
        if count < batch_size:
            return deleted


def workspace_retention_apply(
    *, workspace: Workspace, now: datetime, batch_size: int = BATCH_SIZE
) -> RetentionPass:
    """Delete the workspace's events older than its retention (by `occurred_at`, in whatever
    partition, the default one included) and its message ids older than the dedupe window.
    Call in the workspace's scope, outside a transaction (each batch commits)."""
    days = event_retention_days(workspace=workspace)
    events = 0
    if days is not None:
        params = {"workspace": workspace.id, "cutoff": now - timedelta(days=days)}
        events = _delete_in_batches(_DELETE_EXPIRED_EVENTS, params, batch_size)
    window = timedelta(days=settings.MASIVO_EVENT_DEDUPE_WINDOW_DAYS)
    params = {"workspace": workspace.id, "cutoff": now - window}
    message_ids = _delete_in_batches(_DELETE_EXPIRED_MESSAGE_IDS, params, batch_size)
    return RetentionPass(events_deleted=events, message_ids_deleted=message_ids)
