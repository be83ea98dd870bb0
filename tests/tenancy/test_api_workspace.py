import pytest

from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Role
from tests.conftest import bearer_client, mint_secret_key
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_get_the_keys_workspace(api, workspace):
    body = api.get("/api/v1/workspace").json()
    assert body == {
        "id": workspace.id,
        "name": "Acme",
        "timezone": "UTC",
        "organization": {
            "id": workspace.organization.id,
            "name": workspace.organization.name,
            "slug": workspace.organization.slug,
        },
        "created_at": body["created_at"],
    }


def test_rename_and_set_timezone(api, workspace):
    response = api.patch(
        "/api/v1/workspace",
        {"name": "Acme MX", "timezone": "America/Mexico_City"},
        content_type="application/json",
    )
    assert response.status_code == 200
    workspace.refresh_from_db()
    assert (workspace.name, workspace.timezone) == ("Acme MX", "America/Mexico_City")


@pytest.mark.parametrize(
    ("payload", "status", "errors"),
    [
        (
            {"timezone": "Mars/Olympus"},
            400,
            {"timezone": ["'Mars/Olympus' is not an IANA time zone"]},
        ),
        ({"name": ""}, 400, {"name": ["This field may not be blank."]}),
        ({"name": "Sister"}, 409, {"name": ["a workspace named 'Sister' already exists"]}),
    ],
)
def test_bad_updates_change_nothing(api, workspace, payload, status, errors):
    WorkspaceFactory(organization=workspace.organization, name="sister")
    response = api.patch("/api/v1/workspace", payload, content_type="application/json")
    assert response.status_code == status
    assert response.json()["errors"] == errors
    assert Workspace.objects.values_list("name", "timezone").get(id=workspace.id) == ("Acme", "UTC")


def test_marketers_cannot_change_workspace_settings(workspace):
    client = bearer_client(mint_secret_key(workspace, role=Role.MARKETER))
    response = client.patch(
        "/api/v1/workspace", {"name": "Hacked"}, content_type="application/json"
    )
    assert response.status_code == 403
    workspace.refresh_from_db()
    assert workspace.name == "Acme"
