"""Thin Celery tasks: ids in, one service called. Services wake them by these names."""

from celery import shared_task
from django.utils import timezone

from audiences.lists import LIST_UPLOAD_TASK, list_upload_run, list_uploads_resume_stalled
from audiences.models import ListUpload, Recalculation
from audiences.scheduling import (
    WORKSPACE_DUE_TASK,
    audiences_due_recalculate,
    recalculation_process,
    recalculations_due_wake,
)
from audiences.services import RECALCULATE_TASK
from masivo.tenancy.tasks import WorkspaceTask


@shared_task(name=RECALCULATE_TASK, base=WorkspaceTask)
def recalculate_audience(*, workspace_id: int, recalculation_id: int) -> None:
    recalculation = Recalculation.objects.filter(id=recalculation_id).first()
    if recalculation is not None:
        recalculation_process(recalculation=recalculation)


@shared_task(name=WORKSPACE_DUE_TASK, base=WorkspaceTask)
def recalculate_workspace_due(*, workspace_id: int) -> int:
    """Every due audience of one workspace, referenced ones first, one after another."""
    return audiences_due_recalculate(now=timezone.now())


@shared_task(name="audiences.recalculate_due")
def recalculate_due() -> list[int]:
    """Beat: wake workspaces with audiences due, and runs whose wake-up was lost."""
    return recalculations_due_wake(now=timezone.now())


@shared_task(name=LIST_UPLOAD_TASK, base=WorkspaceTask)
def process_list_upload(*, workspace_id: int, upload_id: int) -> None:
    list_upload = ListUpload.objects.filter(id=upload_id).first()
    if list_upload is not None:
        list_upload_run(list_upload=list_upload)


@shared_task(name="audiences.resume_stalled_list_uploads")
def resume_stalled_list_uploads() -> int:
    """Beat: wake uploads never picked up, due for a retry, or whose worker went silent."""
    return list_uploads_resume_stalled(now=timezone.now())
