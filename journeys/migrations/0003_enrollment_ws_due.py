"""The due-enrollment index gets the workspace first: each workspace's tick claims from its own
queue instead of walking every workspace's due rows. Built and dropped concurrently (writes to
enrollments go on meanwhile), so outside a transaction."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("journeys", "0002_version_revision"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="enrollment",
            index=models.Index(
                condition=models.Q(("state__in", ["active", "waiting"])),
                fields=["workspace", "next_run_at"],
                name="enrollment_ws_due",
            ),
        ),
        RemoveIndexConcurrently(model_name="enrollment", name="enrollment_due"),
    ]
