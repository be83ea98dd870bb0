"""Celery tasks of journeys: the beat tick (every 5 s) and one workspace's tick."""

from celery import shared_task
from django.utils import timezone

from journeys.models import Journey
from journeys.runner import workspace_tick
from masivo.tenancy.context import all_workspaces
from masivo.tenancy.tasks import WorkspaceTask

TICK_TASK = "journeys.tick"
WORKSPACE_TICK_TASK = "journeys.workspace_tick"


@shared_task(name=WORKSPACE_TICK_TASK, base=WorkspaceTask)
def tick_workspace(*, workspace_id: int) -> dict:
    return workspace_tick(workspace_id=workspace_id, now=timezone.now())


@shared_task(name=TICK_TASK)
def tick() -> int:
    """Beat: each workspace with active or paused journeys ticks in its own task."""
    with all_workspaces(reason="beat: find the workspaces that have journeys"):
        workspace_ids = sorted(set(Journey.objects.filter(
            status__in=[Journey.Status.ACTIVE, Journey.Status.PAUSED]
        ).values_list("workspace_id", flat=True)))  # fmt: skip
    for workspace_id in workspace_ids:
        tick_workspace.delay(workspace_id=workspace_id)
    return len(workspace_ids)
