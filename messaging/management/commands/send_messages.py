"""`manage.py send_messages`: the sender in the foreground, the same pipeline as the
`messaging.send_due` task (operators; the chaos test runs and kills it)."""

from django.core.management.base import BaseCommand

from messaging.sending import send_due, send_until_idle, sending_recover


class Command(BaseCommand):
    help = "Claim and send due messages; with --recover, resolve stalled ones first."

    def add_arguments(self, parser):
        parser.add_argument("--until-idle", action="store_true", help="until nothing is due")
        parser.add_argument("--workspace", type=int, default=None)
        parser.add_argument(
            "--recover",
            action="store_true",
            help="first resolve messages left sending (see --stall-seconds)",
        )
        parser.add_argument(
            "--stall-seconds",
            type=float,
            default=None,
            help="with --recover: sending this long means its worker is gone "
            "(default MASIVO_SEND_STALL_SECONDS; 0 only when no other sender runs)",
        )

    def handle(self, *args, until_idle, workspace, recover, stall_seconds, **options):
        if recover:
            recovered = sending_recover(stall_seconds=stall_seconds)
            self.stdout.write(
                f"recovered: requeued={recovered.requeued} sent={recovered.resolved_sent} "
                f"unknown={recovered.unknown}"
            )
        report = (send_until_idle if until_idle else send_due)(workspace_id=workspace)
        statuses = " ".join(f"{name}={count}" for name, count in sorted(report.statuses.items()))
        self.stdout.write(f"claimed={report.claimed} {statuses}".strip())
