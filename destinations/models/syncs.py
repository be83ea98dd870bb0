"""Audience syncs: an audience kept in a destination, its runs, and what the destination holds.

`SyncRecord` is the record of what was sent (issue 11 section 3): one row per (sync, customer)
with the hashed identifiers the destination holds now (`sent`, NULL when it holds nothing) and
those it should hold (`wanted`, NULL when it should hold nothing). A run's plan sets `wanted`
for every row in one statement; rows where the two differ are the work; a confirmed batch sets
`sent = wanted`. Rows outlive the customer, so a deleted or erased customer is still removed
from the destination, by the identifiers that were sent.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone

from audiences.models import Audience
from destinations.models.destinations import Destination
from masivo.jobs import Job, JobStatus
from masivo.tenancy.managers import TenantModel


class AudienceSync(TenantModel):
    """An audience linked to a destination.

    - mode: `full` replaces the remote audience with today's consented members each run (where
      the connector can replace; elsewhere it sends the whole difference); `incremental` sends
      only adds and removes against the record.
    - trigger: `recalculation` (after each recalculation of the audience), `schedule` (every
      `interval_minutes`), or `streaming` (membership changes batched every
      `interval_minutes`, read from the membership feed; minimum one minute).
    - identifiers: which of the customer's identifiers to send (`destinations.identifiers`).
    - remote_audience_id: the audience at the destination (created by Masivo when
      `remote_audience_name` was given, or chosen).
    """

    class Mode(models.TextChoices):
        FULL = "full", "Full replace"
        INCREMENTAL = "incremental", "Incremental adds and removes"

    class Trigger(models.TextChoices):
        RECALCULATION = "recalculation", "After each recalculation"
        SCHEDULE = "schedule", "On a schedule"
        STREAMING = "streaming", "Streaming (membership changes, batched)"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="+")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="syncs")
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.INCREMENTAL)
    trigger = models.CharField(max_length=14, choices=Trigger.choices, default=Trigger.SCHEDULE)
    interval_minutes = models.PositiveIntegerField(default=60)
    identifiers = models.JSONField(default=list)
    remote_audience_id = models.CharField(max_length=200, blank=True)
    remote_audience_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    # What the destination holds, kept up to date by runs (the record's `sent IS NOT NULL`).
    remote_size = models.PositiveIntegerField(default=0)
    created_by = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "audience", "destination", "remote_audience_id"],
                name="audience_sync_unique",
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "audience"], name="audsync_ws_audience"),
            models.Index(fields=["next_run_at"], name="audsync_due",
                         condition=models.Q(status="active")),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"sync {self.id}: audience {self.audience_id} → destination {self.destination_id}"


class SyncRun(Job):
    """One run of an audience sync (a job: see masivo.jobs). Its checkpoint is `phase` and the
    record itself (rows confirmed are no longer work); `session_id` names the run at the
    destination so a batch sent again after a crash is the same batch (same session, same
    sequence number), which the platforms (and our fakes) apply once."""

    STALL_AFTER = timedelta(minutes=2)
    MAX_ATTEMPTS = 8

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        DEAD = "dead", "Dead letter (retry budget spent; replay to run again)"
        CANCELED = "canceled", "Canceled"

    class Phase(models.TextChoices):
        PLAN = "plan", "Planning"
        REMOVE = "remove", "Removing"
        ADD = "add", "Adding"
        REPLACE = "replace", "Replacing"
        FINISH = "finish", "Finishing"
        DONE = "done", "Done"

    sync = models.ForeignKey(AudienceSync, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=JobStatus.QUEUED)
    mode = models.CharField(max_length=12, choices=AudienceSync.Mode.choices)
    reason = models.CharField(max_length=20, default="manual")
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.PLAN)
    session_id = models.BigIntegerField(default=0)
    batch_seq = models.PositiveIntegerField(default=0)  # batches sent so far in this run
    # Planned work and progress (rows).
    to_add = models.PositiveIntegerField(default=0)
    to_remove = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=dict)  # reason → count
    error_samples = models.JSONField(default=list)  # [{customer_id, op, error}], ≤ 20
    # Remote bookkeeping a connector keeps between batches (a Google Ads job's resource name).
    remote_state = models.JSONField(default=dict)
    # A streaming run plans only these customers (those whose membership changed); None: all.
    customer_ids = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "sync", "-id"], name="syncrun_ws_sync")]
        constraints = [
            # One unfinished run per sync: a second "run now" finds the first.
            models.UniqueConstraint(
                fields=["workspace", "sync"], name="syncrun_one_open",
                condition=models.Q(status__in=["queued", "running"]),
            )
        ]  # fmt: skip

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None

    @property
    def percent(self) -> int:
        total = self.to_add + self.to_remove
        done = self.added + self.removed + self.failed
        return 100 if total == 0 else min(100, done * 100 // total)


class SyncRecord(TenantModel):
    """What the destination holds for one customer of one sync (see the module docstring).

    `batch_seq` is set while the row is in a batch of `run_id` that was sent but not yet
    confirmed; `failed_run_id` marks a row whose batch failed in that run (retried by the next
    run, not again in the same one). `skip_reason` says why a member is not wanted (no
    consent, no identifier, invalid), for the counts.
    """

    sync = models.ForeignKey(AudienceSync, on_delete=models.CASCADE, related_name="+")
    customer_id = models.BigIntegerField()
    sent = models.JSONField(null=True, blank=True)
    wanted = models.JSONField(null=True, blank=True)
    run_id = models.BigIntegerField(null=True, blank=True)
    batch_seq = models.PositiveIntegerField(null=True, blank=True)
    batch_op = models.CharField(max_length=8, blank=True)
    failed_run_id = models.BigIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "sync", "customer_id"], name="syncrecord_unique"
            )
        ]
        # Also, made by the migration: syncrecord_pending, a partial index on (workspace_id,
        # sync_id, customer_id) WHERE sent IS DISTINCT FROM wanted: the work of a run.
        indexes = [
            models.Index(
                fields=["workspace", "sync", "failed_run_id"],
                name="syncrecord_failed",
                condition=models.Q(failed_run_id__isnull=False),
            ),
        ]
