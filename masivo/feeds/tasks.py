from datetime import timedelta

from celery import shared_task
from django.conf import settings

from masivo.feeds.retention import feed_rows_delete_expired
from masivo.tenancy.context import all_workspaces
from masivo.tenancy.models import Workspace
from masivo.tenancy.tasks import WorkspaceTask


@shared_task(name="feeds.delete_expired_rows")
def delete_expired_feed_rows() -> int:
    """Beat: queue each workspace's retention pass (one slow workspace does not hold the rest)."""
    with all_workspaces(reason="beat: feed retention runs for every workspace"):
        workspace_ids = list(Workspace.objects.order_by("id").values_list("id", flat=True))
    for workspace_id in workspace_ids:
        delete_expired_workspace_feed_rows.delay(workspace_id=workspace_id)
    return len(workspace_ids)


@shared_task(name="feeds.delete_expired_workspace_rows", base=WorkspaceTask)
def delete_expired_workspace_feed_rows(*, workspace_id: int) -> dict[str, int]:
    return feed_rows_delete_expired(
        workspace_id=workspace_id,
        older_than=timedelta(days=settings.MASIVO_FEED_RETENTION_DAYS),
    )
