"""Event exports: one day of a workspace's events written to an S3 destination as files."""

from __future__ import annotations

from datetime import timedelta

from django.db import models

from destinations.models.destinations import Destination
from masivo.jobs import Job, JobStatus


class EventExport(Job):
    """One UTC day of events exported to one S3 destination (a job: see masivo.jobs).

    Parts of at most 50,000 events are written in id order; after each part `checkpoint` (the
    last event id in it), `objects_written` and `parts` are committed with the heartbeat, so a
    resumed export writes the next part again under the same key (destinations.exports).
    One export per (destination, day): exporting the day again resets this row.
    """

    STALL_AFTER = timedelta(minutes=5)
    MAX_ATTEMPTS = 8

    destination = models.ForeignKey(
        Destination, on_delete=models.CASCADE, related_name="event_exports"
    )
    day = models.DateField()
    event_names = models.JSONField(default=list)  # empty: every event
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    rows = models.PositiveBigIntegerField(default=0)
    objects_written = models.PositiveIntegerField(default=0)
    checkpoint = models.BigIntegerField(default=0)  # the last event id in a written part
    # [{key, rows, bytes, sha256, first_id, last_id}] in part order (the manifest's objects).
    parts = models.JSONField(default=list)
    manifest_key = models.CharField(max_length=1100, blank=True)
    created_by = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "destination", "day"], name="eventexport_one_per_day"
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "destination", "-day"], name="eventexport_ws_dest")
        ]

    def __str__(self) -> str:
        return f"event export {self.id}: {self.day} → destination {self.destination_id}"
