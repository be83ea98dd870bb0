from django.db import models
from django.utils import timezone

from masivo.tenancy.managers import TenantModel
from messaging.models.messages import Channel


class Template(TenantModel):
    """A named message for one channel. Its content lives in versions: editing creates a new
    `TemplateVersion`, the newest is the one new sends use, and every message records the
    version it was rendered from."""

    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=12, choices=Channel.choices)
    description = models.TextField(blank=True)
    is_archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="messaging_template_name")
        ]

    def __str__(self) -> str:
        return self.name


class TemplateVersion(TenantModel):
    """One immutable version of a template's content.

    `content` is the default locale's fields for the channel (email: subject, preheader, html,
    text; push: title, body, image, deep_link, data; whatsapp: content_sid, variables; in_app:
    title, body, image, buttons, layout, expires_after_hours). `locales` maps a locale
    (`es-MX`, `es`) to the fields that differ for it."""

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    content = models.JSONField(default=dict)
    locales = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "template", "number"], name="messaging_template_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.number}"
