"""Thin Celery tasks: ids in, one service called. Services wake them by these names."""

from celery import shared_task

from masivo.tenancy.tasks import WorkspaceTask
from profiles.imports import IMPORT_TASK, customer_import_process, customer_imports_resume_stalled
from profiles.models import CustomerImport


@shared_task(name=IMPORT_TASK, base=WorkspaceTask)
def import_customers(*, workspace_id: int, import_id: int) -> None:
    customer_import = CustomerImport.objects.filter(id=import_id).first()
    if customer_import is not None:
        customer_import_process(customer_import=customer_import)


@shared_task(name="profiles.resume_stalled_imports")
def resume_stalled_imports() -> int:
    """Beat: wake imports never picked up, due for a retry, or whose worker went silent."""
    return customer_imports_resume_stalled()
