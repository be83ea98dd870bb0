"""Run the event log's maintenance by hand: what beat runs (docs/operations.md, "Event
partitions and retention"), through the same functions and services.

    manage.py event_partitions show              # each partition and its bound
    manage.py event_partitions ensure [--ahead N] [--back N]
    manage.py event_partitions expire [--detach] # months, then each workspace's rows and ids
"""

from django.core.management.base import BaseCommand
from django.utils import timezone

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import Workspace
from profiles.partitions import event_partitions, event_partitions_ensure, event_partitions_expire
from profiles.retention import events_longest_retention_days, workspace_retention_apply


class Command(BaseCommand):
    help = "Show, create ahead or expire the monthly partitions of the event log."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["show", "ensure", "expire"])
        parser.add_argument("--ahead", type=int, default=None, help="months ahead to create")
        parser.add_argument("--back", type=int, default=None, help="months back to create")
        parser.add_argument(
            "--detach", action="store_true", help="detach expired months as archive tables"
        )

    def handle(self, *args, action, ahead, back, detach, **options):
        if action == "show":
            for name, bound in event_partitions():
                self.stdout.write(f"{name}\t{bound}")
        elif action == "ensure":
            created = event_partitions_ensure(
                months_ahead=ahead, months_back=back, keep_days=events_longest_retention_days()
            )
            self.stdout.write(f"created {len(created)}: {', '.join(created) or '-'}")
        else:
            self._expire(detach=detach or None)

    def _expire(self, *, detach):
        keep_days = events_longest_retention_days()
        if keep_days is None:
            self.stdout.write("months: a workspace keeps every event, none expired")
        else:
            gone = event_partitions_expire(keep_days=keep_days, detach=detach)
            self.stdout.write(f"months older than {keep_days} days: {', '.join(gone) or '-'}")
        now = timezone.now()
        for workspace in Workspace.objects.order_by("id"):
            with workspace_scope(workspace.id):
                result = workspace_retention_apply(workspace=workspace, now=now)
            self.stdout.write(
                f"workspace {workspace.id}: {result.events_deleted} events, "
                f"{result.message_ids_deleted} message ids deleted"
            )
