"""Event exports by day to S3 destinations (destinations.models.exports)."""

import django.db.models.deletion
import django.db.models.manager
import django.utils.timezone
from django.db import migrations, models

from masivo.tenancy.rls import EnableWorkspaceRLS


class Migration(migrations.Migration):
    dependencies = [("destinations", "0002_webhooks")]

    operations = [
        migrations.CreateModel(
            name="EventExport",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("error", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                ("retry_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("day", models.DateField()),
                ("event_names", models.JSONField(default=list)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                        ],
                        default="queued",
                        max_length=10,
                    ),
                ),
                ("rows", models.PositiveBigIntegerField(default=0)),
                ("objects_written", models.PositiveIntegerField(default=0)),
                ("checkpoint", models.BigIntegerField(default=0)),
                ("parts", models.JSONField(default=list)),
                ("manifest_key", models.CharField(blank=True, max_length=1100)),
                ("created_by", models.CharField(blank=True, max_length=100)),
                (
                    "destination",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="event_exports",
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
            managers=[
                ("objects", django.db.models.manager.Manager()),
                ("all_objects", django.db.models.manager.Manager()),
            ],
        ),
        migrations.AddIndex(
            model_name="eventexport",
            index=models.Index(
                fields=["workspace", "destination", "-day"], name="eventexport_ws_dest"
            ),
        ),
        migrations.AddConstraint(
            model_name="eventexport",
            constraint=models.UniqueConstraint(
                fields=("workspace", "destination", "day"), name="eventexport_one_per_day"
            ),
        ),
        EnableWorkspaceRLS("destinations_eventexport"),
    ]
