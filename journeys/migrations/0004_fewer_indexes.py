"""The tick's two hottest tables drop single-column indexes that a composite starting with the
workspace already serves (RLS names the workspace in every query): the step log keeps its
unique (workspace, enrollment, step, visit), enrollments their (workspace, customer, journey)
and (workspace, journey, state). Each move of the tick writes three fewer index entries."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0003_enrollment_ws_due"),
        ("tenancy", "0003_policy_initplan"),
    ]

    operations = [
        migrations.AlterField(
            model_name="enrollment",
            name="journey",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="journeys.journey",
            ),
        ),
        migrations.AlterField(
            model_name="enrollment",
            name="workspace",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="tenancy.workspace",
            ),
        ),
        migrations.AlterField(
            model_name="steprun",
            name="enrollment",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="steps",
                to="journeys.enrollment",
            ),
        ),
        migrations.AlterField(
            model_name="steprun",
            name="workspace",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="tenancy.workspace",
            ),
        ),
    ]
