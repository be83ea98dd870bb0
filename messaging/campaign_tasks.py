"""Celery tasks of campaigns (messaging.campaigns): the start of one campaign (woken by "send
now" and by the tick) and the beat tick every 15 seconds."""

from celery import shared_task

from masivo.tenancy.context import current_workspace_id
from masivo.tenancy.tasks import WorkspaceTask
from messaging.campaigns import START_TASK, campaign_start, campaigns_tick

TICK_TASK = "messaging.campaigns_tick"


@shared_task(name=START_TASK, base=WorkspaceTask)
def start_campaign(*, workspace_id: int, campaign_id: int) -> dict:
    """Claim and start one campaign; a second run (or a second worker) does nothing."""
    assert current_workspace_id() == workspace_id
    started = campaign_start(campaign_id=campaign_id)
    return {
        "started": started.started,
        "created": started.created,
        "already_existing": started.already_existing,
    }


@shared_task(name=TICK_TASK)
def tick_campaigns() -> dict:
    """Beat: queue the starts that are due (or crashed) and complete finished campaigns."""
    result = campaigns_tick()
    for workspace_id, campaign_id in result["start"]:
        start_campaign.delay(workspace_id=workspace_id, campaign_id=campaign_id)
    return {"started": [campaign_id for _, campaign_id in result["start"]],
            "completed": result["completed"]}  # fmt: skip
