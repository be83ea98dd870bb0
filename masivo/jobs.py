"""One lifecycle for long background work (recalculations, list uploads, customer imports;
next campaign sends and destination syncs).

A job is a row of a model built on `Job`. Its life:

    queued ──claim──► running ──► succeeded
      ▲                  │  └───► failed (with the reason; permanent errors, or retries used up)
      └── retry_at ◄─────┘ transient error (backoff), or its heartbeat stopped (the sweep)

- `job_claim` takes a job by one conditional UPDATE: queued and due, or running with a
  heartbeat older than the model's `STALL_AFTER` (its worker died). Two workers woken for one
  job: exactly one gets it.
- `job_heartbeat` records progress and proves the worker is alive; long work calls it at each
  checkpoint it commits (the job resumes from its own checkpoint fields after a crash).
- `job_run` claims, calls the work, and ends the job: succeeded, retried later with backoff on a
  transient error, or failed with a recorded reason on any other error. A failure never leaves
  a job `running`, and never escapes to fail the caller's other work.
- `jobs_to_wake` lists, across workspaces, the jobs a beat sweep should wake again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from django.db import InterfaceError, OperationalError, models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.timezone import now as _now

from masivo.tenancy.context import all_workspaces
from masivo.tenancy.managers import TenantModel

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, OSError)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Job(TenantModel):
    """Fields of the lifecycle. Subclasses may extend `Status` with more final states."""

    STALL_AFTER = timedelta(minutes=2)  # silent this long while running: the worker is gone
    MAX_ATTEMPTS = 5
    FIRST_BACKOFF = timedelta(seconds=10)
    MAX_BACKOFF = timedelta(minutes=15)

    Status = JobStatus

    status = models.CharField(max_length=10, default=JobStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=_now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status not in (JobStatus.QUEUED, JobStatus.RUNNING)


J = TypeVar("J", bound=Job)


class PermanentJobError(Exception):
    """Raised by work that knows retrying cannot help; its message is the recorded reason."""


def _claimable(model: type[Job], now: datetime) -> Q:
    due = Q(status=JobStatus.QUEUED) & (Q(retry_at__isnull=True) | Q(retry_at__lte=now))
    silent = Q(status=JobStatus.RUNNING) & (
        Q(heartbeat_at__lt=now - model.STALL_AFTER) | Q(heartbeat_at__isnull=True)
    )
    return due | silent


def job_claim(job: J, *, now: datetime | None = None) -> bool:
    """Take the job for this worker; False when it is finished, not due, or held by a live
    worker. On success `job` is refreshed."""
    now = now or timezone.now()
    model = type(job)
    claimed = model.objects.filter(_claimable(model, now), id=job.id).update(
        status=JobStatus.RUNNING,
        heartbeat_at=now,
        started_at=Coalesce(F("started_at"), now),
        retry_at=None,
        attempts=F("attempts") + 1,
    )
    if claimed:
        job.refresh_from_db()
    return claimed == 1


def job_heartbeat(job: Job, **progress) -> None:
    """Record progress fields and that the worker is alive (in the caller's transaction)."""
    type(job).objects.filter(id=job.id, status=JobStatus.RUNNING).update(
        heartbeat_at=timezone.now(), **progress
    )


def job_succeed(job: Job, **fields) -> None:
    _end(job, JobStatus.SUCCEEDED, **fields)


def job_fail(job: Job, reason: str) -> None:
    _end(job, JobStatus.FAILED, error=reason[:2000])


def _end(job: Job, status: str, **fields) -> None:
    finished = timezone.now()
    type(job).objects.filter(id=job.id).update(status=status, finished_at=finished, **fields)
    for name, value in {"status": status, "finished_at": finished, **fields}.items():
        setattr(job, name, value)


def job_retry_later(job: Job, reason: str, *, now: datetime | None = None) -> bool:
    """Back to the queue with exponential backoff, or failed when attempts are used up.
    Returns True when it will be retried."""
    now = now or timezone.now()
    model = type(job)
    if job.attempts >= model.MAX_ATTEMPTS:
        job_fail(job, f"gave up after {job.attempts} attempts: {reason}")
        return False
    backoff = min(model.FIRST_BACKOFF * 2 ** max(job.attempts - 1, 0), model.MAX_BACKOFF)
    model.objects.filter(id=job.id).update(
        status=JobStatus.QUEUED, retry_at=now + backoff, error=reason[:2000]
    )
    job.status, job.retry_at, job.error = JobStatus.QUEUED, now + backoff, reason[:2000]
    return True


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if isinstance(error, PermanentJobError) else f"{type(error).__name__}: {text}"


def job_run(job: J, work: Callable[[J], None], *, transient=TRANSIENT_ERRORS) -> J:
    """Claim `job`, run `work(job)`, and end the job by what happened. Idempotent: a finished
    job, or one another worker holds, does nothing. `work` ends the job itself when it has
    more to say (a skipped run, counts); otherwise success is recorded when it returns."""
    if not job_claim(job):
        return job
    try:
        work(job)
    except transient as error:
        logger.warning("job %s %s: transient error, will retry: %s", type(job).__name__, job.id,
                       error)  # fmt: skip
        job_retry_later(job, _reason(error))
        return job
    except Exception as error:
        # Recorded, not hidden: the job shows `failed` with the reason, and the log has the
        # traceback. The caller's other work (the next audience, the next batch) goes on.
        logger.exception("job %s %s failed", type(job).__name__, job.id)
        job_fail(job, _reason(error))
        return job
    job.refresh_from_db()
    if job.status == JobStatus.RUNNING:
        job_succeed(job)
    return job


def jobs_to_wake(model: type[Job], *, reason: str, now: datetime | None = None) -> list[tuple]:
    """(workspace_id, id) of jobs a sweep should wake: queued ones never picked up within
    STALL_AFTER or whose retry is due, and running ones whose heartbeat stopped. Cross-tenant."""
    now = now or timezone.now()
    never_picked = Q(status=JobStatus.QUEUED, created_at__lt=now - model.STALL_AFTER)
    retry_due = Q(status=JobStatus.QUEUED, retry_at__lte=now)
    silent = Q(status=JobStatus.RUNNING) & (
        Q(heartbeat_at__lt=now - model.STALL_AFTER) | Q(heartbeat_at__isnull=True)
    )
    waiting = Q(retry_at__isnull=True) | Q(retry_at__lte=now)
    with all_workspaces(reason=reason):
        return list(
            model.objects.filter((never_picked & waiting) | retry_due | silent)
            .order_by("id")
            .values_list("workspace_id", "id")
        )
