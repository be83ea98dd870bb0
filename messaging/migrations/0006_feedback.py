# Delivery feedback: a per-connection token naming the connection in webhook URLs
# (/m/webhooks/sendgrid/<token>). Existing connections get theirs when first shown or used
# (messaging.feedback.urls.webhook_token_of).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0005_sending"),
    ]

    operations = [
        migrations.AddField(
            model_name="channelconnection",
            name="webhook_token",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
