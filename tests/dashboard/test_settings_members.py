import pytest
from django.contrib.auth import get_user_model
from django.utils.html import escape

from masivo.tenancy.models import Member
from masivo.tenancy.roles import Role
from tests.dashboard.conftest import client_for
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


def url(workspace, suffix=""):
    return f"/w/{workspace.id}/settings/members/{suffix}"


def roles_of(workspace) -> dict[str, str]:
    members = Member.objects.filter(organization=workspace.organization).select_related("user")
    return {member.user.email: member.role for member in members}


def test_adding_a_new_email_creates_the_user_and_the_member(owner_client, owner, workspace):
    response = owner_client.post(
        url(workspace), {"email": "New.Person@Example.com", "role": Role.MARKETER}, follow=True
    )

    assert response.redirect_chain == [(url(workspace), 302)]
    assert "Added new.person@example.com as Marketer." in response.content.decode()
    assert roles_of(workspace) == {
        owner.user.email: Role.OWNER,
        "new.person@example.com": "marketer",
    }
    user = get_user_model().objects.get(email="new.person@example.com")
    assert user.username == "new.person@example.com"
    assert not user.has_usable_password()


def test_adding_an_existing_user_reuses_the_account(owner_client, owner, workspace):
    user = UserFactory()

    owner_client.post(url(workspace), {"email": user.email, "role": Role.VIEWER})

    assert Member.objects.get(organization=workspace.organization, user=user).role == "viewer"


def test_adding_someone_twice_shows_the_conflict(owner_client, member, workspace):
    response = owner_client.post(url(workspace), {"email": member.user.email, "role": "admin"})

    assert response.status_code == 409
    assert response.context["form"].errors == {
        "email": [f"{member.user.email} is already a member"]
    }
    member.refresh_from_db()
    assert member.role == Role.MARKETER


def test_changing_a_role(owner_client, member, workspace):
    response = owner_client.post(
        url(workspace, f"{member.id}/role/"), {"role": "admin"}, follow=True
    )

    assert f"{member.user.email} is now Admin." in response.content.decode()
    member.refresh_from_db()
    assert member.role == Role.ADMIN


def test_the_last_owner_cannot_be_demoted(owner_client, owner, workspace):
    response = owner_client.post(url(workspace, f"{owner.id}/role/"), {"role": "admin"})

    assert response.status_code == 409
    assert (
        '<div class="alert alert-error" role="alert">An organization needs at least one owner</div>'
        in (response.content.decode())
    )
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_the_last_owner_cannot_be_removed(owner_client, owner, workspace):
    response = owner_client.post(url(workspace, f"{owner.id}/remove/"))

    assert response.status_code == 409
    assert "An organization needs at least one owner" in response.content.decode()
    assert roles_of(workspace) == {owner.user.email: Role.OWNER}


def test_an_admin_cannot_make_an_owner(workspace, member):
    admin = MemberFactory(organization=workspace.organization, role=Role.ADMIN)

    response = client_for(admin).post(url(workspace, f"{member.id}/role/"), {"role": "owner"})

    assert response.status_code == 403
    assert "Only owners can grant or take away the owner role" in response.content.decode()
    member.refresh_from_db()
    assert member.role == Role.MARKETER


def test_an_admin_sees_no_controls_on_owners_and_no_owner_choice(workspace, owner, member):
    admin = MemberFactory(organization=workspace.organization, role=Role.ADMIN)

    content = client_for(admin).get(url(workspace)).content.decode()

    assert f'action="{url(workspace, f"{member.id}/role/")}"' in content
    assert f'action="{url(workspace, f"{owner.id}/role/")}"' not in content
    assert url(workspace, f"{owner.id}/remove/") not in content
    assert '<option value="owner"' not in content


def test_removing_a_member_after_confirming(owner_client, owner, member, workspace):
    confirm = owner_client.get(url(workspace, f"{member.id}/remove/"))
    assert escape(f"Remove {member.user.email}?") in confirm.content.decode()
    assert Member.objects.filter(id=member.id).exists()

    response = owner_client.post(url(workspace, f"{member.id}/remove/"), follow=True)

    assert response.redirect_chain == [(url(workspace), 302)]
    assert f"Removed {member.user.email} from {workspace.organization.name}." in (
        response.content.decode()
    )
    assert roles_of(workspace) == {owner.user.email: Role.OWNER}


def test_leaving_the_organization_goes_home(workspace, owner, member):
    response = client_for(member).post(url(workspace, f"{member.id}/remove/"))

    assert response.status_code == 403  # a marketer may not manage members, even themselves
    second_owner = MemberFactory(organization=workspace.organization, role=Role.OWNER)

    response = client_for(second_owner).post(url(workspace, f"{second_owner.id}/remove/"))

    assert response.status_code == 302
    assert response.url == "/"
    assert not Member.objects.filter(id=second_owner.id).exists()


def test_viewers_see_the_list_without_controls(viewer_client, owner, viewer, workspace):
    content = viewer_client.get(url(workspace)).content.decode()

    assert owner.user.email in content
    assert viewer.user.email in content
    assert "Add a member" not in content
    assert "<select" not in content
    assert "/remove/" not in content
    assert '<span class="badge badge-role-owner">Owner</span>' in content


@pytest.mark.parametrize("client_fixture", ["member_client", "viewer_client"])
def test_marketers_and_viewers_posting_get_403_and_nothing_changes(
    request, workspace, owner, member, viewer, client_fixture
):
    client = request.getfixturevalue(client_fixture)
    before = roles_of(workspace)

    responses = [
        client.post(url(workspace), {"email": "friend@example.com", "role": "owner"}),
        client.post(url(workspace, f"{viewer.id}/role/"), {"role": "owner"}),
        client.post(url(workspace, f"{owner.id}/remove/")),
        client.get(url(workspace, f"{owner.id}/remove/")),
    ]

    assert [response.status_code for response in responses] == [403, 403, 403, 403]
    assert roles_of(workspace) == before
    assert not get_user_model().objects.filter(email="friend@example.com").exists()
