"""Audiences, their membership, the enter/exit change log, and recalculation runs."""

from datetime import timedelta

from django.db import models
from django.utils.timezone import now

from masivo.jobs import Job, JobStatus
from masivo.tenancy.managers import TenantModel


class Audience(TenantModel):
    class Kind(models.TextChoices):
        RULES = "rules", "Rules"
        LIST = "list", "Uploaded list"

    class Schedule(models.TextChoices):
        NEVER = "never", "Never"
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"
        QUARTERLY = "quarterly", "Quarterly"
        YEARLY = "yearly", "Yearly"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.RULES)
    rules = models.JSONField(null=True, blank=True)
    schedule = models.CharField(max_length=10, choices=Schedule.choices, default=Schedule.DAILY)
    is_realtime = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    # Names the rules mention, for the real-time index (which audiences an event can change).
    event_names = models.JSONField(default=list, blank=True)
    profile_fields = models.JSONField(default=list, blank=True)
    depends_on = models.JSONField(default=list, blank=True)
    # The profile-change and event keys the rules read (audiences.dependencies): the real-time
    # index from "what changed" to the audiences worth re-evaluating.
    dependencies = models.JSONField(default=list, blank=True)
    is_time_based = models.BooleanField(default=False)
    size = models.PositiveIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_entered = models.PositiveIntegerField(default=0)
    last_run_exited = models.PositiveIntegerField(default=0)
    last_run_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint("workspace", "name", name="audience_name_unique")]
        indexes = [models.Index(fields=["workspace", "next_run_at"], name="audience_ws_next_run")]

    def __str__(self):
        return self.name


class Membership(TenantModel):
    class Source(models.TextChoices):
        RECALCULATION = "recalculation", "Recalculation"
        REALTIME = "realtime", "Real time"
        LIST = "list", "Uploaded list"
        API = "api", "API"
        MERGE = "merge", "Customers merged"

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("profiles.Customer", on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField(default=now)
    source = models.CharField(max_length=16, choices=Source.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint("workspace", "audience", "customer", name="membership_unique")
        ]
        indexes = [
            models.Index(fields=["workspace", "customer"], name="membership_ws_customer"),
            models.Index(fields=["workspace", "audience", "-id"], name="membership_ws_audience_id"),
        ]


class MembershipChange(TenantModel):
    """Every enter and exit, written by `audiences.membership` in the same transaction as the
    membership change: the feed that journeys, push topics and incremental destination syncs
    read. Rows keep the customer's id, never personal data, and outlive the customer.

    The table also has a column `xid` (xid8, the writing transaction's id, set by its default
    and unknown to the ORM): feed readers order by (xid, id) and stop below the oldest
    transaction still running, so a row that commits late is never skipped (`masivo.feeds`).
    """

    class Kind(models.TextChoices):
        ENTER = "enter", "Entered"
        EXIT = "exit", "Exited"

    class Source(models.TextChoices):
        RECALCULATION = "recalculation", "Recalculation"
        REALTIME = "realtime", "Real time"
        LIST = "list", "List members added or removed"
        UPLOAD = "upload", "List upload"
        REMOVAL = "removal", "Customer removed"
        MERGE = "merge", "Customers merged"

    class Reason(models.TextChoices):
        MATCHES = "matches", "Matches the rules"
        NO_LONGER_MATCHES = "no_longer_matches", "No longer matches the rules"
        ADDED = "added", "Added to the list"
        REMOVED = "removed", "Removed from the list"
        DELETED = "deleted", "Customer deleted"
        ERASED = "erased", "Customer erased"
        MERGED = "merged", "Merged into another customer"

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="+")
    customer_id = models.BigIntegerField()
    kind = models.CharField(max_length=5, choices=Kind.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    # Who asked, for list changes made by a person or an API key ("dashboard:…", "api:…").
    actor = models.CharField(max_length=100, blank=True)
    recalculation_id = models.BigIntegerField(null=True, blank=True)
    upload_id = models.BigIntegerField(null=True, blank=True)
    changed_at = models.DateTimeField(default=now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "audience", "id"], name="change_ws_audience_id")
        ]


class Recalculation(Job):
    """One run of an audience's rules (a job: see masivo.jobs)."""

    STALL_AFTER = timedelta(minutes=10)  # one statement; at 10M customers it takes ~30 s

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (a newer version exists)"

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    reason = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    size = models.PositiveIntegerField(null=True, blank=True)
    entered = models.PositiveIntegerField(null=True, blank=True)
    exited = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "audience", "-id"], name="recalc_ws_audience")]

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None


class ListUpload(Job):
    """A CSV of customer identifiers added to an uploaded-list audience, in the background (a
    job: see masivo.jobs; `next_row` is its checkpoint)."""

    class Identifier(models.TextChoices):
        EXTERNAL_ID = "external_id", "External id"
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"

    Status = JobStatus

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(max_length=255)
    identifier = models.CharField(max_length=12, choices=Identifier.choices)
    create_missing = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    size_bytes = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    next_row = models.PositiveIntegerField(default=0, help_text="rows of the file already handled")
    rows_added = models.PositiveIntegerField(default=0)
    rows_already = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_unmatched = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    created_by = models.CharField(max_length=100)

    @property
    def progress(self) -> float:
        if self.status == self.Status.SUCCEEDED:
            return 1.0
        return round(self.bytes_done / self.size_bytes, 4) if self.size_bytes else 0.0


class ListUploadChunk(TenantModel):
    upload = models.ForeignKey(ListUpload, on_delete=models.CASCADE, related_name="+")
    sequence = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint("workspace", "upload", "sequence", name="list_chunk_unique")
        ]


class ListUploadProblem(TenantModel):
    """A row that added no one: an invalid identifier, or no customer with it."""

    upload = models.ForeignKey(ListUpload, on_delete=models.CASCADE, related_name="problems")
    row_number = models.PositiveIntegerField()
    value = models.CharField(max_length=255)
    reason = models.CharField(max_length=200)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "upload", "row_number"], name="list_problem_row")
        ]
