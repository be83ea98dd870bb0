"""Workspaces get an event retention; message-id dedupe gets its own table
(`profiles_eventmessageid`), which the partitioned events (0008) need: a unique key on a table
partitioned by month would have to include `occurred_at`."""

import django.db.models.deletion
import django.db.models.manager
from django.db import migrations, models

from masivo.tenancy.rls import EnableWorkspaceRLS


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0006_import_jobs"),
        ("tenancy", "0003_policy_initplan"),
    ]

    operations = [
        migrations.AddField(
            model_name="profilesettings",
            name="event_retention_days",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="EventMessageId",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("message_id", models.CharField(max_length=255)),
                ("seen_at", models.DateTimeField()),
                (
                    "workspace",
                    models.ForeignKey(
                        db_index=False,
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
            options={
                "indexes": [
                    models.Index(fields=["workspace", "seen_at"], name="event_message_id_seen")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        models.F("workspace"), models.F("message_id"), name="event_message_id_once"
                    )
                ],
            },
        ),
        EnableWorkspaceRLS("profiles_eventmessageid"),
    ]
