"""Customers, their identities, consent, devices and events."""

from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.timezone import now

from masivo.jobs import Job, JobStatus
from masivo.tenancy.managers import TenantModel


class ConsentPurpose(models.TextChoices):
    EMAIL_MARKETING = "email_marketing", "Email marketing"
    PUSH_NOTIFICATIONS = "push_notifications", "Push notifications"
    WHATSAPP_MARKETING = "whatsapp_marketing", "WhatsApp marketing"
    SMS_MARKETING = "sms_marketing", "SMS marketing"
    ADVERTISING = "advertising", "Advertising audiences"
    BEHAVIORAL_CAMPAIGNS = "behavioral_campaigns", "Behavioral campaigns"
    LINK_TRACKING = "link_tracking", "Link tracking"


class ConsentStatus(models.TextChoices):
    GRANTED = "granted", "Granted"
    DENIED = "denied", "Denied"


class ProfileSettings(TenantModel):
    """Per-workspace settings for profiles and ingestion (one row, created on first use)."""

    class ConsentRegime(models.TextChoices):
        OPT_OUT = "opt_out", "Not recorded means allowed (opt-out)"
        OPT_IN = "opt_in", "Not recorded means denied (opt-in)"

    consent_regime = models.CharField(
        max_length=8, choices=ConsentRegime.choices, default=ConsentRegime.OPT_IN
    )
    purchase_event_names = models.JSONField(default=list)
    purchase_value_properties = models.JSONField(default=list)
    device_token_ttl_days = models.PositiveIntegerField(default=270)
    max_identities_per_customer = models.PositiveIntegerField(default=100)
    # Events older than this many days (by occurred_at) are deleted; None keeps them all
    # (profiles/retention.py; the platform cap MASIVO_EVENT_RETENTION_MAX_DAYS applies on top).
    event_retention_days = models.PositiveIntegerField(null=True, blank=True)
    # With it, a destination whose vendor has no recorded decision may not receive a customer
    # (strict, as TCF-style consent expects); without it, only a recorded denial stops them.
    vendor_consent_required = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [models.UniqueConstraint("workspace", name="profile_settings_one_per_ws")]


class Customer(TenantModel):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"

    class Gender(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        NON_BINARY = "non_binary", "Non-binary"
        OTHER = "other", "Other"
        UNKNOWN = "unknown", "Prefer not to say"

    external_id = models.CharField(max_length=255, null=True, blank=True)
    email = models.CharField(max_length=254, null=True, blank=True)
    phone = models.CharField(max_length=20, null=True, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    # Upper-cased copies for case-insensitive name search with starts_with() (profiles.lookups).
    first_name_upper = models.GeneratedField(
        expression=Upper("first_name"),
        output_field=models.CharField(max_length=100),
        db_persist=True,
    )
    last_name_upper = models.GeneratedField(
        expression=Upper("last_name"),
        output_field=models.CharField(max_length=100),
        db_persist=True,
    )
    gender = models.CharField(max_length=12, choices=Gender.choices, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    country = models.CharField(max_length=2, blank=True)
    city = models.CharField(max_length=100, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    tier = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    is_anonymous = models.BooleanField(default=False)
    tags = models.JSONField(default=dict, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    consent = models.JSONField(
        default=dict,
        blank=True,
        help_text="purpose → {status, at, source}; history in ConsentChange",
    )
    # Per-vendor decisions: destination key → {status, at, source} (profiles.consent), and
    # the raw consent string a CMP gave (an IAB TCF string, say), kept with its version and
    # never decoded here.
    consent_vendors = models.JSONField(default=dict, blank=True, db_default={})
    consent_string = models.TextField(blank=True, default="", db_default="")
    consent_string_version = models.CharField(max_length=20, blank=True, default="", db_default="")
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    # Metrics, kept current by the ingestion follow-up (profiles.metrics).
    purchase_count = models.PositiveIntegerField(default=0)
    purchase_total = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    last_purchase_at = models.DateTimeField(null=True, blank=True)
    purchases_30d_count = models.PositiveIntegerField(default=0)
    purchases_30d_total = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    purchases_month_count = models.PositiveIntegerField(default=0)
    purchases_month_total = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    metrics_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "workspace",
                "external_id",
                condition=Q(external_id__isnull=False),
                name="customer_external_id_unique",
            ),
            models.UniqueConstraint(
                "workspace", "email", condition=Q(email__isnull=False), name="customer_email_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-updated_at", "-id"], name="customer_ws_updated"),
            # Prefix search (customers list): LIKE 'term%' needs pattern operator classes.
            models.Index(
                fields=["workspace", "email"], opclasses=["int8_ops", "varchar_pattern_ops"],
                name="customer_ws_email_prefix",
            ),
            models.Index(
                fields=["workspace", "phone"], opclasses=["int8_ops", "varchar_pattern_ops"],
                name="customer_ws_phone_prefix",
            ),
            models.Index(
                fields=["workspace", "first_name_upper"],
                opclasses=["int8_ops", "varchar_pattern_ops"],
                name="customer_ws_first_upper",
            ),
            models.Index(
                fields=["workspace", "last_name_upper"],
                opclasses=["int8_ops", "varchar_pattern_ops"],
                name="customer_ws_last_upper",
            ),
            models.Index(
                fields=["workspace", "country", "-updated_at", "-id"], name="customer_ws_country"
            ),
        ]  # fmt: skip

    def __str__(self):
        return self.email or self.external_id or f"customer {self.id}"

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.external_id or f"Customer {self.id}"


class Identity(TenantModel):
    """Another id that resolves to a customer: an anonymous id, or a former external id (alias)."""

    class Kind(models.TextChoices):
        ANONYMOUS_ID = "anonymous_id", "Anonymous id"
        ALIAS = "alias", "Alias (a former user id)"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint("workspace", "kind", "value", name="identity_unique")
        ]
        indexes = [models.Index(fields=["workspace", "customer"], name="identity_ws_customer")]


class ConsentChange(TenantModel):
    """Append-only history of consent decisions: a purpose's; a vendor's (`purpose` is
    `vendor`, the destination key in `vendor`); or the consent string's (`purpose` is
    `consent_string`, `status` null, its version in `consent_string_version`, empty when the
    string was cleared). The string itself is kept on the customer only."""

    VENDOR = "vendor"
    CONSENT_STRING = "consent_string"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(
        max_length=24,
        choices=[*ConsentPurpose.choices, (VENDOR, "Vendor"), (CONSENT_STRING, "Consent string")],
    )
    vendor = models.CharField(max_length=64, blank=True, default="", db_default="")
    consent_string_version = models.CharField(max_length=20, blank=True, default="", db_default="")
    status = models.CharField(max_length=8, choices=ConsentStatus.choices, null=True, blank=True)
    source = models.CharField(max_length=100)
    changed_at = models.DateTimeField(default=now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "customer", "-changed_at"], name="consent_ws_cust")
        ]


