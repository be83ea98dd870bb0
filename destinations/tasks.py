"""Celery tasks of destinations: thin wrappers over the engine (destinations.syncing), the
scheduler (destinations.scheduling) and forwarding (destinations.forwarding)."""

from celery import shared_task

from destinations.forwarding import forwarding_destinations, forwarding_tick_one
from destinations.models import Destination
from destinations.scheduling import runs_to_wake, sync_due_request, syncs_due
from destinations.services import RUN_TASK
from destinations.syncing import sync_run_execute
from masivo.tenancy.context import all_workspaces
from masivo.tenancy.tasks import WorkspaceTask

TICK_TASK = "destinations.syncs_tick"
DUE_TASK = "destinations.sync_due"


@shared_task(name=RUN_TASK, base=WorkspaceTask)
def run_sync(*, workspace_id: int, run_id: int) -> str | None:
    """Claim one run and take it as far as it goes; a second worker does nothing."""
    run = sync_run_execute(run_id=run_id)
    return run.status if run else None


@shared_task(name=DUE_TASK, base=WorkspaceTask)
def sync_due(*, workspace_id: int, sync_id: int) -> int | None:
    return sync_due_request(sync_id=sync_id)


@shared_task(name=TICK_TASK)
def tick_syncs() -> dict:
    """Beat (every 15 s): due syncs act, and runs that were lost or are due for retry wake."""
    due = syncs_due()
    for workspace_id, sync_id in [pair for pairs in due.values() for pair in pairs]:
        sync_due.delay(workspace_id=workspace_id, sync_id=sync_id)
    woken = runs_to_wake()
    for workspace_id, run_id in woken:
        run_sync.delay(workspace_id=workspace_id, run_id=run_id)
    return {trigger: len(pairs) for trigger, pairs in due.items()} | {"woken": len(woken)}


FORWARDING_TICK_TASK = "destinations.forwarding_tick"
FORWARD_TASK = "destinations.forward"


@shared_task(name=FORWARD_TASK, base=WorkspaceTask)
def forward(*, workspace_id: int, destination_id: int) -> dict:
    destination = Destination.objects.filter(id=destination_id).first()
    if destination is None:
        return {}
    return forwarding_tick_one(destination)


@shared_task(name=FORWARDING_TICK_TASK)
def tick_forwarding() -> int:
    """Beat (every 5 s): each forwarding destination collects and sends, in its own task."""
    with all_workspaces(reason="beat: list destinations that forward"):
        destinations = forwarding_destinations()
    for workspace_id, destination_id in destinations:
        forward.delay(workspace_id=workspace_id, destination_id=destination_id)
    return len(destinations)
