"""Celery tasks of webhooks: the beat sweep over every endpoint, and one endpoint's due
deliveries, woken after forward() records them. Thin: destinations.webhooks does the work.

masivo/settings.py calls `beat_schedule()` while settings load, before Django's apps are
ready, so this module imports nothing of Django at import time: the tasks import the sender
when they run.
"""

from celery import shared_task

from masivo.tenancy.tasks import WorkspaceTask

SEND_DUE_TASK = "destinations.webhooks_send_due"
SEND_ENDPOINT_TASK = "destinations.webhooks_send_endpoint"  # destinations.connectors.webhook
RUN_SECONDS = 20


def beat_schedule() -> dict:
    """The entry for CELERY_BEAT_SCHEDULE: `CELERY_BEAT_SCHEDULE |= beat_schedule()`."""
    return {"send-due-webhooks": {"task": SEND_DUE_TASK, "schedule": 5.0}}


@shared_task(name=SEND_DUE_TASK)
def webhooks_send_due() -> int:
    """Beat (every 5 s): due deliveries of every endpoint, batch after batch, for at most
    RUN_SECONDS. Concurrent runs share the work (SKIP LOCKED)."""
    from destinations.webhooks import deliveries_send_until_idle  # see the module docstring

    return deliveries_send_until_idle(max_seconds=RUN_SECONDS).claimed


@shared_task(name=SEND_ENDPOINT_TASK, base=WorkspaceTask)
def webhooks_send_endpoint(*, workspace_id: int, destination_id: int) -> int:
    """Soon after forward(): this endpoint's due deliveries (the sweep catches a lost wake)."""
    from destinations.webhooks import deliveries_send_until_idle  # see the module docstring

    report = deliveries_send_until_idle(max_seconds=RUN_SECONDS, destination_id=destination_id)
    return report.claimed
