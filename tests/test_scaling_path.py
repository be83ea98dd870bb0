"""The path to Citus stays open: tenant tables keep `workspace_id` in every key Citus enforces.

Sharded by `workspace_id`, Citus enforces a unique or exclusion constraint, and a foreign key
between two distributed tables, only when it includes the distribution column
(docs/scaling.md). These tests read the catalog, so they see what every migration built; a
tenant table is any table with a `workspace_id` column (partitions follow their parent).
"""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

TENANT_TABLES = """
    CREATE TEMPORARY VIEW tenant_table AS
    SELECT c.oid, c.relname, a.attnum AS workspace_attnum
    FROM pg_class c
    JOIN pg_attribute a
      ON a.attrelid = c.oid AND a.attname = 'workspace_id' AND NOT a.attisdropped
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
      AND NOT c.relispartition
"""

# Key columns by name in order (an expression shows as "(expression)"; INCLUDE columns are
# not part of the key).
UNIQUE_KEYS_WITHOUT_WORKSPACE = """
    SELECT t.relname, i.indisprimary,
           array(SELECT coalesce(a.attname::text, '(expression)')
                 FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
                 LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                 WHERE k.position <= i.indnkeyatts ORDER BY k.position)
    FROM tenant_table t JOIN pg_index i ON i.indrelid = t.oid
    WHERE (i.indisunique OR i.indisexclusion)
      AND NOT EXISTS (
        SELECT 1 FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
        WHERE k.attnum = t.workspace_attnum AND k.position <= i.indnkeyatts
      )
"""

# Citus needs the distribution column paired on both sides: (workspace_id, x) -> (workspace_id, y).
FOREIGN_KEYS_BETWEEN_TENANT_TABLES_WITHOUT_WORKSPACE = """
    SELECT t.relname,
           array(SELECT a.attname::text
                 FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, position)
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                 ORDER BY k.position),
           r.relname
    FROM tenant_table t
    JOIN pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
    JOIN tenant_table r ON r.oid = con.confrelid
    WHERE NOT EXISTS (
      SELECT 1 FROM unnest(con.conkey, con.confkey) AS pair(referencing, referenced)
      WHERE pair.referencing = t.workspace_attnum AND pair.referenced = r.workspace_attnum
    )
"""

TABLES_REFERENCED_FROM_TENANT_TABLES = """
    SELECT DISTINCT r.relname
    FROM tenant_table t
    JOIN pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
    JOIN pg_class r ON r.oid = con.confrelid
    WHERE r.oid NOT IN (SELECT oid FROM tenant_table)
"""

# Unique keys without workspace_id that the plan in docs/scaling.md accounts for.
KNOWN_UNIQUE_KEYS = {
    # An API key is looked up by its hash before any workspace is known, so the hash stays
    # unique across workspaces: tenancy_apikey becomes a reference table (small, written
    # rarely), where Citus enforces any constraint.
    ("tenancy_apikey", ("token_hash",)),
}

