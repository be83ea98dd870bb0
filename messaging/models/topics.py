from django.db import models
from django.utils import timezone

from masivo.tenancy.managers import TenantModel


class AudienceTopic(TenantModel):
    """An audience whose members' push devices are kept subscribed to an FCM topic
    (`{workspace}_audience_{audience}`), so a campaign can reach them with one send.

    `audience_id` is not a foreign key: when the audience is deleted the topic's devices still
    have to be unsubscribed (the sweep does it). `backfill_after` is the checkpoint of the
    first subscription of the members the audience already had (a customer id; `backfilled_at`
    set once done); changes after the topic was made come from the membership feed."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REMOVING = "removing", "Removing"

    audience_id = models.BigIntegerField()
    topic = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    backfill_after = models.BigIntegerField(default=0)
    backfilled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "audience_id"], name="messaging_topic_one_per_audience"
            )
        ]

    def __str__(self) -> str:
        return self.topic


class TopicSubscription(TenantModel):
    """A device token subscribed to a topic at FCM, as far as Masivo knows. `customer_id` and
    `token` are copies, not foreign keys: a removed device or an erased customer must still be
    unsubscribed."""

    topic = models.ForeignKey(AudienceTopic, on_delete=models.CASCADE, related_name="subscriptions")
    customer_id = models.BigIntegerField()
    token = models.CharField(max_length=4096)
    subscribed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "topic", "token"], name="messaging_topic_subscription"
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "customer_id"], name="topic_subscription_ws_cust")
        ]
