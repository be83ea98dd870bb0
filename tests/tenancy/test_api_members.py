import pytest
from django.contrib.auth import get_user_model

from masivo.tenancy.models import Member
from masivo.tenancy.roles import Role
from tests.conftest import bearer_client, mint_secret_key
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def roles_in(organization) -> dict[str, str]:
    return dict(Member.objects.filter(organization=organization).values_list("user__email", "role"))


def test_list_shows_the_organizations_members_only(api, owner, member, outsider):
    body = api.get("/api/v1/members").json()
    assert [(item["email"], item["role"]) for item in body["results"]] == [
        (member.user.email, "marketer"),
        (owner.user.email, "owner"),
    ]
    assert body["results"][0]["name"] == member.user.get_full_name()


def test_members_are_no_longer_added_directly(api, workspace):
    response = api.post(
        "/api/v1/members",
        {"email": "new.person@example.com", "role": "marketer"},
        content_type="application/json",
    )
    assert response.status_code == 405
    assert roles_in(workspace.organization) == {}
    assert not get_user_model().objects.filter(email="new.person@example.com").exists()


def test_admin_keys_cannot_touch_owners(api, workspace, owner):
    demote = api.patch(
        f"/api/v1/members/{owner.id}", {"role": "viewer"}, content_type="application/json"
    )
    assert demote.status_code == 403
    assert demote.json()["detail"] == "only owners can grant or take away the owner role"

    remove = api.delete(f"/api/v1/members/{owner.id}")
    assert remove.status_code == 403
    assert roles_in(workspace.organization) == {owner.user.email: "owner"}


def test_change_role_and_remove(api, workspace, member):
    response = api.patch(
        f"/api/v1/members/{member.id}", {"role": "admin"}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    assert roles_in(workspace.organization) == {member.user.email: "admin"}

    assert api.delete(f"/api/v1/members/{member.id}").status_code == 204
    assert roles_in(workspace.organization) == {}
    assert get_user_model().objects.filter(id=member.user_id).exists()


def test_the_last_owner_cannot_be_demoted_or_removed(workspace, owner):
    from masivo.tenancy.actors import Actor
    from masivo.tenancy.errors import Conflict
    from masivo.tenancy.services import member_change_role, member_remove

    acting_owner = Actor(role=Role.OWNER, user_id=owner.user_id)
    with pytest.raises(Conflict, match="at least one owner"):
        member_change_role(member=owner, role=Role.ADMIN, actor=acting_owner)
    with pytest.raises(Conflict, match="at least one owner"):
        member_remove(member=owner, actor=acting_owner)
    second = MemberFactory(organization=workspace.organization, role=Role.OWNER)
    member_change_role(member=owner, role=Role.ADMIN, actor=acting_owner)
    assert roles_in(workspace.organization) == {
        owner.user.email: "admin",
        second.user.email: "owner",
    }


@pytest.mark.parametrize("role", [Role.MARKETER, Role.VIEWER])
def test_non_admin_keys_read_members_but_cannot_change_them(workspace, member, role):
    client = bearer_client(mint_secret_key(workspace, role=role))
    assert client.get("/api/v1/members").status_code == 200
    response = client.patch(
        f"/api/v1/members/{member.id}", {"role": "admin"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert roles_in(workspace.organization) == {member.user.email: "marketer"}