# Every one is a Django ForeignKey to the referenced table's surrogate `id`, the corollary of
# the `id` primary keys: when distributing, each becomes (workspace_id, <column>) REFERENCES
# <table> (workspace_id, id), once that table's primary key is (workspace_id, id). A new one
# belongs here only if it converts the same way; otherwise include workspace_id in it.
KNOWN_FOREIGN_KEYS = {
    ("audiences_listupload", ("audience_id",), "audiences_audience"),
    ("audiences_listuploadchunk", ("upload_id",), "audiences_listupload"),
    ("audiences_listuploadproblem", ("upload_id",), "audiences_listupload"),
    ("audiences_membership", ("audience_id",), "audiences_audience"),
    ("audiences_membership", ("customer_id",), "profiles_customer"),
    ("audiences_membershipchange", ("audience_id",), "audiences_audience"),
    ("audiences_recalculation", ("audience_id",), "audiences_audience"),
    ("destinations_audiencesync", ("audience_id",), "audiences_audience"),
    ("destinations_audiencesync", ("destination_id",), "destinations_destination"),
    ("destinations_eventexport", ("destination_id",), "destinations_destination"),
    ("destinations_forwardbatch", ("destination_id",), "destinations_destination"),
    ("destinations_remotecontact", ("destination_id",), "destinations_destination"),
    ("destinations_syncrecord", ("sync_id",), "destinations_audiencesync"),
    ("destinations_syncrun", ("sync_id",), "destinations_audiencesync"),
    ("destinations_webhookdelivery", ("destination_id",), "destinations_destination"),
    ("journeys_enrollment", ("journey_id",), "journeys_journey"),
    ("journeys_enrollment", ("version_id",), "journeys_journeyversion"),
    ("journeys_journey", ("live_version_id",), "journeys_journeyversion"),
    ("journeys_journeyversion", ("journey_id",), "journeys_journey"),
    ("journeys_steprun", ("enrollment_id",), "journeys_enrollment"),
    ("messaging_message", ("campaign_id",), "messaging_campaign"),
    ("messaging_message", ("customer_id",), "profiles_customer"),
    ("messaging_message", ("template_id",), "messaging_template"),
    ("messaging_message", ("template_version_id",), "messaging_templateversion"),
    ("messaging_messagestatuschange", ("message_id",), "messaging_message"),
    ("messaging_suppression", ("message_id",), "messaging_message"),
    ("messaging_templateversion", ("template_id",), "messaging_template"),
    ("messaging_topicsubscription", ("topic_id",), "messaging_audiencetopic"),
    ("profiles_consentchange", ("customer_id",), "profiles_customer"),
    ("profiles_customerimportchunk", ("customer_import_id",), "profiles_customerimport"),
    ("profiles_customerimporterror", ("customer_import_id",), "profiles_customerimport"),
    ("profiles_customermerge", ("winner_id",), "profiles_customer"),
    ("profiles_device", ("customer_id",), "profiles_customer"),
    ("profiles_event", ("customer_id",), "profiles_customer"),
    ("profiles_identity", ("customer_id",), "profiles_customer"),
}

# Tables without workspace_id that tenant tables may reference: replicated to every node as
# Citus reference tables (docs/scaling.md).
REFERENCE_TABLES = {"tenancy_workspace", "tenancy_organization", "auth_user"}


@pytest.fixture(autouse=True)
def _tenant_table_view():
    """A temporary view, gone with the test's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(TENANT_TABLES)


def rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_unique_keys_of_tenant_tables_include_workspace_id_but_the_known_ones():
    found = {
        (table, tuple(columns))
        for table, is_primary, columns in rows(UNIQUE_KEYS_WITHOUT_WORKSPACE)
        # The surrogate primary key (`id`, plus the partition key on a partitioned table).
        if not (is_primary and columns[0] == "id")
    }
    assert found == KNOWN_UNIQUE_KEYS, "see 'Keys that stay shardable' in docs/scaling.md"


def test_foreign_keys_between_tenant_tables_include_workspace_id_but_the_known_ones():
    found = {
        (table, tuple(columns), referenced)
        for table, columns, referenced in rows(FOREIGN_KEYS_BETWEEN_TENANT_TABLES_WITHOUT_WORKSPACE)
    }
    assert found == KNOWN_FOREIGN_KEYS, "see 'Keys that stay shardable' in docs/scaling.md"


def test_tenant_tables_reference_no_other_table_than_the_reference_tables():
    referenced = {table for (table,) in rows(TABLES_REFERENCED_FROM_TENANT_TABLES)}
    assert referenced - REFERENCE_TABLES == set(), "see 'Reference tables' in docs/scaling.md"


def test_the_catalog_queries_see_the_tenant_tables():
    tables = {table for (table,) in rows("SELECT relname FROM tenant_table")}
    assert {"profiles_customer", "profiles_event", "audiences_membership"} <= tables


def test_a_new_key_without_workspace_id_is_caught():
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE scaling_probe (id bigint PRIMARY KEY, workspace_id bigint NOT NULL, "
            "code text UNIQUE, label text, customer_id bigint REFERENCES profiles_customer (id), "
            "UNIQUE (workspace_id, label))"
        )
    unique_keys = {
        (table, tuple(columns)) for table, _, columns in rows(UNIQUE_KEYS_WITHOUT_WORKSPACE)
    }
    foreign_keys = {
        (table, tuple(columns), referenced)
        for table, columns, referenced in rows(FOREIGN_KEYS_BETWEEN_TENANT_TABLES_WITHOUT_WORKSPACE)
    }
    assert {key for key in unique_keys if key[0] == "scaling_probe"} == {
        ("scaling_probe", ("id",)),
        ("scaling_probe", ("code",)),
    }
    assert ("scaling_probe", ("customer_id",), "profiles_customer") in foreign_keys
