"""The change log becomes a feed: typed source and reason, the cause's id, the writing
transaction's id for late-commit-safe readers, and sizes made exact once."""

from django.db import migrations, models

_BACKFILL = """
SELECT set_config('masivo.all_workspaces', 'on', true);  -- every workspace's rows (RLS)
UPDATE audiences_membershipchange SET
    actor = CASE WHEN source IN ('recalculation', 'realtime', 'list') THEN '' ELSE left(source, 100) END,
    source = CASE source WHEN 'recalculation' THEN 'recalculation' WHEN 'realtime' THEN 'realtime'
                         WHEN 'list' THEN 'upload' ELSE 'list' END,
    reason = CASE
        WHEN source IN ('recalculation', 'realtime') AND kind = 'enter' THEN 'matches'
        WHEN source IN ('recalculation', 'realtime') THEN 'no_longer_matches'
        WHEN kind = 'enter' THEN 'added'
        ELSE 'removed' END;
UPDATE audiences_audience a SET size = (
    SELECT count(*) FROM audiences_membership m
     WHERE m.workspace_id = a.workspace_id AND m.audience_id = a.id);
"""


class Migration(migrations.Migration):
    dependencies = [("audiences", "0003_change_source_and_member_index")]

    operations = [
        migrations.AddField(
            model_name="membershipchange",
            name="reason",
            field=models.CharField(default="", max_length=20),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="membershipchange",
            name="actor",
            field=models.CharField(blank=True, default="", max_length=100),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="membershipchange",
            name="recalculation_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="membershipchange",
            name="upload_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunSQL(_BACKFILL, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="membershipchange",
            name="source",
            field=models.CharField(
                choices=[
                    ("recalculation", "Recalculation"),
                    ("realtime", "Real time"),
                    ("list", "List members added or removed"),
                    ("upload", "List upload"),
                    ("removal", "Customer removed"),
                    ("merge", "Customers merged"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="membershipchange",
            name="reason",
            field=models.CharField(
                choices=[
                    ("matches", "Matches the rules"),
                    ("no_longer_matches", "No longer matches the rules"),
                    ("added", "Added to the list"),
                    ("removed", "Removed from the list"),
                    ("deleted", "Customer deleted"),
                    ("erased", "Customer erased"),
                    ("merged", "Merged into another customer"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="membership",
            name="source",
            field=models.CharField(
                choices=[
                    ("recalculation", "Recalculation"),
                    ("realtime", "Real time"),
                    ("list", "Uploaded list"),
                    ("api", "API"),
                    ("merge", "Customers merged"),
                ],
                max_length=16,
            ),
        ),
        # The writing transaction's id, for feed readers (masivo.feeds); unknown to the ORM.
        migrations.RunSQL(
            [
                "ALTER TABLE audiences_membershipchange"
                " ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id()",
                "CREATE INDEX change_ws_xid_id ON audiences_membershipchange"
                " (workspace_id, xid, id)",
                "CREATE INDEX change_ws_audience_xid_id ON audiences_membershipchange"
                " (workspace_id, audience_id, xid, id)",
            ],
            [
                "DROP INDEX change_ws_audience_xid_id",
                "DROP INDEX change_ws_xid_id",
                "ALTER TABLE audiences_membershipchange DROP COLUMN xid",
            ],
        ),
    ]
