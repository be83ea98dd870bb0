"""Reserved for webhook deliveries (the webhooks helper)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("destinations", "0001_destinations_core")]

    operations = []
