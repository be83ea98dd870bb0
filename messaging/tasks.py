"""Thin Celery tasks of messaging: the sender's beat tick and the recovery sweep."""

from celery import shared_task

from messaging.sending import send_until_idle, sending_recover
from messaging.sending.config import setting

SEND_DUE_TASK = "messaging.send_due"
RECOVER_TASK = "messaging.recover_sending"


@shared_task(name=SEND_DUE_TASK)
def send_due(workspace_id: int | None = None) -> int:
    """Beat (every few seconds) or a wake-up: claim and send due messages, batch after batch,
    for at most MASIVO_SEND_RUN_SECONDS. Concurrent runs share the work (SKIP LOCKED)."""
    report = send_until_idle(
        workspace_id=workspace_id, max_seconds=setting("MASIVO_SEND_RUN_SECONDS")
    )
    return report.claimed


@shared_task(name=RECOVER_TASK)
def recover_sending() -> int:
    """Beat: resolve messages left `sending` past the stall timeout by a worker that stopped."""
    report = sending_recover()
    return report.requeued + report.resolved_sent + report.unknown
