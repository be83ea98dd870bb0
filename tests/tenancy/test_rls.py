"""Wall two: Postgres row-level security binds the application role on every tenant table."""

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction

from masivo.tenancy.context import all_workspaces, workspace_scope
from masivo.tenancy.managers import TenantModel
from masivo.tenancy.models import ApiKey
from masivo.tenancy.rls import (
    POLICY_NAME,
    RecreateWorkspacePolicies,
    tables_with_workspace_policy,
    tables_with_workspace_rls,
)
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


def tenant_tables() -> set[str]:
    return {
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, TenantModel) and not model._meta.proxy
    }


# The policy as Postgres stores it (pg_policies deparses the sub-select with an alias).
INITPLAN_PREDICATE = (
    "(workspace_id = ANY (( SELECT masivo_visible_workspaces() AS masivo_visible_workspaces)"
    "::bigint[]))"
)
PREVIOUS_PREDICATE = "(workspace_id = ANY (masivo_visible_workspaces()))"


def policy_texts() -> dict[str, tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, qual, with_check FROM pg_policies "
            "WHERE schemaname = current_schema() AND policyname = %s",
            [POLICY_NAME],
        )
        return {table: (qual, with_check) for table, qual, with_check in cursor.fetchall()}


def plant_keys(workspace, other_workspace):
    with workspace_scope(workspace.id):
        ApiKeyFactory(workspace=workspace, name="mine")
    with workspace_scope(other_workspace.id):
        ApiKeyFactory(workspace=other_workspace, name="theirs")


def raw_names() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM tenancy_apikey ORDER BY name")
        return [row[0] for row in cursor.fetchall()]


def test_every_tenant_table_has_forced_rls_with_the_workspace_policy():
    with connection.cursor() as cursor:
        protected = tables_with_workspace_rls(cursor)
    assert tenant_tables() - protected == set()
    assert "tenancy_apikey" in protected


def test_every_table_with_the_policy_has_the_same_initplan_text():
    texts = policy_texts()
    assert tenant_tables() - texts.keys() == set()
    assert set(texts.values()) == {(INITPLAN_PREDICATE, INITPLAN_PREDICATE)}


def test_the_policy_function_runs_once_per_statement_inside_an_index_condition(workspace):
    with workspace_scope(workspace.id), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN (COSTS OFF) SELECT name FROM tenancy_apikey")
        plan = [row[0].strip() for row in cursor.fetchall()]
    assert plan.count("InitPlan 1 (returns $0)") == 1
    assert "Index Cond: (workspace_id = ANY ($0))" in plan


def test_recreating_the_policies_replaces_an_older_predicate_on_every_table(
    workspace, other_workspace
):
    with connection.cursor() as cursor:
        for table in ("tenancy_apikey", "profiles_customer"):
            cursor.execute(
                f'ALTER POLICY {POLICY_NAME} ON "{table}" '
                f"USING {PREVIOUS_PREDICATE} WITH CHECK {PREVIOUS_PREDICATE}"
            )
        before = tables_with_workspace_policy(cursor)
    with connection.schema_editor() as editor:
        RecreateWorkspacePolicies().database_forwards("tenancy", editor, None, None)
    texts = policy_texts()
    assert texts.keys() == before
    assert set(texts.values()) == {(INITPLAN_PREDICATE, INITPLAN_PREDICATE)}
    plant_keys(workspace, other_workspace)
    with workspace_scope(workspace.id):
        assert raw_names() == ["mine"]


def test_unfiltered_sql_inside_a_workspace_sees_only_its_rows(workspace, other_workspace):
    plant_keys(workspace, other_workspace)
    with workspace_scope(workspace.id):
        assert raw_names() == ["mine"]
        assert list(ApiKey.all_objects.values_list("name", flat=True)) == ["mine"]
    with workspace_scope(other_workspace.id):
        assert raw_names() == ["theirs"]


def test_unfiltered_sql_with_no_context_sees_nothing(workspace, other_workspace):
    plant_keys(workspace, other_workspace)
    assert raw_names() == []
    assert ApiKey.all_objects.count() == 0


def test_the_escape_hatch_sees_every_workspace(workspace, other_workspace):
    plant_keys(workspace, other_workspace)
    with all_workspaces(reason="test of the escape hatch"):
        assert raw_names() == ["mine", "theirs"]


def test_a_write_into_another_workspace_is_refused_by_the_policy(workspace, other_workspace):
    with workspace_scope(workspace.id), pytest.raises(DatabaseError, match="row-level security"):
        with transaction.atomic():
            ApiKeyFactory(workspace=other_workspace, name="smuggled")
    with all_workspaces(reason="check nothing was written"):
        assert ApiKey.objects.filter(name="smuggled").count() == 0


def test_an_update_cannot_reach_another_workspaces_rows(workspace, other_workspace):
    plant_keys(workspace, other_workspace)
    with workspace_scope(workspace.id), connection.cursor() as cursor:
        cursor.execute("UPDATE tenancy_apikey SET name = 'hijacked'")
        assert cursor.rowcount == 1
    with workspace_scope(other_workspace.id):
        assert raw_names() == ["theirs"]


def test_scope_is_restored_after_a_rolled_back_transaction(workspace, other_workspace):
    """A rollback reverts a SET made inside it; the backend must notice and set it again."""
    plant_keys(workspace, other_workspace)
    with workspace_scope(workspace.id):
        try:
            with transaction.atomic():
                assert raw_names() == ["mine"]
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        assert raw_names() == ["mine"]
    assert raw_names() == []
    with workspace_scope(other_workspace.id):
        with transaction.atomic():
            with workspace_scope(workspace.id):
                assert raw_names() == ["mine"]
        assert raw_names() == ["theirs"]


def test_the_connected_role_is_bound_by_rls():
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)
