"""A workspace's connected destinations: one row per account at an external tool."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from masivo.secrets import EncryptedJSONField
from masivo.tenancy.managers import TenantModel


class DestinationKind(models.TextChoices):
    META = "meta", "Meta Custom Audiences"
    META_CAPI = "meta_capi", "Meta Conversions API"
    GOOGLE_ADS = "google_ads", "Google Ads Customer Match"
    TIKTOK = "tiktok", "TikTok audiences"
    TIKTOK_EVENTS = "tiktok_events", "TikTok Events API"
    BRAZE = "braze", "Braze"
    WEBHOOK = "webhook", "Webhooks"
    S3 = "s3", "Amazon S3"
    GA4 = "ga4", "Google Analytics 4"


class Destination(TenantModel):
    """An account at an external tool that audiences sync to and/or events forward to.

    `config` holds what the API shows (ad account, cluster URL, bucket…); `credentials` are
    encrypted at rest and only `credential_hints` (the last characters) are ever shown again.
    `key` is the stable name used for vendor consent (`consent.vendors.<key>`): by default the
    kind, unique per workspace. `forwarding` holds the near-real-time settings: whether it is
    on, which event names and which traits go (see destinations.forwarding).
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DISABLED = "disabled", "Disabled"

    kind = models.CharField(max_length=20, choices=DestinationKind.choices)
    name = models.CharField(max_length=200)
    key = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    disabled_reason = models.TextField(blank=True)
    config = models.JSONField(default=dict)
    credentials = EncryptedJSONField(null=True)
    credential_hints = models.JSONField(default=dict)
    forwarding = models.JSONField(default=dict)
    # Requests a second at most (a token bucket in Redis); None: the kind's default.
    rate_limit_per_second = models.PositiveIntegerField(null=True, blank=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True)
    last_test_detail = models.TextField(blank=True)
    created_by = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="destination_key_unique")
        ]
        indexes = [models.Index(fields=["workspace", "kind"], name="destination_ws_kind")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE
