"""Row-level security for tenant tables, as a reusable migration operation.

Each app's migration calls `EnableWorkspaceRLS("app_model")` after creating a table with a
`workspace_id` column. The policy admits a row only when its workspace is the one in context, or
inside the `all_workspaces()` escape hatch. FORCE makes the policy bind the table's owner too, so
the application role is held to it even though its migrations created the table.

When the predicate changes, a migration runs `RecreateWorkspacePolicies()`: it finds every table
that has the policy in the catalog and re-creates it from `POLICY_PREDICATE`, while tables created
afterwards get the current predicate from `enable_sql`.
"""

from django.db import migrations
from django.db.migrations.operations.base import Operation

POLICY_NAME = "workspace_isolation"

# The visible workspaces as one STABLE array: `workspace_id = ANY (...)` is an index condition,
# whereas an `OR` between "escape hatch on" and "workspace matches" would force a scan of every
# row of every workspace whenever a query relies on the policy alone.
VISIBLE_WORKSPACES_FUNCTION = """
CREATE OR REPLACE FUNCTION masivo_visible_workspaces() RETURNS bigint[]
LANGUAGE sql STABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
  SELECT CASE WHEN current_setting('masivo.all_workspaces', true) = 'on'
    THEN (SELECT coalesce(array_agg(id), '{}') FROM tenancy_workspace)
    ELSE ARRAY[NULLIF(current_setting('masivo.workspace_id', true), '')::bigint]
  END
$$
"""
DROP_VISIBLE_WORKSPACES_FUNCTION = "DROP FUNCTION IF EXISTS masivo_visible_workspaces()"
# The function in a scalar sub-select: Postgres evaluates it once per statement (an InitPlan)
# and compares against the result, still as an index condition. Called bare, it ran once per
# row reached through an index that does not start with workspace_id, in every nested loop
# (bench/audiences, rule (1) after churn: 1.70x the hand-written SQL, 1.23-1.37x with this form).
POLICY_PREDICATE = "(workspace_id = ANY ((SELECT masivo_visible_workspaces())::bigint[]))"


def create_policy_sql(table: str) -> str:
    return (
        f'CREATE POLICY {POLICY_NAME} ON "{table}" '
        f"USING {POLICY_PREDICATE} WITH CHECK {POLICY_PREDICATE}"
    )


def enable_sql(table: str) -> list[str]:
    return [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
        create_policy_sql(table),
    ]


def disable_sql(table: str) -> list[str]:
    return [
        f'DROP POLICY IF EXISTS {POLICY_NAME} ON "{table}"',
        f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY',
    ]


class EnableWorkspaceRLS(migrations.RunSQL):
    """Enable and force the workspace isolation policy on one table (reversible)."""

    def __init__(self, table: str):
        self.table = table
        super().__init__(sql=enable_sql(table), reverse_sql=disable_sql(table))

    def deconstruct(self):
        return self.__class__.__name__, [self.table], {}

    def describe(self):
        return f"Enable workspace row-level security on {self.table}"


class RecreateWorkspacePolicies(Operation):
    """Re-create the workspace policy, from today's `POLICY_PREDICATE`, on every table that has
    it now (found in the catalog, so tables other apps add later need no edit here).

    Drop and create run in the migration's transaction: no statement sees a table without its
    policy. Backwards is a no-op, since every form of the predicate admits the same rows.
    """

    reversible = True
    reduces_to_sql = True

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        with schema_editor.connection.cursor() as cursor:
            tables = sorted(tables_with_workspace_policy(cursor))
        for table in tables:
            schema_editor.execute(f'DROP POLICY {POLICY_NAME} ON "{table}"')
            schema_editor.execute(create_policy_sql(table))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass

    def describe(self):
        return "Re-create the workspace row-level security policy on every table that has it"


def tables_with_workspace_policy(cursor) -> set[str]:
    """Tables of the current schema with the workspace policy, forced or not."""
    cursor.execute(
        "SELECT tablename FROM pg_policies WHERE schemaname = current_schema() AND policyname = %s",
        [POLICY_NAME],
    )
    return {row[0] for row in cursor.fetchall()}


def tables_with_workspace_rls(cursor) -> set[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
        "AND c.relrowsecurity AND c.relforcerowsecurity "
        "AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s)",
        [POLICY_NAME],
    )
    return {row[0] for row in cursor.fetchall()}