class Device(TenantModel):
    class Platform(models.TextChoices):
        ANDROID = "android", "Android"
        IOS = "ios", "iOS"
        WEB = "web", "Web"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="devices")
    token = models.CharField(max_length=4096)
    platform = models.CharField(max_length=8, choices=Platform.choices)
    model = models.CharField(max_length=100, blank=True)
    os_version = models.CharField(max_length=50, blank=True)
    push_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint("workspace", "token", name="device_token_unique")]
        indexes = [models.Index(fields=["workspace", "customer"], name="device_ws_customer")]

    @property
    def is_active(self) -> bool:
        return self.push_enabled and self.expires_at > now()


class Event(TenantModel):
    """Append-only. `processed_at` is set by the ingestion follow-up; a sweep retries the rest.

    In the database the table is partitioned by month of `occurred_at` (profiles/partitions.py)
    and its primary key is (id, occurred_at); Django still sees `id` as the key, and ids stay
    unique (one sequence). A message id is stored once per dedupe window: `EventMessageId`.
    """

    class Type(models.TextChoices):
        TRACK = "track", "Track"
        IDENTIFY = "identify", "Identify"
        PAGE = "page", "Page"
        SCREEN = "screen", "Screen"
        GROUP = "group", "Group"
        ALIAS = "alias", "Alias"

    # Every index below starts with workspace_id: a single-column one would only cost each insert.
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    type = models.CharField(max_length=8, choices=Type.choices, default=Type.TRACK)
    name = models.CharField(max_length=200)
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=now)
    message_id = models.CharField(max_length=255)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    user_id = models.CharField(max_length=255, blank=True)
    anonymous_id = models.CharField(max_length=255, blank=True)
    context = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=16)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["workspace", "customer", "-occurred_at"], name="event_ws_customer_time"
            ),
            models.Index(fields=["workspace", "name", "-occurred_at"], name="event_ws_name_time"),
            # Real time's per-customer event conditions (BENCHMARKS.md: 3-4x for batches).
            models.Index(
                fields=["workspace", "customer", "name", "occurred_at"],
                name="event_ws_customer_name_time",
            ),
            models.Index(
                fields=["workspace", "anonymous_id"],
                condition=Q(customer__isnull=True) & ~Q(anonymous_id=""),
                name="event_ws_anonymous",
            ),
            models.Index(
                fields=["workspace", "received_at"],
                condition=Q(processed_at__isnull=True),
                name="event_ws_unprocessed",
            ),
        ]


