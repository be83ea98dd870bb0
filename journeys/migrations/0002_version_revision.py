"""A version's `revision`: +1 with each change of a draft's graph, so an edit made from an older
one is refused instead of overwriting. The existing versions start at 1."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0001_journeys"),
    ]

    operations = [
        migrations.AddField(
            model_name="journeyversion",
            name="revision",
            field=models.PositiveIntegerField(db_default=1, default=1),
        ),
    ]
