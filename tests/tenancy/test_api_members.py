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


def test_add_by_email_creates_the_user_without_a_password(api, workspace):
    response = api.post(
        "/api/v1/members",
        {"email": "New.Person@Example.com", "role": "marketer"},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert response.json()["email"] == "new.person@example.com"
    assert response.json()["role"] == "marketer"
    user = get_user_model().objects.get(email="new.person@example.com")
    assert not user.has_usable_password()
    assert roles_in(workspace.organization) == {"new.person@example.com": "marketer"}


def test_adding_an_existing_member_again_is_a_conflict(api, workspace, member):
    response = api.post(
        "/api/v1/members",
        {"email": member.user.email.upper(), "role": "viewer"},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert response.json()["errors"] == {"email": [f"{member.user.email} is already a member"]}
    assert roles_in(workspace.organization) == {member.user.email: "marketer"}


def test_an_existing_user_of_another_organization_can_be_added(api, workspace, outsider):
    response = api.post(
        "/api/v1/members",
        {"email": outsider.user.email, "role": "viewer"},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert roles_in(workspace.organization) == {outsider.user.email: "viewer"}
    assert roles_in(outsider.organization) == {outsider.user.email: "owner"}


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"email": "not-an-email", "role": "viewer"}, "email", "Enter a valid email address."),
        ({"email": "a@example.com", "role": "boss"}, "role", '"boss" is not a valid choice.'),
        ({"role": "viewer"}, "email", "This field is required."),
    ],
)
def test_bad_member_input_names_the_field(api, workspace, payload, field, message):
    response = api.post("/api/v1/members", payload, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == {field: [message]}
    assert roles_in(workspace.organization) == {}


def test_admin_keys_cannot_create_or_touch_owners(api, workspace, owner):
    response = api.post(
        "/api/v1/members",
        {"email": "boss@example.com", "role": "owner"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "only owners can add owners"

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
