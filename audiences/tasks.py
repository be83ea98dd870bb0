from celery import shared_task
from django.db import transaction
from django.utils import timezone

from audiences.models import Audience, Recalculation
from audiences.recalculation import (
    dependents_of,
    in_dependency_order,
    recalculation_queue,
    recalculation_run,
)
from masivo.tenancy.context import all_workspaces
from masivo.tenancy.tasks import WorkspaceTask

TIME_BASED_EVERY = timezone.timedelta(hours=1)


def queue_on_commit(recalculation: Recalculation) -> None:
    transaction.on_commit(
        lambda: recalculate_audience.delay(
            workspace_id=recalculation.workspace_id, recalculation_id=recalculation.id
        )
    )


@shared_task(name="audiences.recalculate", base=WorkspaceTask)
def recalculate_audience(*, workspace_id: int, recalculation_id: int) -> None:
    run = Recalculation.objects.filter(id=recalculation_id).first()
    if run is None:
        return
    run = recalculation_run(recalculation=run)
    if run.status == Recalculation.Status.SUCCEEDED and (run.entered or run.exited):
        audience = Audience.objects.get(id=run.audience_id)
        for dependent in dependents_of(audience):
            queue_on_commit(recalculation_queue(audience=dependent, reason="dependency"))


@shared_task(name="audiences.recalculate_workspace_due", base=WorkspaceTask)
def recalculate_workspace_due(*, workspace_id: int) -> int:
    """Every due audience of one workspace, referenced ones first, one after another."""
    now = timezone.now()
    due = [
        audience
        for audience in Audience.objects.filter(kind=Audience.Kind.RULES)
        if (audience.next_run_at and audience.next_run_at <= now)
        or (
            audience.is_time_based
            and (audience.last_run_at is None or audience.last_run_at <= now - TIME_BASED_EVERY)
        )
    ]
    for audience in in_dependency_order(due):
        recalculation_run(
            recalculation=recalculation_queue(audience=audience, reason="schedule"), now=now
        )
    return len(due)


@shared_task(name="audiences.recalculate_due")
def recalculate_due() -> list[int]:
    """Beat: workspaces with audiences due (schedule, or time-based conditions to expire)."""
    now = timezone.now()
    with all_workspaces(reason="beat: find audiences due for recalculation"):
        workspace_ids = sorted(
            set(
                Audience.objects.filter(kind=Audience.Kind.RULES, next_run_at__lte=now).values_list(
                    "workspace_id", flat=True
                )
            )
            | set(
                Audience.objects.filter(kind=Audience.Kind.RULES, is_time_based=True)
                .exclude(last_run_at__gt=now - TIME_BASED_EVERY)
                .values_list("workspace_id", flat=True)
            )
        )
        stuck = list(
            Recalculation.objects.filter(
                status=Recalculation.Status.QUEUED,
                created_at__lt=now - timezone.timedelta(minutes=5),
            ).values_list("workspace_id", "id")
        )
    for workspace_id in workspace_ids:
        recalculate_workspace_due.delay(workspace_id=workspace_id)
    for workspace_id, recalculation_id in stuck:
        recalculate_audience.delay(workspace_id=workspace_id, recalculation_id=recalculation_id)
    return workspace_ids


@shared_task(name="audiences.process_list_upload", base=WorkspaceTask)
def process_list_upload(*, workspace_id: int, upload_id: int) -> None:
    from audiences.lists import list_upload_run
    from audiences.models import ListUpload

    list_upload = ListUpload.objects.filter(id=upload_id).first()
    if list_upload is not None:
        list_upload_run(list_upload=list_upload)
