import secrets

from django.db import models
from django.utils import timezone

from masivo.secrets import EncryptedJSONField
from masivo.tenancy.managers import TenantModel


class ChannelConnection(TenantModel):
    """A workspace's account at a provider: one per provider. `settings` are shown by the API;
    `credentials` are encrypted at rest and only their `credential_hints` (the last
    characters) are ever shown again."""

    class Provider(models.TextChoices):
        SENDGRID = "sendgrid", "SendGrid"
        TWILIO = "twilio", "Twilio"
        FCM = "fcm", "Firebase Cloud Messaging"

    provider = models.CharField(max_length=16, choices=Provider.choices)
    settings = models.JSONField(default=dict)
    credentials = EncryptedJSONField()
    credential_hints = models.JSONField(default=dict)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True)
    last_test_detail = models.TextField(blank=True)
    connected_by = models.CharField(max_length=64, blank=True)
    # Names this connection in the provider's webhook URLs (/m/webhooks/sendgrid/<token>):
    # `<workspace id>-<40 random hex>`, so a request finds its workspace without a cross-tenant
    # lookup; the signature (not the token) is what proves a request genuine.
    webhook_token = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "provider"], name="messaging_connection_one_per_provider"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} connection"

    def save(self, *args, **kwargs):
        if not self.webhook_token and self.workspace_id:
            self.webhook_token = new_webhook_token(self.workspace_id)
        super().save(*args, **kwargs)


def new_webhook_token(workspace_id: int) -> str:
    return f"{workspace_id}-{secrets.token_hex(20)}"
