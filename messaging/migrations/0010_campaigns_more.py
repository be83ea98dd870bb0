from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("messaging", "0009_campaigns")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="snapshotted_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
