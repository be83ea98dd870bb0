"""Row-level security for tenant tables, as a reusable migration operation.

Each app's migration calls `EnableWorkspaceRLS("app_model")` after creating a table with a
`workspace_id` column. The policy admits a row only when its workspace is the one in context, or
inside the `all_workspaces()` escape hatch. FORCE makes the policy bind the table's owner too, so
the application role is held to it even though its migrations created the table.
"""

from django.db import migrations

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
POLICY_PREDICATE = "(workspace_id = ANY (masivo_visible_workspaces()))"


def enable_sql(table: str) -> list[str]:
    return [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
        f'CREATE POLICY {POLICY_NAME} ON "{table}" '
        f"USING {POLICY_PREDICATE} WITH CHECK {POLICY_PREDICATE}",
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


def tables_with_workspace_rls(cursor) -> set[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind = 'r' "
        "AND c.relrowsecurity AND c.relforcerowsecurity "
        "AND EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s)",
        [POLICY_NAME],
    )
    return {row[0] for row in cursor.fetchall()}
