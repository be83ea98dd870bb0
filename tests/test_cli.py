import json

import pytest

from masivo import cli
from masivo.tenancy import keys
from masivo.tenancy.context import all_workspaces
from masivo.tenancy.models import ApiKey, Organization, Workspace
from masivo.tenancy.provisioning import DemoEnvironment
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


def test_the_running_summary_names_the_url_and_the_first_run_login():
    workspace = Workspace(id=7, name="Demo")
    first_run = DemoEnvironment(
        created=True,
        email="admin@example.com",
        password="pw-123",
        workspace=workspace,
        write_key="msv_wk_x",
        secret_key="msv_sk_y",
    )
    rule = "  " + "-" * 72
    assert cli.running_summary("http://127.0.0.1:8000/", first_run).splitlines() == [
        "",
        rule,
        "  Masivo is running at http://127.0.0.1:8000/  (Ctrl-C stops it)",
        "",
        "  Masivo created a demo workspace. Keep these; they are not shown again.",
        "  Login:            admin@example.com",
        "  Password:         pw-123",
        "  Workspace:        Demo (id 7)",
        "  Write key:        msv_wk_x",
        "  Secret API key:   msv_sk_y",
        rule,
    ]


def test_the_running_summary_of_a_later_run_shows_no_secrets():
    summary = cli.running_summary("http://h:1/", DemoEnvironment(created=False))
    assert summary.splitlines()[2:4] == [
        "  Masivo is running at http://h:1/  (Ctrl-C stops it)",
        "  Sign in with your account (lost the first-run password? "
        "`masivo user set-password EMAIL`)",
    ]


def test_a_failed_first_start_still_prints_the_first_run_login():
    first_run = DemoEnvironment(created=True, email="a@example.com", workspace=Workspace(id=1))
    lines = cli.running_summary("http://h:1/", first_run, is_running=False).splitlines()
    assert lines[2] == (
        "  Masivo did not start (see the lines above); the first-run login still holds."
    )
    assert "  Login:            a@example.com" in lines
