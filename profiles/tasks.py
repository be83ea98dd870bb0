"""Thin Celery tasks: ids in, one service called. Services wake them by these names."""

from celery import shared_task
from django.utils import timezone

from masivo.tenancy.models import Workspace
from masivo.tenancy.tasks import WorkspaceTask
from profiles.imports import IMPORT_TASK, customer_import_process, customer_imports_resume_stalled
from profiles.models import CustomerImport
from profiles.partitions import event_partitions_ensure
from profiles.retention import (
    event_months_expire,
    events_longest_retention_days,
    workspace_retention_apply,
)


@shared_task(name=IMPORT_TASK, base=WorkspaceTask)
def import_customers(*, workspace_id: int, import_id: int) -> None:
    customer_import = CustomerImport.objects.filter(id=import_id).first()
    if customer_import is not None:
        customer_import_process(customer_import=customer_import)


@shared_task(name="profiles.resume_stalled_imports")
def resume_stalled_imports() -> int:
    """Beat: wake imports never picked up, due for a retry, or whose worker went silent."""
    return customer_imports_resume_stalled()


@shared_task(name="profiles.ensure_event_partitions")
def ensure_event_partitions() -> list[str]:
    """Beat: the event log's partitions for this month, MASIVO_EVENT_PARTITIONS_AHEAD more and
    MASIVO_EVENT_PARTITIONS_BACK behind (those retention keeps)."""
    return event_partitions_ensure(keep_days=events_longest_retention_days())


@shared_task(name="profiles.apply_event_retention")
def apply_event_retention() -> int:
    """Beat: drop the months every workspace's retention has passed, then queue each
    workspace's own pass (shorter retentions, the dedupe window)."""
    event_months_expire()
    workspace_ids = list(Workspace.objects.order_by("id").values_list("id", flat=True))
    for workspace_id in workspace_ids:
        apply_workspace_event_retention.delay(workspace_id=workspace_id)
    return len(workspace_ids)


@shared_task(name="profiles.apply_workspace_event_retention", base=WorkspaceTask)
def apply_workspace_event_retention(*, workspace_id: int) -> dict[str, int]:
    workspace = Workspace.objects.filter(id=workspace_id).first()
    if workspace is None:
        return {"events_deleted": 0, "message_ids_deleted": 0}
    result = workspace_retention_apply(workspace=workspace, now=timezone.now())
    return {
        "events_deleted": result.events_deleted,
        "message_ids_deleted": result.message_ids_deleted,
    }
