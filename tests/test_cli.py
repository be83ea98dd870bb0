import json

import pytest

from masivo import cli
from masivo.tenancy import keys
from masivo.tenancy.context import all_workspaces
from masivo.tenancy.models import ApiKey, Organization, Workspace
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_workspace_create_prints_ids_and_fresh_keys_as_json(capsys):
    code, out, _ = run_cli(capsys, "workspace", "create", "Shop MX", "--org", "Acme", "--json")
    assert code == 0
    result = json.loads(out)
    workspace = Workspace.objects.get(id=result["workspace"]["id"])
    assert (workspace.name, workspace.organization.name) == ("Shop MX", "Acme")
    assert result["organization"] == {
        "id": workspace.organization_id,
        "name": "Acme",
        "slug": "acme",
        "created": True,
    }
    with all_workspaces(reason="test inspection"):
        stored = {
            key.kind: (key.token_hash, key.role)
            for key in ApiKey.objects.filter(workspace=workspace)
        }
    assert stored == {
        "write": (keys.hash_token(result["keys"]["write"]), ""),
        "secret": (keys.hash_token(result["keys"]["secret"]), "admin"),
    }


def test_workspace_create_reuses_an_existing_organization_by_slug(capsys):
    organization = OrganizationFactory(name="Globex Corp", slug="globex")
    code, out, _ = run_cli(capsys, "workspace", "create", "EU", "--org", "globex", "--json")
    assert code == 0
    assert json.loads(out)["organization"]["id"] == organization.id
    assert Organization.objects.count() == 1


def test_workspace_create_refuses_a_duplicate_name(capsys):
    run_cli(capsys, "workspace", "create", "Shop", "--org", "Acme", "--json")
    code, out, err = run_cli(capsys, "workspace", "create", "shop", "--org", "Acme", "--json")
    assert code == 2
    assert out == ""
    assert json.loads(err) == {"error": "a workspace named 'shop' already exists", "field": "name"}
    assert Workspace.objects.count() == 1


def test_workspace_create_needs_an_org_when_several_exist(capsys):
    OrganizationFactory()
    OrganizationFactory()
    code, _, err = run_cli(capsys, "workspace", "create", "Shop", "--json")
    assert code == 2
    assert json.loads(err)["field"] == "org"
    assert Workspace.objects.count() == 0
