"""`manage.py sync_destinations`: audience sync runs in the foreground, the same engine as
the `destinations.sync_run` task (operators; the SIGKILL test runs and kills it)."""

from django.core.management.base import BaseCommand

from destinations.syncing import sync_runs_until_idle


class Command(BaseCommand):
    help = "Run queued audience sync runs (and ones whose worker died) until none is left."

    def add_arguments(self, parser):
        parser.add_argument(
            "--stall-seconds",
            type=float,
            default=None,
            help="a running run silent this long has lost its worker (default: the job's "
            "STALL_AFTER; 0 only when no other worker runs)",
        )

    def handle(self, *args, stall_seconds, **options):
        self.stdout.write("syncing", ending="\n")
        self.stdout.flush()
        done = sync_runs_until_idle(stall_seconds=stall_seconds)
        statuses = " ".join(f"{name}={count}" for name, count in sorted(done.items()))
        self.stdout.write(f"runs: {statuses}".strip())
