from django.db import models
from django.utils import timezone

from masivo.tenancy.managers import TenantModel
from messaging.models.messages import Channel, MessageKind


class Campaign(TenantModel):
    """A one-shot send of a template to one or more audiences (minus exclusions).

    Its recipients are snapshotted set-based when it starts (one message per customer, each
    with the contact policy's decision, dedupe key `campaign:<id>:<customer>`), then the send
    pipeline hands them over. `variants` is `[{"name": "A", "template_id": 3, "weight": 50},
    ...]` (one variant: no A/B test); a customer's variant is fixed by a hash of their id.
    `send_at` is the instant to start (None: when started by hand); with `local_time`, each
    customer gets it at that wall-clock time on `local_date` in their own time zone (the
    workspace's when they have none). `throttle_per_minute` spreads the hand-overs. With
    `send_to_topic` (push only) one send goes to the audience's FCM topic, without
    per-customer personalization or policy."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELED = "canceled", "Canceled"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=12, choices=Channel.choices)
    kind = models.CharField(
        max_length=16, choices=MessageKind.choices, default=MessageKind.MARKETING
    )
    audience_ids = models.JSONField(default=list)
    excluded_audience_ids = models.JSONField(default=list, blank=True)
    variants = models.JSONField(default=list)
    send_to_topic = models.BooleanField(default=False)
    send_at = models.DateTimeField(null=True, blank=True)
    local_date = models.DateField(null=True, blank=True)
    local_time = models.TimeField(null=True, blank=True)
    throttle_per_minute = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    recipients = models.PositiveIntegerField(default=0)
    decision_counts = models.JSONField(default=dict, blank=True)
    topic_message_id = models.CharField(max_length=255, blank=True)
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # When the recipients' snapshot committed; a `sending` campaign without it is still being
    # snapshotted (or its start crashed: the tick starts it again once `updated_at`, the start's
    # lease, is stale).
    snapshotted_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="campaign_ws_created"),
            models.Index(
                fields=["send_at"],
                condition=models.Q(status="scheduled"),
                name="campaign_scheduled_due",
            ),
        ]

    def __str__(self) -> str:
        return self.name
