"""The /w/<workspace_id>/ pages: who may open them, and the workspace switcher."""

import pytest

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import ApiKey, Member
from masivo.tenancy.roles import Role
from tests.dashboard.conftest import client_for
from tests.factories import (
    ApiKeyFactory,
    MemberFactory,
    OrganizationFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db

WORKSPACE_PAGES = [
    "",
    "customers/",
    "audiences/",
    "journeys/",
    "messages/",
    "destinations/",
    "settings/",
    "settings/api-keys/",
    "settings/members/",
]


def test_home_opens_the_first_workspace_by_organization_then_name():
    zeta = WorkspaceFactory(name="Alpha brand", organization=OrganizationFactory(name="Zeta"))
    beta = WorkspaceFactory(name="Beta brand", organization=OrganizationFactory(name="Acme"))
    alpha = WorkspaceFactory(name="Alpha brand", organization=beta.organization)
    member = MemberFactory(organization=zeta.organization)
    MemberFactory(organization=beta.organization, user=member.user)

    response = client_for(member).get("/")

    assert response.status_code == 302
    assert response.url == f"/w/{alpha.id}/"


def test_home_without_any_workspace_explains_what_to_do(client):
    member = MemberFactory(organization=OrganizationFactory())  # an organization with none
    client.force_login(member.user)

    response = client.get("/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "You are not in any workspace yet" in content
    assert f"add <strong>{member.user.email}</strong> as a member" in content


@pytest.mark.parametrize("path", WORKSPACE_PAGES)
def test_an_outsider_gets_404_on_every_page(outsider_client, workspace, path):
    response = outsider_client.get(f"/w/{workspace.id}/{path}")

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


@pytest.mark.parametrize("path", ["settings/", "settings/api-keys/", "settings/members/"])
def test_an_outsider_posting_gets_404_and_changes_nothing(outsider_client, workspace, owner, path):
    response = outsider_client.post(
        f"/w/{workspace.id}/{path}",
        {"name": "Taken", "timezone": "UTC", "kind": "write", "email": "x@example.com"},
    )

    assert response.status_code == 404
    workspace.refresh_from_db()
    assert workspace.name == "Acme"
    with workspace_scope(workspace.id):
        assert ApiKey.objects.count() == 0
    assert list(Member.objects.filter(organization=workspace.organization)) == [owner]


def test_a_missing_workspace_is_the_same_404(owner_client):
    assert owner_client.get("/w/999999/").status_code == 404


def test_a_member_opens_every_workspace_of_the_organization(owner_client, workspace):
    sibling = WorkspaceFactory(organization=workspace.organization, name="Acme staging")

    response = owner_client.get(f"/w/{sibling.id}/customers/")

    assert response.status_code == 200
    assert response.wsgi_request.workspace == sibling


def test_another_workspaces_key_is_404_and_stays_active(owner_client, workspace, other_workspace):
    with workspace_scope(other_workspace.id):
        foreign = ApiKeyFactory(workspace=other_workspace)

    url = f"/w/{workspace.id}/settings/api-keys/{foreign.id}/revoke/"
    assert owner_client.get(url).status_code == 404
    assert owner_client.post(url).status_code == 404

    with workspace_scope(other_workspace.id):
        foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_another_organizations_member_is_404_and_unchanged(owner_client, workspace, outsider):
    base = f"/w/{workspace.id}/settings/members/{outsider.id}"

    assert owner_client.post(f"{base}/role/", {"role": Role.VIEWER}).status_code == 404
    assert owner_client.post(f"{base}/remove/").status_code == 404

    outsider.refresh_from_db()
    assert outsider.role == Role.OWNER


def test_the_switcher_lists_every_workspace_by_organization_on_the_same_page(workspace):
    sibling = WorkspaceFactory(organization=workspace.organization, name="Acme staging")
    elsewhere = WorkspaceFactory(name="Globex", organization=OrganizationFactory(name="Globex Inc"))
    member = MemberFactory(organization=workspace.organization, role=Role.ADMIN)
    MemberFactory(organization=elsewhere.organization, user=member.user, role=Role.VIEWER)
    unrelated = WorkspaceFactory(name="Hidden brand")

    content = client_for(member).get(f"/w/{workspace.id}/audiences/").content.decode()

    assert f'<div class="dropdown-label">{workspace.organization.name}</div>' in content
    assert '<div class="dropdown-label">Globex Inc</div>' in content
    for target in (workspace, sibling, elsewhere):
        assert f'href="/w/{target.id}/audiences/"' in content
    assert unrelated.name not in content
    assert f'href="/w/{unrelated.id}/' not in content


def test_the_switcher_opens_the_overview_from_a_page_about_one_object(owner_client, workspace):
    sibling = WorkspaceFactory(organization=workspace.organization, name="Acme staging")
    with workspace_scope(workspace.id):
        api_key = ApiKeyFactory(workspace=workspace)

    response = owner_client.get(f"/w/{workspace.id}/settings/api-keys/{api_key.id}/revoke/")

    assert f'href="/w/{sibling.id}/"' in response.content.decode()
