"""Who uploaded a file reads as a name (a key's name, not "api_key:2"); the audience list sorts
names as people read them."""

import pytest

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import ApiKey
from masivo.tenancy.services import api_key_create
from tests.factories import AudienceFactory, CustomerImportFactory, ListUploadFactory

pytestmark = pytest.mark.django_db


def make_key(workspace, name: str) -> ApiKey:
    with workspace_scope(workspace.id):
        api_key_create(workspace=workspace, kind=ApiKey.Kind.SECRET, name=name, role="admin")
        return ApiKey.objects.get(name=name)


def test_the_audience_list_sorts_names_case_insensitively(viewer_client, workspace):
    with workspace_scope(workspace.id):
        for name in ("beta", "Alpha", "zulu", "Zeta", "alpha 2"):
            AudienceFactory(workspace=workspace, name=name)

    response = viewer_client.get(f"/w/{workspace.id}/audiences/")

    names = [row["audience"].name for row in response.context["rows"]]
    assert names == ["Alpha", "alpha 2", "beta", "Zeta", "zulu"]


def test_list_uploads_name_the_key_or_the_person(
    viewer_client, workspace, other_workspace, django_assert_num_queries
):
    crm = make_key(workspace, "CRM sync")
    theirs = make_key(other_workspace, "Their key")
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, name="VIP", kind="list", rules=None)
        for created_by in (
            f"api_key:{crm.id}",
            "dashboard:ana@example.com",
            f"api_key:{theirs.id}",
        ):
            ListUploadFactory(workspace=workspace, audience=audience, created_by=created_by)

    # Session, user, workspace, membership, audience, uploads, the keys' names.
    with django_assert_num_queries(7):
        response = viewer_client.get(f"/w/{workspace.id}/audiences/{audience.id}/uploads/recent/")

    assert [upload.created_by_name for upload in response.context["uploads"]] == [
        f"api_key:{theirs.id}", "ana@example.com", "API key “CRM sync”",
    ]  # fmt: skip
    assert "API key “CRM sync”" in response.content.decode()


def test_a_customer_import_names_the_key(viewer_client, workspace):
    crm = make_key(workspace, "CRM sync")
    with workspace_scope(workspace.id):
        customer_import = CustomerImportFactory(workspace=workspace, created_by=f"api_key:{crm.id}")

    detail = viewer_client.get(f"/w/{workspace.id}/customers/import/{customer_import.id}/")
    listed = viewer_client.get(f"/w/{workspace.id}/customers/import/")

    assert "by API key “CRM sync” ·" in detail.content.decode()
    assert [item.created_by_name for item in listed.context["imports"]] == ["API key “CRM sync”"]
    assert f"api_key:{crm.id}" not in listed.content.decode()
