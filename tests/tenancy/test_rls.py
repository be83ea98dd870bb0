"""Wall two: Postgres row-level security binds the application role on every tenant table."""

import pytest
from django.apps import apps
from django.db import connection

from masivo.tenancy.context import all_workspaces, workspace_scope
from masivo.tenancy.managers import TenantModel
from masivo.tenancy.models import ApiKey
from masivo.tenancy.rls import tables_with_workspace_rls
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


def tenant_tables() -> set[str]:
    return {
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, TenantModel) and not model._meta.proxy
    }


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
    from django.db import DatabaseError, transaction

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
    from django.db import transaction

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
