# Reserved for the policy work: its model changes go here (operations), so that parallel work
# on messaging never forks the migration graph. Empty until then.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0003_templates"),
    ]

    operations = []
