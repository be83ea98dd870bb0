"""The workspace policy's function in a scalar sub-select, evaluated once per statement.

Re-creates the policy on every table that has it; tables created by later migrations get the
same predicate from `EnableWorkspaceRLS`.
"""

from django.db import migrations

from masivo.tenancy.rls import RecreateWorkspacePolicies


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0002_invitations")]

    operations = [RecreateWorkspacePolicies()]
