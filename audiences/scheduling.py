"""When audiences recalculate besides "now": on schedule, as time passes, and after an audience
they reference changed.

Beat asks `recalculations_due_wake` once a minute; each workspace with due audiences then runs
them one after another in dependency order (`audiences_due_recalculate`). A run that changed
its audience's members queues the audiences that reference it (`recalculation_cascade`). Work
is woken by task name (masivo.tenancy.wakeups), so this module never imports the tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from audiences.models import Audience, Recalculation
from audiences.recalculation import (
    audience_recalculate,
    dependents_of,
    in_dependency_order,
    recalculation_run,
)
from audiences.services import RECALCULATE_TASK, audience_recalculate_request
from masivo.jobs import jobs_to_wake
from masivo.tenancy.context import all_workspaces
from masivo.tenancy.wakeups import task_wake

WORKSPACE_DUE_TASK = "audiences.recalculate_workspace_due"  # audiences.tasks
TIME_BASED_EVERY = timedelta(hours=1)  # rules with time windows expire members as time passes


def _due(now: datetime) -> Q:
    expiring = Q(is_time_based=True) & (
        Q(last_run_at__isnull=True) | Q(last_run_at__lte=now - TIME_BASED_EVERY)
    )
    return Q(kind=Audience.Kind.RULES) & (Q(next_run_at__lte=now) | expiring)


def audiences_due(*, now: datetime) -> list[Audience]:
    """The workspace's audiences due at `now` (schedule, or time-based conditions to expire),
    referenced ones first."""
    return in_dependency_order(list(Audience.objects.filter(_due(now))))


def audiences_due_recalculate(*, now: datetime) -> int:
    """Recalculate every due audience of the workspace in context, one after another, each
    against the same clock; returns how many ran."""
    due = audiences_due(now=now)
    for audience in due:
        audience_recalculate(audience=audience, reason="schedule", now=now)
    return len(due)


def recalculation_cascade(*, recalculation: Recalculation) -> list[Recalculation]:
    """After a run that changed its audience's members, queue the audiences that reference it.

    Their runs wake after commit; each of those cascades in turn (cycles are refused at save).
    """
    if recalculation.status != Recalculation.Status.SUCCEEDED or not (
        recalculation.entered or recalculation.exited
    ):
        return []
    audience = Audience.objects.get(id=recalculation.audience_id)
    with transaction.atomic():
        return [
            audience_recalculate_request(audience=dependent, reason="dependency")
            for dependent in dependents_of(audience)
        ]


def recalculation_process(*, recalculation: Recalculation) -> Recalculation:
    """The worker's whole job for one queued run: run it (idempotent), then cascade."""
    run = recalculation_run(recalculation=recalculation)
    recalculation_cascade(recalculation=run)
    return run


def recalculations_due_wake(*, now: datetime) -> list[int]:
    """Beat, across workspaces: wake each workspace that has audiences due, and the runs a
    sweep must wake again (wake-up lost, retry due, or worker gone: masivo.jobs). Returns the
    workspaces woken."""
    with all_workspaces(reason="beat: find audiences due for recalculation"):
        workspace_ids = sorted(
            set(Audience.objects.filter(_due(now)).values_list("workspace_id", flat=True))
        )
    stuck = jobs_to_wake(Recalculation, reason="beat: find recalculations to wake again", now=now)
    for workspace_id in workspace_ids:
        task_wake(WORKSPACE_DUE_TASK, workspace_id=workspace_id)
    for workspace_id, recalculation_id in stuck:
        task_wake(RECALCULATE_TASK, workspace_id=workspace_id, recalculation_id=recalculation_id)
    return workspace_ids
