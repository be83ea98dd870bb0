import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils.html import escape

from masivo.tenancy.models import Invitation, Member
from masivo.tenancy.redis import get_redis
from masivo.tenancy.roles import Role
from tests.dashboard.conftest import client_for
from tests.factories import InvitationFactory, MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_invitation_counters():
    client = get_redis()
    for key in client.scan_iter(f"{settings.MASIVO_REDIS_PREFIX}ratelimit:invitations:*"):
        client.delete(key)


def url(workspace, suffix=""):
    return f"/w/{workspace.id}/settings/members/{suffix}"


def roles_of(workspace) -> dict[str, str]:
    members = Member.objects.filter(organization=workspace.organization).select_related("user")
    return {member.user.email: member.role for member in members}


def test_inviting_sends_the_link_and_lists_the_invitation(owner_client, owner, workspace):
    response = owner_client.post(
        url(workspace), {"email": "New.Person@Example.com", "role": Role.MARKETER}, follow=True
    )

    assert response.redirect_chain == [(url(workspace), 302)]
    content = response.content.decode()
    assert (
        "Invitation sent to new.person@example.com as Marketer. The link works for 7 days."
        in content
    )
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "new.person@example.com",
        "marketer",
        owner.user,
    )
    assert f'<tr id="invitation-{invitation.id}">' in content
    assert url(workspace, f"invitations/{invitation.id}/revoke/") in content
    [message] = mail.outbox
    assert message.subject == (
        f"{owner.user.get_full_name()} invited you to {workspace.organization.name} on Masivo"
    )
    assert "http://testserver/invitations/" in message.body
    assert roles_of(workspace) == {owner.user.email: Role.OWNER}
    assert not get_user_model().objects.filter(email="new.person@example.com").exists()


def test_inviting_an_existing_account_adds_nobody_yet(owner_client, owner, workspace):
    user = UserFactory()

    response = owner_client.post(url(workspace), {"email": user.email, "role": Role.VIEWER})

    assert response.status_code == 302
    assert roles_of(workspace) == {owner.user.email: Role.OWNER}
    assert Invitation.objects.get().email == user.email


def test_inviting_a_member_shows_the_conflict(owner_client, member, workspace):
    response = owner_client.post(url(workspace), {"email": member.user.email, "role": "admin"})

    assert response.status_code == 409
    assert response.context["form"].errors == {
        "email": [f"{member.user.email} is already a member"]
    }
    member.refresh_from_db()
    assert member.role == Role.MARKETER
    assert mail.outbox == []


def test_an_admin_cannot_invite_an_owner(workspace, owner):
    admin = MemberFactory(organization=workspace.organization, role=Role.ADMIN)

    response = client_for(admin).post(
        url(workspace), {"email": "boss@example.com", "role": "owner"}
    )

    assert response.status_code == 400
    assert "owner" not in dict(response.context["form"].fields["role"].choices)
    assert Invitation.objects.count() == 0


def test_revoking_an_invitation(owner_client, workspace):
    invitation = InvitationFactory(organization=workspace.organization)

    response = owner_client.post(
        url(workspace, f"invitations/{invitation.id}/revoke/"), follow=True
    )

    assert f"Revoked the invitation to {invitation.email}." in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert f'id="invitation-{invitation.id}"' not in response.content.decode()


def test_an_admin_cannot_revoke_an_owner_invitation(workspace):
    admin = MemberFactory(organization=workspace.organization, role=Role.ADMIN)
    invitation = InvitationFactory(organization=workspace.organization, role=Role.OWNER)
    client = client_for(admin)

    assert url(workspace, f"invitations/{invitation.id}/revoke/") not in (
        client.get(url(workspace)).content.decode()
    )
    response = client.post(url(workspace, f"invitations/{invitation.id}/revoke/"))

    assert response.status_code == 403
    assert "Only owners can revoke an invitation to be an owner" in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_another_organizations_invitation_is_a_404(owner_client, workspace, other_workspace):
    foreign = InvitationFactory(organization=other_workspace.organization)

    response = owner_client.post(url(workspace, f"invitations/{foreign.id}/revoke/"))

    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_an_outsider_gets_a_404_for_the_members_page(outsider_client, workspace):
    assert outsider_client.get(url(workspace)).status_code == 404
    assert (
        outsider_client.post(
            url(workspace), {"email": "a@example.com", "role": "viewer"}
        ).status_code
        == 404
    )
    assert Invitation.objects.count() == 0


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
    invitation = InvitationFactory(organization=workspace.organization)
    content = viewer_client.get(url(workspace)).content.decode()

    assert owner.user.email in content
    assert viewer.user.email in content
    assert "Invite someone" not in content
    assert "<select" not in content
    assert "/remove/" not in content
    assert '<span class="badge badge-role-owner">Owner</span>' in content
    assert invitation.email in content
    assert "/revoke/" not in content


@pytest.mark.parametrize("client_fixture", ["member_client", "viewer_client"])
def test_marketers_and_viewers_posting_get_403_and_nothing_changes(
    request, workspace, owner, member, viewer, client_fixture
):
    client = request.getfixturevalue(client_fixture)
    before = roles_of(workspace)
    invitation = InvitationFactory(organization=workspace.organization)

    responses = [
        client.post(url(workspace), {"email": "friend@example.com", "role": "owner"}),
        client.post(url(workspace, f"{viewer.id}/role/"), {"role": "owner"}),
        client.post(url(workspace, f"{owner.id}/remove/")),
        client.get(url(workspace, f"{owner.id}/remove/")),
        client.post(url(workspace, f"invitations/{invitation.id}/revoke/")),
    ]

    assert [response.status_code for response in responses] == [403, 403, 403, 403, 403]
    assert roles_of(workspace) == before
    assert list(Invitation.objects.values_list("email", "revoked_at")) == [(invitation.email, None)]
    assert mail.outbox == []
    assert not get_user_model().objects.filter(email="friend@example.com").exists()
