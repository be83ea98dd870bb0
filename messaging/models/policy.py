import datetime

from django.db import models
from django.utils import timezone

from masivo.tenancy.managers import TenantModel


def default_quiet_hours_channels() -> list[str]:
    return ["push", "whatsapp", "sms"]


class ContactPolicy(TenantModel):
    """A workspace's contact policy beyond consent (one row, created on first use).

    `frequency_caps`: `[{"channel": "email" | "*", "limit": 3, "window_hours": 24}]`, counted
    on messages sent to the customer; `*` counts every channel. Transactional messages are
    neither capped nor counted against marketing caps. Quiet hours are in the customer's
    timezone, the workspace's when the customer has none; `quiet_hours_action` defers the
    message to the end of quiet hours or skips it."""

    class QuietHoursAction(models.TextChoices):
        DEFER = "defer", "Defer to the end of quiet hours"
        SKIP = "skip", "Skip the message"

    frequency_caps = models.JSONField(default=list, blank=True)
    quiet_hours_enabled = models.BooleanField(default=False)
    quiet_hours_start = models.TimeField(default=datetime.time(21, 0))
    quiet_hours_end = models.TimeField(default=datetime.time(8, 0))
    quiet_hours_action = models.CharField(
        max_length=8, choices=QuietHoursAction.choices, default=QuietHoursAction.DEFER
    )
    quiet_hours_channels = models.JSONField(default=default_quiet_hours_channels, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint("workspace", name="contact_policy_one_per_ws")]


class Suppression(TenantModel):
    """An address never to send to on a channel (email addresses lower-cased, phones E.164).

    Hard bounces and invalid addresses block every kind of message, transactional included;
    spam reports, unsubscribes and manual entries block marketing."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        INVALID_ADDRESS = "invalid_address", "Invalid address"
        SPAM_REPORT = "spam_report", "Spam report"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
        MANUAL = "manual", "Added by hand"

    channel = models.CharField(max_length=12)
    address = models.CharField(max_length=320)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    source = models.CharField(max_length=100, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    message = models.ForeignKey(
        "messaging.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "channel", "address"], name="suppression_unique"
            )
        ]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="suppression_ws_created")]
