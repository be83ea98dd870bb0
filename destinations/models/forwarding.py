"""Near-real-time forwarding: batches of feed rows on their way to one destination.

The forwarder reads the feeds (processed events, profile changes, membership changes) with a
cursor per destination, and in the same short transaction writes what it read as a
`ForwardBatch` of references (event ids, customer ids) and advances the cursors. Sending
happens after commit, outside any transaction: a batch is delivered at least once, in order
per destination, each item with a stable dedupe id (`event_id`, `webhook-id`) so a retry is
harmless. Payloads are built at send time, so a customer erased meanwhile is not sent.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from destinations.models.destinations import Destination
from masivo.tenancy.managers import TenantModel


class ForwardBatch(TenantModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        DEAD = "dead", "Dead letter (retry budget spent; replay to send again)"

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # [{"type": "event", "id": …, "customer_id": …, "name": …, "occurred_at": …}
    #  | {"type": "profile", "id": <change id>, "customer_id": …, "kind": …, "keys": [...]}
    #  | {"type": "membership", "id": <change id>, "customer_id": …, "audience_id": …,
    #     "kind": "enter" | "exit"}]
    items = models.JSONField(default=list)
    size = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True)
    sent_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["workspace", "destination", "id"],
                name="fwdbatch_pending",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["workspace", "destination", "-id"], name="fwdbatch_ws_dest"),
        ]


class RemoteContact(TenantModel):
    """Who a destination knows, by the id it knows them by (Braze's `external_id`): recorded
    when first sent, so erasure can send the deletion signal after the profile is gone."""

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="+")
    customer_id = models.BigIntegerField()
    remote_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "destination", "customer_id"], name="remotecontact_unique"
            )
        ]