class EventMessageId(TenantModel):
    """A message id stored in the event log, kept for the dedupe window
    (MASIVO_EVENT_DEDUPE_WINDOW_DAYS): a replay within it is skipped, an older one stored again.
    A unique index on the partitioned events would have to include `occurred_at`, so it lives here.
    """

    # The unique (workspace, message_id) index serves the foreign key too: one index less to
    # write per stored event, and lookups by message id cannot pick the workspace-only index.
    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    message_id = models.CharField(max_length=255)
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint("workspace", "message_id", name="event_message_id_once")
        ]
        indexes = [models.Index(fields=["workspace", "seen_at"], name="event_message_id_seen")]


class CustomerMerge(TenantModel):
    """Audit of one profile folded into another (identify of an anonymous profile, alias)."""

    winner = models.ForeignKey(Customer, null=True, on_delete=models.SET_NULL, related_name="+")
    loser_id = models.BigIntegerField()
    loser_snapshot = models.JSONField()
    reason = models.CharField(max_length=100)
    actor = models.CharField(max_length=100)
    merged_at = models.DateTimeField(default=now)


class ErasureTombstone(TenantModel):
    """An erased identifier (hashed): late events carrying it are dropped, not re-created."""

    identifier_hash = models.CharField(max_length=64)
    erased_at = models.DateTimeField(default=now)
    erased_by = models.CharField(max_length=100)
    customer_id_was = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint("workspace", "identifier_hash", name="tombstone_unique")
        ]


class CustomerImport(Job):
    """A CSV of customers being upserted in batches (a job: see masivo.jobs; `next_row` is its
    checkpoint)."""

    STALL_AFTER = timedelta(minutes=5)  # a batch of 1,000 rows, or ANALYZE as the table grows

    Status = JobStatus

    filename = models.CharField(max_length=255)
    mapping = models.JSONField(help_text="CSV column → target (field, traits.x, tags.x, consent.p)")
    match_by = models.CharField(max_length=16, default="external_id")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    size_bytes = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    next_row = models.PositiveIntegerField(default=0, help_text="data rows already handled")
    rows_created = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_failed = models.PositiveIntegerField(default=0)
    created_by = models.CharField(max_length=100)

    @property
    def progress(self) -> float:
        if self.status == self.Status.SUCCEEDED:
            return 1.0
        return round(self.bytes_done / self.size_bytes, 4) if self.size_bytes else 0.0


class CustomerImportChunk(TenantModel):
    """The uploaded file, in order, in the database: every worker can read it."""

    customer_import = models.ForeignKey(CustomerImport, on_delete=models.CASCADE, related_name="+")
    sequence = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "workspace", "customer_import", "sequence", name="import_chunk_unique"
            )
        ]


class CustomerImportError(TenantModel):
    customer_import = models.ForeignKey(
        CustomerImport, on_delete=models.CASCADE, related_name="errors"
    )
    row_number = models.PositiveIntegerField(help_text="1 = the first data row")
    field = models.CharField(max_length=255, blank=True)
    message = models.CharField(max_length=500)

    class Meta:
        indexes = [
            models.Index(
                fields=["workspace", "customer_import", "row_number"], name="import_err_row"
            )
        ]


class ProcessedEvent(TenantModel):
    """The processed-event feed: one row per event the ingestion follow-up has resolved (who
    it is about is known), written in the follow-up's transaction, only while some consumer
    follows the workspace's feed (destinations forwarding events; journeys' waits). Rows hold
    references, never personal data; the event itself stays in `Event`. Like the other feeds
    the table has an `xid` column (xid8) for late-commit-safe readers (masivo.feeds).
    """

    event_id = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    customer_id = models.BigIntegerField(null=True)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=8)
    processed_at = models.DateTimeField(default=now)


class ProfileChange(TenantModel):
    """What changed about a customer, written in the same transaction as the change: the
    profile-change feed. The ingestion follow-up consumes it (NULL `processed_at` is its
    outbox) to re-evaluate real-time audiences; destinations and journeys read it as a feed.

    `keys` are dependency keys (`profiles.changes`): `field:<column>`, `traits:<top-level key>`,
    `tags:<key>`, `consent:<purpose>`, `device`, `metrics`, or `*` (anything may have changed:
    a new or merged customer). Rows keep the customer's id, never personal data, and outlive
    the customer. Like the membership change log, the table has an `xid` column (xid8) for
    late-commit-safe feed readers.
    """

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        MERGED = "merged", "Merged (the winner; the loser has a 'merged_away' row)"
        MERGED_AWAY = "merged_away", "Merged into another customer"
        DELETED = "deleted", "Deleted"
        ERASED = "erased", "Erased"

    customer_id = models.BigIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    keys = models.JSONField(default=list)
    source = models.CharField(max_length=16)
    changed_at = models.DateTimeField(default=now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["workspace", "changed_at"],
                name="profilechange_unprocessed",
                condition=models.Q(processed_at__isnull=True),
            ),
            models.Index(fields=["workspace", "customer_id", "id"], name="profilechange_customer"),
        ]
