"""Webhook deliveries: one row per item (event, profile change, membership change) per
webhook endpoint, sent and retried by destinations.webhooks.

An endpoint is a `Destination` of kind `webhook`. The forwarder hands items to the webhook
connector, which records a delivery each (`webhook_id` derived from the item's dedupe id, so
an item forwarded twice is one delivery); the sender claims due deliveries, sends them outside
any transaction and records each attempt. `attempting` is a claim: `claimed_at` is its token,
and a claim older than the stall timeout (a worker that died mid-send) is claimed again.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from destinations.models.destinations import Destination
from masivo.tenancy.managers import TenantModel


class WebhookDelivery(TenantModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ATTEMPTING = "attempting", "Attempting"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (will retry)"
        DEAD = "dead", "Dead (retries spent; replay to send again)"

    destination = models.ForeignKey(
        Destination, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    webhook_id = models.CharField(max_length=64)  # the `webhook-id` header, stable
    topic = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_response = models.TextField(blank=True)  # the first 1 KB of the last answer's body
    # [{"at": iso, "status_code": int | None, "duration_ms": int, "error": str}], oldest first.
    history = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "destination", "webhook_id"], name="webhookdelivery_unique"
            )
        ]
        indexes = [
            models.Index(
                fields=["workspace", "destination", "next_attempt_at"],
                name="webhookdelivery_due",
                condition=models.Q(status__in=["pending", "failed", "attempting"]),
            ),
            models.Index(
                fields=["workspace", "destination", "-id"], name="webhookdelivery_ws_dest"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} ({self.topic}) → destination {self.destination_id}"
