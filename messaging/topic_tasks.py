"""Celery tasks of push topics (messaging.topics): one run per workspace, woken when a topic is
made or removed, and by the beat sweep every 30 seconds."""

from celery import shared_task

from masivo.tenancy.context import all_workspaces, current_workspace_id
from masivo.tenancy.models import Workspace
from masivo.tenancy.tasks import WorkspaceTask
from messaging.topics import push_topics_sync, workspaces_with_topics


@shared_task(
    name="messaging.sync_push_topics",
    base=WorkspaceTask,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def sync_push_topics(*, workspace_id: int) -> dict:
    workspace = Workspace.objects.get(id=current_workspace_id())
    result = push_topics_sync(workspace=workspace)
    if result.has_more:
        sync_push_topics.delay(workspace_id=workspace.id)
    return {
        "subscribed": result.reconciled.subscribed,
        "unsubscribed": result.reconciled.unsubscribed,
        "failed": result.reconciled.failed,
        "has_more": result.has_more,
    }


@shared_task(name="messaging.sweep_push_topics")
def sweep_push_topics() -> list[int]:
    with all_workspaces(reason="beat: find the workspaces that have push topics"):
        workspace_ids = workspaces_with_topics()
    for workspace_id in workspace_ids:
        sync_push_topics.delay(workspace_id=workspace_id)
    return workspace_ids
