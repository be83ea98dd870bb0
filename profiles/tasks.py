from celery import shared_task
from django.utils import timezone

from masivo.tenancy.context import all_workspaces
from masivo.tenancy.tasks import WorkspaceTask
from profiles.imports import STALL_AFTER, customer_import_claim, customer_import_run
from profiles.models import CustomerImport


@shared_task(name="profiles.import_customers", base=WorkspaceTask)
def import_customers(*, workspace_id: int, import_id: int) -> None:
    customer_import = CustomerImport.objects.filter(id=import_id).first()
    if customer_import is None or not customer_import_claim(customer_import=customer_import):
        return  # gone, finished, or another worker holds it
    customer_import.refresh_from_db()
    customer_import_run(customer_import=customer_import)


@shared_task(name="profiles.resume_stalled_imports")
def resume_stalled_imports() -> int:
    """Beat: re-queue imports that were never picked up or whose worker went silent."""
    cutoff = timezone.now() - STALL_AFTER
    with all_workspaces(reason="beat: find stalled customer imports in every workspace"):
        stalled = list(
            CustomerImport.objects.filter(
                status__in=[CustomerImport.Status.QUEUED, CustomerImport.Status.RUNNING],
                created_at__lt=cutoff,
            )
            .exclude(heartbeat_at__gte=cutoff)
            .values_list("workspace_id", "id")
        )
    for workspace_id, import_id in stalled:
        import_customers.delay(workspace_id=workspace_id, import_id=import_id)
    return len(stalled)
