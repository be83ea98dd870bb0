"""Streaming audience syncs: membership changes, batched every few minutes.

Each streaming sync follows its audience's membership feed with a cursor of its own (the
family `destinations.streaming:<sync id>`, scoped by the audience). A tick reads what changed
since the cursor and, in the same transaction, queues an incremental run planned for just
those customers and advances the cursor: a crash before commit reads the rows again; after
commit the run exists and will be done. While a run is open the cursor waits.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audiences.apps import MEMBERSHIP_CHANGES_FEED
from destinations.models import AudienceSync, SyncRun
from masivo.feeds.services import feed_advance, feed_cursor_create, feed_cursor_delete, feed_read
from masivo.tenancy.wakeups import task_wake_on_commit

CONSUMER = "destinations.streaming"
MAX_CUSTOMERS_A_RUN = 10_000


def _consumer(sync: AudienceSync) -> str:
    return f"{CONSUMER}:{sync.id}"


def streaming_start(sync: AudienceSync) -> None:
    """Follow the audience from now (the sync's first run sends everyone before that)."""
    feed_cursor_create(workspace_id=sync.workspace_id, feed=MEMBERSHIP_CHANGES_FEED,
                       consumer=_consumer(sync), scope=sync.audience_id, from_now=True)  # fmt: skip


def streaming_stop(sync: AudienceSync) -> None:
    feed_cursor_delete(workspace_id=sync.workspace_id, feed=MEMBERSHIP_CHANGES_FEED,
                       consumer=_consumer(sync), scope=sync.audience_id)  # fmt: skip


def streaming_tick(sync: AudienceSync) -> SyncRun | None:
    """Queue a run for the customers whose membership changed, if any and none is open."""
    from destinations.services import RUN_TASK

    with transaction.atomic():
        if SyncRun.objects.filter(sync=sync, status__in=["queued", "running"]).exists():
            return None
        batch = feed_read(workspace_id=sync.workspace_id, feed=MEMBERSHIP_CHANGES_FEED,
                          consumer=_consumer(sync), scope=sync.audience_id,
                          limit=MAX_CUSTOMERS_A_RUN)  # fmt: skip
        AudienceSync.objects.filter(id=sync.id).update(
            next_run_at=timezone.now() + timedelta(minutes=sync.interval_minutes)
        )
        if not batch.rows:
            return None
        customers = sorted({row["customer_id"] for row in batch.rows})
        run = SyncRun.objects.create(
            workspace_id=sync.workspace_id, sync=sync, mode=AudienceSync.Mode.INCREMENTAL,
            reason="streaming", customer_ids=customers,
        )  # fmt: skip
        feed_advance(batch=batch)
        task_wake_on_commit(RUN_TASK, workspace_id=sync.workspace_id, run_id=run.id)
    return run
