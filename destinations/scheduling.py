"""What the beat tick decides (cross-tenant): which syncs are due, which runs to wake.

- `schedule` syncs: a run every `interval_minutes` (`next_run_at`).
- `recalculation` syncs: a run after each recalculation of the audience that succeeded since
  the last one was asked for (`next_run_at` holds when that was).
- `streaming` syncs: `destinations.streaming.streaming_tick` when `next_run_at` is due.
- runs queued but never picked up, due for a retry, or whose worker stopped (the job sweep).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from audiences.models import Recalculation
from destinations.models import AudienceSync, Destination, SyncRun
from masivo.jobs import jobs_to_wake
from masivo.tenancy.context import all_workspaces


def syncs_due(now: datetime | None = None) -> dict[str, list[tuple[int, int]]]:
    """(workspace id, sync id) by trigger, of syncs that should act now."""
    now = now or timezone.now()
    active = Q(status=AudienceSync.Status.ACTIVE, destination__status=Destination.Status.ACTIVE)
    with all_workspaces(reason="beat: find audience syncs that are due"):
        timed = AudienceSync.objects.filter(
            active, trigger__in=[AudienceSync.Trigger.SCHEDULE, AudienceSync.Trigger.STREAMING],
            next_run_at__lte=now,
        ).values_list("workspace_id", "id", "trigger")  # fmt: skip
        latest = (
            Recalculation.objects.filter(audience_id=OuterRef("audience_id"), status="succeeded")
            .order_by("-finished_at")
            .values("finished_at")[:1]
        )
        recalculated = (
            AudienceSync.objects.filter(active, trigger=AudienceSync.Trigger.RECALCULATION)
            .annotate(recalculated_at=Subquery(latest))
            .filter(Q(next_run_at__isnull=True) | Q(recalculated_at__gt=F("next_run_at")),
                    recalculated_at__isnull=False)
            .values_list("workspace_id", "id")
        )  # fmt: skip
        due = {"schedule": [], "streaming": [], "recalculation": list(recalculated)}
        for workspace_id, sync_id, trigger in timed:
            due[trigger].append((workspace_id, sync_id))
    return due


def sync_due_request(*, sync_id: int, now: datetime | None = None) -> int | None:
    """Act on one due sync (in its workspace's scope); returns the run id queued, if any."""
    from destinations.services import sync_run_request
    from destinations.streaming import streaming_tick

    now = now or timezone.now()
    sync = AudienceSync.objects.select_related("destination").filter(id=sync_id).first()
    if sync is None or sync.status != AudienceSync.Status.ACTIVE:
        return None
    if sync.trigger == AudienceSync.Trigger.STREAMING:
        run = streaming_tick(sync)
        return run.id if run else None
    if sync.trigger == AudienceSync.Trigger.SCHEDULE:
        AudienceSync.objects.filter(id=sync.id).update(
            next_run_at=now + timedelta(minutes=sync.interval_minutes)
        )
        reason = "schedule"
    else:
        latest = (
            Recalculation.objects.filter(audience_id=sync.audience_id, status="succeeded")
            .order_by("-finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )
        AudienceSync.objects.filter(id=sync.id).update(next_run_at=latest or now)
        reason = "recalculation"
    return sync_run_request(sync=sync, reason=reason).id


def runs_to_wake(now: datetime | None = None) -> list[tuple[int, int]]:
    return jobs_to_wake(SyncRun, reason="beat: wake audience sync runs", now=now)
