"""Webhook deliveries (destinations.models.webhooks)."""

import django.db.models.deletion
import django.db.models.manager
import django.utils.timezone
from django.db import migrations, models

from masivo.tenancy.rls import EnableWorkspaceRLS


class Migration(migrations.Migration):
    dependencies = [("destinations", "0001_destinations_core")]

    operations = [
        migrations.CreateModel(
            name="WebhookDelivery",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("webhook_id", models.CharField(max_length=64)),
                ("topic", models.CharField(max_length=40)),
                ("payload", models.JSONField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("attempting", "Attempting"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed (will retry)"),
                            ("dead", "Dead (retries spent; replay to send again)"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                (
                    "next_attempt_at",
                    models.DateTimeField(blank=True, default=django.utils.timezone.now, null=True),
                ),
                ("claimed_at", models.DateTimeField(blank=True, null=True)),
                ("last_status_code", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True)),
                ("last_response", models.TextField(blank=True)),
                ("history", models.JSONField(default=list)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("delivered_at", models.DateTimeField(blank=True, null=True)),
                (
                    "destination",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="webhook_deliveries",
                        to="destinations.destination",
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.workspace",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        condition=models.Q(("status__in", ["pending", "failed", "attempting"])),
                        fields=["workspace", "destination", "next_attempt_at"],
                        name="webhookdelivery_due",
                    ),
                    models.Index(
                        fields=["workspace", "destination", "-id"],
                        name="webhookdelivery_ws_dest",
                    ),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("workspace", "destination", "webhook_id"),
                        name="webhookdelivery_unique",
                    )
                ],
            },
            managers=[
                ("objects", django.db.models.manager.Manager()),
                ("all_objects", django.db.models.manager.Manager()),
            ],
        ),
        EnableWorkspaceRLS("destinations_webhookdelivery"),
    ]
