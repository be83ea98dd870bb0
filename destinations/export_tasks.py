"""Celery tasks of event exports: thin wrappers over destinations.exports."""

from celery import shared_task

from destinations.exports import (
    EXPORT_TASK,
    event_export_execute,
    event_exports_daily,
    event_exports_to_wake,
)
from masivo.tenancy.tasks import WorkspaceTask

DAILY_TASK = "destinations.event_exports_daily"
WAKE_TASK = "destinations.event_exports_wake"


@shared_task(name=EXPORT_TASK, base=WorkspaceTask)
def run_event_export(*, workspace_id: int, export_id: int) -> str | None:
    """Claim one export and write it; a second worker does nothing."""
    export = event_export_execute(export_id=export_id)
    return export.status if export else None


@shared_task(name=DAILY_TASK)
def schedule_daily_event_exports() -> int:
    """Beat (01:00 UTC): yesterday's export for every S3 destination exporting events (each
    queues itself once its row commits)."""
    return len(event_exports_daily())


@shared_task(name=WAKE_TASK)
def wake_event_exports() -> int:
    """Beat (every minute): exports whose worker died or whose retry is due run again."""
    woken = event_exports_to_wake()
    for workspace_id, export_id in woken:
        run_event_export.delay(workspace_id=workspace_id, export_id=export_id)
    return len(woken)
