# The sending work: the hand-over marker that lets recovery tell a message a killed worker
# never handed over (claim it again) from one that may have reached the provider.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0004_policy"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="handover_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
