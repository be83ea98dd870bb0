"""Invitations through the API, and the link they email (accepted in the dashboard)."""

import re
import smtplib
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from masivo.tenancy.models import Invitation, Member
from masivo.tenancy.redis import get_redis
from masivo.tenancy.roles import Role
from tests.conftest import bearer_client, mint_secret_key
from tests.factories import InvitationFactory, MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's password
LINK = re.compile(r"http://testserver(/invitations/[^/\s]+/)")


@pytest.fixture(autouse=True)
def _clear_invitation_counters():
    client = get_redis()
    for key in client.scan_iter(f"{settings.MASIVO_REDIS_PREFIX}ratelimit:invitations:*"):
        client.delete(key)


def invite(api, email="new.person@example.com", role="marketer"):
    return api.post(
        "/api/v1/invitations", {"email": email, "role": role}, content_type="application/json"
    )


def link_in(message) -> str:
    return LINK.search(message.body).group(1)


def open_invitations(organization) -> list[tuple[str, str]]:
    return list(
        Invitation.objects.filter(
            organization=organization, accepted_at__isnull=True, revoked_at__isnull=True
        ).values_list("email", "role")
    )


def roles_in(organization) -> dict[str, str]:
    return dict(Member.objects.filter(organization=organization).values_list("user__email", "role"))


def test_inviting_emails_a_single_use_link_and_stores_only_its_hash(api, workspace):
    response = invite(api, email="  New.Person@Example.COM ")

    assert response.status_code == 201
    invitation = Invitation.objects.get()
    body = response.json()
    assert body == {
        "id": invitation.id,
        "email": "new.person@example.com",
        "role": "marketer",
        "status": "pending",
        "invited_by": None,
        "created_at": body["created_at"],
        "expires_at": body["expires_at"],
        "accepted_at": None,
        "revoked_at": None,
    }
    assert invitation.expires_at - invitation.created_at == timedelta(days=7)
    [message] = mail.outbox
    assert message.to == ["new.person@example.com"]
    assert message.subject == f"You are invited to {workspace.organization.name} on Masivo"
    link = link_in(message)
    raw_token = link.split("/")[2].split(":")[0]
    assert raw_token not in invitation.token_hash
    assert len(invitation.token_hash) == 64
    assert roles_in(workspace.organization) == {}


def test_the_answer_is_the_same_for_an_existing_account_and_an_unknown_email(api, outsider):
    known = invite(api, email=outsider.user.email).json()
    unknown = invite(api, email="nobody@example.com").json()

    varying = {"id", "email", "created_at", "expires_at"}
    assert {k: v for k, v in known.items() if k not in varying} == {
        k: v for k, v in unknown.items() if k not in varying
    }
    assert set(known) == set(unknown)
    assert outsider.user.get_full_name() not in str(known)
    known_email, unknown_email = mail.outbox
    assert known_email.subject == unknown_email.subject
    assert known_email.body.split("http")[0] == unknown_email.body.split("http")[0]
    assert roles_in(outsider.organization) == {outsider.user.email: "owner"}


def test_reinviting_refreshes_the_open_invitation(api, workspace):
    first = invite(api, role="viewer").json()
    old_link = link_in(mail.outbox[0])
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    second = invite(api, email="NEW.person@example.com", role="admin")

    assert second.status_code == 201
    assert second.json()["id"] == first["id"]
    assert second.json()["role"] == "admin"
    assert second.json()["status"] == "pending"
    assert open_invitations(workspace.organization) == [("new.person@example.com", "admin")]
    assert Client().get(old_link).status_code == 404  # the old link stopped working
    assert Client().get(link_in(mail.outbox[1])).status_code == 200


