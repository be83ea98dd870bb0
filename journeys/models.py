"""Journeys: immutable versions of a graph of steps, enrollments walking them, and the log.

- `Journey` is what a marketer names and switches on: draft, active, paused, archived.
- `JourneyVersion` is a frozen graph (journeys/graph.py validates it against the documented
  schema). Editing a live journey makes a draft of the next version; publishing freezes it.
  An enrollment stays on the version it entered.
- `Enrollment` is one customer's walk: the step they are at, when the tick should look at them
  next (`next_run_at`), the trigger's context, how many times each step was visited.
- `StepRun` is the log: one row per step visit, unique (enrollment, step, visit), so a step
  done after a crash and retry is done once, and the send it made has the dedupe key
  `journey:<enrollment>:<step>:<visit>`.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from masivo.tenancy.managers import TenantModel


class Journey(TenantModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ARCHIVED = "archived", "Archived"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # The version enrollments enter (the latest published one).
    live_version = models.ForeignKey(
        "JourneyVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The last day a date-anniversary trigger enrolled its customers (once a day).
    anniversaries_on = models.DateField(null=True, blank=True)
    created_by = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["workspace", "status"], name="journey_ws_status")]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(TenantModel):
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    graph = models.JSONField(default=dict)
    # +1 with each change of the draft's graph; an edit that names an older one is refused
    # (journeys.services.journey_update), so two editors never overwrite each other.
    revision = models.PositiveIntegerField(default=1, db_default=1)
    note = models.CharField(max_length=500, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)  # None: the draft
    published_by = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "journey", "number"], name="journey_version_unique"
            )
        ]

    @property
    def is_draft(self) -> bool:
        return self.published_at is None


class Enrollment(TenantModel):
    class State(models.TextChoices):
        ACTIVE = "active", "Active (moving through immediate steps)"
        WAITING = "waiting", "Waiting (a delay, an event, an audience)"
        COMPLETED = "completed", "Completed (reached the end)"
        CONVERTED = "converted", "Converted (reached the goal)"
        EXITED = "exited", "Exited (an exit criterion, an exit step, archived)"

    # Every move of the tick updates the due index, so every index is written: no
    # single-column ones where a composite starting with the workspace serves (RLS puts the
    # workspace in every query).
    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.CASCADE, related_name="+",
                                  db_index=False)  # fmt: skip
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+",
                                db_index=False)  # fmt: skip
    version = models.ForeignKey(JourneyVersion, on_delete=models.CASCADE, related_name="+")
    customer_id = models.BigIntegerField()
    entry_key = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    current_step = models.CharField(max_length=64)
    next_run_at = models.DateTimeField(null=True, blank=True)
    # What the step waits for: {"event": name, ...} or {"audience": id, "in": bool}; and where
    # its timeout leads. Set while waiting.
    waiting_for = models.JSONField(null=True, blank=True)
    visits = models.JSONField(default=dict)  # step → times entered
    context = models.JSONField(default=dict)  # the trigger: event name, properties, …
    is_holdout = models.BooleanField(default=False)
    variant = models.CharField(max_length=40, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    entered_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=100, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The tick's claim: a workspace's due enrollments in order (a queue per workspace,
            # so one workspace's backlog is not walked by the others' ticks).
            models.Index(fields=["workspace", "next_run_at"], name="enrollment_ws_due",
                         condition=models.Q(state__in=["active", "waiting"])),
            models.Index(fields=["workspace", "customer_id", "journey"],
                         name="enrollment_ws_customer"),
            models.Index(fields=["workspace", "journey", "state"], name="enrollment_ws_state"),
        ]  # fmt: skip
        constraints = [
            # One open enrollment per (journey, customer, entry key): re-entry rules add more.
            models.UniqueConstraint(
                fields=["workspace", "journey", "customer_id", "entry_key"],
                condition=models.Q(state__in=["active", "waiting"]),
                name="enrollment_one_open",
            ),
            models.UniqueConstraint(
                fields=["workspace", "journey", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="enrollment_idempotency",
            ),
        ]

    @property
    def is_open(self) -> bool:
        return self.state in (self.State.ACTIVE, self.State.WAITING)


class StepRun(TenantModel):
    class Outcome(models.TextChoices):
        PASSED = "passed", "Passed"
        SENT = "sent", "Message queued"
        SKIPPED = "skipped", "Skipped (the contact policy, quiet hours, holdout)"
        WAITING = "waiting", "Waiting"
        EVENT = "event", "The event came"
        TIMED_OUT = "timed_out", "Timed out"
        BRANCHED = "branched", "Branched"
        EXITED = "exited", "Exited"
        FAILED = "failed", "Failed"

    # The step log is the tick's hottest write: no single-column indexes beside the unique
    # (workspace, enrollment, step, visit), which serves both lookups (every query names the
    # workspace: RLS).
    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.CASCADE, related_name="+",
                                  db_index=False)  # fmt: skip
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="steps",
                                   db_index=False)  # fmt: skip
    journey_id = models.BigIntegerField()
    step = models.CharField(max_length=64)
    visit = models.PositiveIntegerField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    next_step = models.CharField(max_length=64, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    detail = models.JSONField(default=dict)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "enrollment", "step", "visit"], name="steprun_unique"
            )
        ]
        indexes = [models.Index(fields=["workspace", "journey_id", "step"], name="steprun_ws_step")]
