from django.db import models
from django.db.models import Q
from django.utils import timezone

from masivo.tenancy.managers import TenantModel


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    PUSH = "push", "Push"
    WHATSAPP = "whatsapp", "WhatsApp"
    SMS = "sms", "SMS"
    IN_APP = "in_app", "In-app"


class MessageKind(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    TRANSACTIONAL = "transactional", "Transactional"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    DEFERRED = "deferred", "Deferred"
    PAUSED = "paused", "Paused"  # pending, held by its paused campaign: never claimed
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    READ = "read", "Read"
    BOUNCED = "bounced", "Bounced"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed"
    UNKNOWN = "unknown", "Unknown"
    CANCELED = "canceled", "Canceled"


# Waiting for the sender: `due_at` says when.
PENDING_STATUSES = (MessageStatus.QUEUED, MessageStatus.DEFERRED)
# Handed over (or settled without a hand-over): the sender never touches these again.
FINAL_STATUSES = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.OPENED,
    MessageStatus.CLICKED,
    MessageStatus.READ,
    MessageStatus.BOUNCED,
    MessageStatus.FAILED,
    MessageStatus.SUPPRESSED,
    MessageStatus.UNKNOWN,
    MessageStatus.CANCELED,
)


class Message(TenantModel):
    """One recipient of one send. Written before any provider call, by messaging's one
    pipeline; `dedupe_key` (unique in the workspace) makes every send at most once:
    `campaign:<id>:<customer>`, `journey:<enrollment>:<step>:<visit>`, or `api:<Idempotency-Key>`.

    `decision` is the contact policy's answer in words (`sent`, `suppressed: no consent`,
    `deferred: quiet hours until 08:00 America/Mexico_City`) and `decision_code` the same as a
    code; `status_changes` hold the history, `status` the latest."""

    customer = models.ForeignKey("profiles.Customer", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=12, choices=Channel.choices)
    kind = models.CharField(max_length=16, choices=MessageKind.choices)
    dedupe_key = models.CharField(max_length=255)
    # Where the send came from: {"source": "api"}, {"source": "campaign", "campaign": 5},
    # {"source": "journey", "journey": 3, "enrollment": 9, "step": "welcome"}, {"source": "test"}.
    origin = models.JSONField(default=dict)
    campaign = models.ForeignKey(
        "messaging.Campaign",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="messages",
    )
    template = models.ForeignKey(
        "messaging.Template", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    template_version = models.ForeignKey(
        "messaging.TemplateVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    locale = models.CharField(max_length=35, blank=True)
    # The address chosen by the policy (email, E.164 phone); push and in-app resolve devices
    # and the app at hand-over.
    address = models.CharField(max_length=320, blank=True)
    # What rendering needs beyond the customer: the triggering event's properties, extra data.
    render_input = models.JSONField(default=dict, blank=True)
    # What was handed over (subject, bodies, push fields...), kept for the message log.
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=12, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    decision = models.CharField(max_length=200, blank=True)
    decision_code = models.CharField(max_length=32, blank=True)
    due_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    sending_at = models.DateTimeField(null=True, blank=True)
    # Set and committed just before the provider call of the claim that set `sending_at`:
    # recovery re-queues a stalled message without it (never handed over) and must not resend
    # one with it (it may have reached the provider).
    handover_at = models.DateTimeField(null=True, blank=True)
    provider = models.CharField(max_length=16, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "dedupe_key"], name="message_dedupe_key")
        ]
        indexes = [
            # The sender's claim: pending and due, oldest first.
            models.Index(
                fields=["due_at"],
                condition=Q(status__in=["queued", "deferred"]),
                name="message_pending_due",
            ),
            # Recovery of hand-overs a killed worker left behind.
            models.Index(
                fields=["sending_at"], condition=Q(status="sending"), name="message_sending"
            ),
            models.Index(fields=["workspace", "-created_at"], name="message_ws_created"),
            # A campaign's progress and stats.
            models.Index(
                fields=["workspace", "campaign", "status"],
                condition=Q(campaign__isnull=False),
                name="message_ws_campaign",
            ),
            # A customer's messages (profile page) and frequency caps (sent in a window).
            models.Index(fields=["workspace", "customer", "-created_at"], name="message_ws_cust"),
            # Delivery webhooks that name the provider's id.
            models.Index(
                fields=["workspace", "provider", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="message_ws_provider_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} message {self.id} ({self.status})"


class MessageStatusChange(TenantModel):
    """A message's status history, one row per change, with what said so (`detail`) and, for a
    provider's webhook, the provider's event id: a webhook delivered twice is recorded once."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="status_changes")
    status = models.CharField(max_length=12, choices=MessageStatus.choices)
    detail = models.CharField(max_length=500, blank=True)
    provider_event_id = models.CharField(max_length=128, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "provider_event_id"],
                condition=~Q(provider_event_id=""),
                name="message_status_provider_event",
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "message", "at"], name="message_status_ws_msg")
        ]