def test_an_existing_member_is_not_invited(api, workspace, member):
    response = invite(api, email=member.user.email.upper())

    assert response.status_code == 409
    assert response.json()["errors"] == {"email": [f"{member.user.email} is already a member"]}
    assert mail.outbox == []
    assert Invitation.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"email": "not-an-email", "role": "viewer"}, "email", "Enter a valid email address."),
        ({"email": "a@example.com", "role": "boss"}, "role", '"boss" is not a valid choice.'),
        ({"role": "viewer"}, "email", "This field is required."),
    ],
)
def test_bad_invitation_input_names_the_field(api, payload, field, message):
    response = api.post("/api/v1/invitations", payload, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == {field: [message]}
    assert Invitation.objects.count() == 0
    assert mail.outbox == []


def test_an_admin_key_cannot_invite_an_owner(api):
    response = invite(api, role="owner")

    assert response.status_code == 403
    assert response.json() == {
        "detail": "only owners can invite owners",
        "code": "permission_denied",
        "errors": {"role": ["only owners can invite owners"]},
    }
    assert Invitation.objects.count() == 0
    assert mail.outbox == []


@pytest.mark.parametrize("role", [Role.MARKETER, Role.VIEWER])
def test_marketer_and_viewer_keys_list_but_cannot_invite_or_revoke(workspace, role):
    invitation = InvitationFactory(organization=workspace.organization)
    client = bearer_client(mint_secret_key(workspace, role=role))

    assert client.get("/api/v1/invitations").status_code == 200
    responses = [
        invite(client),
        client.post(f"/api/v1/invitations/{invitation.id}/revoke"),
    ]

    assert [r.status_code for r in responses] == [403, 403]
    assert open_invitations(workspace.organization) == [(invitation.email, "viewer")]
    assert mail.outbox == []


def test_the_list_shows_open_invitations_of_the_organization_only(
    api, workspace, other_workspace, django_assert_num_queries
):
    inviter = MemberFactory(organization=workspace.organization, role=Role.ADMIN)
    pending = InvitationFactory(organization=workspace.organization, invited_by=inviter.user)
    expired = InvitationFactory(
        organization=workspace.organization, expires_at=timezone.now() - timedelta(days=1)
    )
    InvitationFactory(organization=workspace.organization, revoked_at=timezone.now())
    InvitationFactory(organization=workspace.organization, accepted_at=timezone.now())
    InvitationFactory(organization=other_workspace.organization)

    with django_assert_num_queries(3):  # the key, its last_used_at, the page with its inviters
        body = api.get("/api/v1/invitations").json()

    assert [(i["email"], i["status"], i["invited_by"]) for i in body["results"]] == [
        (expired.email, "expired", None),
        (pending.email, "pending", inviter.user.email),
    ]


def test_revoking_stops_the_link(api, workspace):
    invitation_id = invite(api).json()["id"]
    link = link_in(mail.outbox[0])

    response = api.post(f"/api/v1/invitations/{invitation_id}/revoke")
    again = api.post(f"/api/v1/invitations/{invitation_id}/revoke")

    assert response.status_code == again.status_code == 200
    assert response.json()["status"] == "revoked"
    assert again.json()["revoked_at"] == response.json()["revoked_at"]
    page = Client().get(link)
    assert page.status_code == 410
    assert "This invitation was withdrawn" in page.content.decode()
    assert api.get("/api/v1/invitations").json()["results"] == []


def test_revoke_is_post_only(api, workspace):
    invitation = InvitationFactory(organization=workspace.organization)
    assert api.get(f"/api/v1/invitations/{invitation.id}/revoke").status_code == 405


def test_an_accepted_invitation_cannot_be_revoked(api, workspace):
    invitation = InvitationFactory(organization=workspace.organization, accepted_at=timezone.now())

    response = api.post(f"/api/v1/invitations/{invitation.id}/revoke")

    assert response.status_code == 409
    assert response.json()["detail"] == "this invitation was already accepted"
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


@pytest.mark.parametrize("suffix", ["", "/revoke"])
def test_another_organizations_invitation_is_a_404(api, other_workspace, suffix):
    foreign = InvitationFactory(organization=other_workspace.organization)
    method = "post" if suffix else "get"

    response = getattr(api, method)(f"/api/v1/invitations/{foreign.id}{suffix}")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_invitations_per_organization_are_rate_limited(api, other_api, workspace, settings):
    settings.MASIVO_INVITATIONS_PER_HOUR = 2
    assert [invite(api, email=f"p{n}@example.com").status_code for n in range(3)] == [
        201,
        201,
        429,
    ]
    response = invite(api, email="p9@example.com")
    assert 3590 <= int(response["Retry-After"]) <= 3600  # the hour window, just started
    limited = response.json()
    assert limited["code"] == "throttled"
    assert limited["detail"] == (
        f"{workspace.organization.name} has sent 2 invitations this hour; try again in 60 minutes"
    )
    assert invite(other_api, email="p9@example.com").status_code == 201
    assert len(mail.outbox) == 3


# The link ----------------------------------------------------------------------------------------


def test_a_new_person_sets_a_name_and_password_and_is_signed_in(api, workspace):
    invite(api, role="viewer")
    link = link_in(mail.outbox[0])
    browser = Client()

    form = browser.get(link)
    assert form.status_code == 200
    assert "Create account and join" in form.content.decode()
    response = browser.post(
        link,
        {
            "name": "Nueva Persona",
            "password1": "a long passphrase 9",
            "password2": "a long passphrase 9",
        },
    )

    assert response.status_code == 302
    assert response.url == f"/w/{workspace.id}/"
    user = get_user_model().objects.get(email="new.person@example.com")
    assert (user.username, user.first_name, user.last_name) == (
        "new.person@example.com",
        "Nueva",
        "Persona",
    )
    assert user.check_password("a long passphrase 9")
    assert roles_in(workspace.organization) == {"new.person@example.com": "viewer"}
    assert browser.get(f"/w/{workspace.id}/").status_code == 200
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == user
    assert invitation.accepted_at is not None


def test_a_link_works_once(api, workspace):
    invite(api)
    link = link_in(mail.outbox[0])
    passwords = {"password1": "a long passphrase 9", "password2": "a long passphrase 9"}
    Client().post(link, {"name": "Ana", **passwords})

    second = Client().get(link)

    assert second.status_code == 410
    assert "This invitation has already been used" in second.content.decode()
    assert get_user_model().objects.filter(email="new.person@example.com").count() == 1


def test_an_expired_link_is_refused(api, workspace):
    invite(api)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    link = link_in(mail.outbox[0])

    response = Client().post(
        link,
        {"name": "Ana", "password1": "a long passphrase 9", "password2": "a long passphrase 9"},
    )

    assert response.status_code == 410
    assert "This invitation has expired; ask for a new one" in response.content.decode()
    assert not get_user_model().objects.filter(email="new.person@example.com").exists()
    assert roles_in(workspace.organization) == {}


@pytest.mark.parametrize(
    "token", ["garbage", "abc:def", "x" * 300], ids=["garbage", "bad-signature", "long"]
)
def test_a_forged_link_is_a_404(token):
    response = Client().get(f"/invitations/{token}/")
    assert response.status_code == 404
    assert "This invitation link is not valid" in response.content.decode()


def test_a_weak_password_is_refused_and_nothing_is_created(api, workspace):
    invite(api)
    link = link_in(mail.outbox[0])

    response = Client().post(
        link, {"name": "Ana", "password1": "12345678", "password2": "12345678"}
    )

    assert response.status_code == 400
    assert response.context["form"].errors["password1"] == [
        "This password is too common. This password is entirely numeric."
    ]
    assert not get_user_model().objects.filter(email="new.person@example.com").exists()
    assert Invitation.objects.get().accepted_at is None


def test_an_existing_account_accepts_while_signed_in(api, workspace, outsider):
    invite(api, email=outsider.user.email.upper(), role="admin")
    link = link_in(mail.outbox[0])

    anonymous = Client().get(link)
    assert "Sign in to accept" in anonymous.content.decode()
    assert f'href="/login/?{urlencode({"next": link})}"' in anonymous.content.decode()
    assert Client().post(link, {"name": "x", "password1": "y", "password2": "y"}).status_code == 200

    browser = Client()
    browser.force_login(outsider.user)
    assert "Accept and join" in browser.get(link).content.decode()
    response = browser.post(link)

    assert response.status_code == 302
    assert response.url == f"/w/{workspace.id}/"
    assert roles_in(workspace.organization) == {outsider.user.email: "admin"}
    assert roles_in(outsider.organization) == {outsider.user.email: "owner"}


def test_the_wrong_account_is_refused_clearly(api, workspace, outsider):
    invite(api, email="someone.else@example.com")
    link = link_in(mail.outbox[0])
    browser = Client()
    browser.force_login(outsider.user)

    page = browser.get(link)
    accept = browser.post(link)

    assert page.status_code == 403
    assert (
        f"This invitation is for someone.else@example.com, but you are signed in as "
        f"{outsider.user.email}. Sign out, then open the link again."
    ) in page.content.decode()
    assert accept.status_code == 403
    assert roles_in(workspace.organization) == {}
    assert Invitation.objects.get().accepted_at is None


def test_a_new_account_cannot_take_an_existing_email(api, workspace):
    invite(api, email="late@example.com")
    link = link_in(mail.outbox[0])
    browser = Client()
    assert "Create account and join" in browser.get(link).content.decode()
    UserFactory(username="late@example.com", email="late@example.com")

    response = browser.post(
        link,
        {"name": "Ana", "password1": "a long passphrase 9", "password2": "a long passphrase 9"},
    )

    assert response.status_code == 200
    assert "Sign in to accept" in response.content.decode()
    assert roles_in(workspace.organization) == {}


def test_a_refused_email_leaves_no_invitation(api, monkeypatch):
    def refuse(*args, **kwargs):
        raise smtplib.SMTPRecipientsRefused({"new.person@example.com": (550, b"no")})

    monkeypatch.setattr("masivo.tenancy.invitations.send_mail", refuse)

    response = invite(api)

    assert response.status_code == 503
    assert response.json() == {
        "detail": "the invitation email could not be sent; try again later",
        "code": "unavailable",
    }
    assert Invitation.objects.count() == 0


def test_an_owner_in_the_dashboard_may_invite_an_owner(workspace, owner):
    browser = Client()
    browser.force_login(owner.user)

    response = browser.post(
        f"/w/{workspace.id}/settings/members/", {"email": "boss@example.com", "role": "owner"}
    )

    assert response.status_code == 302
    assert open_invitations(workspace.organization) == [("boss@example.com", "owner")]


def test_signing_in_from_the_link_comes_back_to_accept(api, workspace, outsider):
    invite(api, email=outsider.user.email)
    link = link_in(mail.outbox[0])
    browser = Client()

    signed_in = browser.post(
        f"/login/?{urlencode({'next': link})}",
        {"username": outsider.user.email, "password": PASSWORD, "next": link},
    )
    assert signed_in.url == link
    accepted = browser.post(link, follow=True)

    assert accepted.redirect_chain == [(f"/w/{workspace.id}/", 302)]
    assert f"Welcome to {workspace.organization.name}. You joined as Marketer." in (
        accepted.content.decode()
    )
    assert roles_in(workspace.organization) == {outsider.user.email: "marketer"}
