"""Reserved for S3 event exports (the S3 helper)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("destinations", "0002_webhooks")]

    operations = []
