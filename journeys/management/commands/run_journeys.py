"""`manage.py run_journeys`: the journeys tick in the foreground, the same
`journeys.runner.workspace_tick` as the `journeys.workspace_tick` task, for every workspace
with active or paused journeys (operators; the SIGKILL test runs and kills it, and moves its
clock with `--now`)."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from journeys.models import Journey
from journeys.runner import workspace_tick
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import Workspace

TICKING = [Journey.Status.ACTIVE, Journey.Status.PAUSED]
MAX_ROUNDS = 100_000  # a guard: a tick that always finds work would never let --until-idle end


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--now: not an ISO 8601 time: {value!r}") from None
    if timezone.is_naive(when):
        raise CommandError("--now: give the time zone (2026-12-01T12:00:00+00:00)")
    return when


def workspaces_with_journeys(only: int | None = None) -> list[int]:
    """Each workspace is asked inside its own scope (the workspace table is not a tenant
    table), so this needs no cross-tenant escape hatch."""
    ids = []
    workspaces = Workspace.objects.order_by("id").values_list("id", flat=True)
    for workspace_id in workspaces if only is None else [only]:
        with workspace_scope(workspace_id):
            if Journey.objects.filter(status__in=TICKING).exists():
                ids.append(workspace_id)
    return ids


class Command(BaseCommand):
    help = "Tick every workspace's journeys: read the feeds, advance what is due."

    def add_arguments(self, parser):
        parser.add_argument("--until-idle", action="store_true",
                            help="again until a round reads and advances nothing")  # fmt: skip
        parser.add_argument("--now", default=None,
                            help="the clock, an ISO 8601 time with its zone (default: the real "
                                 "time at each round)")  # fmt: skip
        parser.add_argument("--workspace", type=int, default=None, help="only this workspace")

    def handle(self, *args, until_idle, now, workspace, **options):
        fixed = _when(now)
        self.stdout.write("ticking")
        self.stdout.flush()
        totals = {"rounds": 0, "read": 0, "advanced": 0, "anniversaries": 0}
        workspace_ids = workspaces_with_journeys(workspace)
        for _ in range(MAX_ROUNDS):
            busy = False
            for workspace_id in workspace_ids:
                with workspace_scope(workspace_id):
                    counts = workspace_tick(workspace_id=workspace_id,
                                            now=fixed or timezone.now())  # fmt: skip
                for name in ("read", "advanced", "anniversaries"):
                    totals[name] += counts.get(name, 0)
                busy = busy or bool(counts.get("read") or counts.get("advanced"))
            totals["rounds"] += 1
            if not (until_idle and busy):
                break
        self.stdout.write(" ".join(f"{name}={value}" for name, value in totals.items()))
