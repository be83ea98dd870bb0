"""Top-level orchestration: ingestion → profiles → real-time audiences (→ journeys → destinations).

Reactions between apps flow through explicit calls made here, never through Django signals.
Ingestion, and every writer of the profile-change outbox, wakes `process_events` by name after
commit; the NULL `processed_at` of events and of profile changes is the outbox, so
`sweep_unprocessed_events` re-queues work whose wake-up was lost (Redis down, a worker killed
mid-task). Every task here is idempotent.
"""

import logging
from datetime import timedelta

from celery import shared_task
from django.db import connection, transaction

from audiences.realtime import realtime_memberships_update
from masivo.tenancy.context import all_workspaces, current_workspace_id
from masivo.tenancy.models import Workspace
from masivo.tenancy.tasks import WorkspaceTask
from profiles.followup import (
    events_process_batch,
    profile_changes_claim,
    workspaces_with_stale_events,
)
from profiles.ingestion import follow_up_pending_clear
from profiles.metrics import customers_refresh_rolling_metrics

logger = logging.getLogger(__name__)

CLAIM_BATCH = 5000
SWEEP_AFTER = timedelta(minutes=1)


FOLLOW_UP_LOCK_NAMESPACE = 7303  # pg_try_advisory_xact_lock(namespace, workspace id)
BUSY_RETRY_SECONDS = 1
BATCHES_PER_TASK = 10  # then the task queues itself again behind other workspaces


def _follow_up_lock(workspace: Workspace) -> bool:
    """One follow-up per workspace at a time, so each user's messages apply in the order they
    were stored; other workspaces' follow-ups run beside it on other workers."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(%s, %s)", [FOLLOW_UP_LOCK_NAMESPACE, workspace.id]
        )
        return cursor.fetchone()[0]


class FollowUpBusy(Exception):
    """Another worker is running this workspace's follow-up."""


def process_events_now(*, workspace: Workspace, max_batches: int = 100) -> int:
    """Run the follow-up for a workspace until its outboxes (events, profile changes) are
    empty; returns events processed. Raises FollowUpBusy if another worker holds it."""
    processed = 0
    for _ in range(max_batches):
        with transaction.atomic():
            if not _follow_up_lock(workspace):
                raise FollowUpBusy(workspace.id)
            # Who the events are about and their metrics first (both record profile
            # changes): real-time rules read them. One transaction: a failure leaves
            # everything unprocessed for the sweep.
            claimed, changes = events_process_batch(workspace=workspace, limit=CLAIM_BATCH)
            claimed_changes, profile_changes = profile_changes_claim(
                workspace=workspace, limit=CLAIM_BATCH
            )
            for customer_id, keys in profile_changes.items():
                changes.setdefault(customer_id, set()).update(keys)
            realtime_memberships_update(workspace=workspace, changes=changes)
        processed += claimed
        if claimed < CLAIM_BATCH and claimed_changes < CLAIM_BATCH:
            break
    return processed


@shared_task(
    name="masivo.pipeline.process_events",
    base=WorkspaceTask,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def process_events(*, workspace_id: int) -> int:
    workspace = Workspace.objects.get(id=current_workspace_id())
    # Batches stored from now on wake a new run (this one may have claimed before them).
    follow_up_pending_clear(workspace_id=workspace.id)
    try:
        processed = process_events_now(workspace=workspace, max_batches=BATCHES_PER_TASK)
    except FollowUpBusy:
        # The running follow-up may finish before it sees what woke this one: look again
        # shortly instead of holding a worker on the lock.
        process_events.apply_async(
            kwargs={"workspace_id": workspace.id}, countdown=BUSY_RETRY_SECONDS
        )
        return 0
    if processed >= BATCHES_PER_TASK * CLAIM_BATCH:
        # A backlog: go to the back of the queue, so other workspaces' follow-ups get a turn.
        process_events.delay(workspace_id=workspace.id)
    return processed


@shared_task(name="masivo.pipeline.sweep_unprocessed_events")
def sweep_unprocessed_events() -> list[int]:
    with all_workspaces(reason="beat sweep: find every workspace with overdue follow-ups"):
        workspace_ids = workspaces_with_stale_events(older_than=SWEEP_AFTER)
    for workspace_id in workspace_ids:
        logger.info("re-queueing the follow-up of workspace %s", workspace_id)
        process_events.delay(workspace_id=workspace_id)
    return workspace_ids


@shared_task(name="masivo.pipeline.refresh_rolling_metrics")
def refresh_rolling_metrics() -> None:
    """Daily: 30-day and this-month figures decay without new events; recompute them."""
    with all_workspaces(reason="beat: list workspaces for the daily metrics refresh"):
        workspace_ids = list(Workspace.objects.values_list("id", flat=True))
    for workspace_id in workspace_ids:
        refresh_workspace_rolling_metrics.delay(workspace_id=workspace_id)


@shared_task(name="masivo.pipeline.refresh_workspace_rolling_metrics", base=WorkspaceTask)
def refresh_workspace_rolling_metrics(*, workspace_id: int) -> int:
    workspace = Workspace.objects.get(id=current_workspace_id())
    return customers_refresh_rolling_metrics(workspace=workspace)
