"""An invitation end to end in a real browser: sent from Settings → Members, accepted from the
emailed link by someone without an account, who lands signed in in the workspace."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from masivo.tenancy.models import Member
from masivo.tenancy.roles import Role
from tests.e2e.test_dashboard import sign_in
from tests.factories import MemberFactory, OrganizationFactory, WorkspaceFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LINK = re.compile(r"https?://[^/\s]+(/invitations/[^/\s]+/)")


def test_an_invitation_is_sent_and_accepted_with_a_new_account(
    page, browser, live_server, screenshot
):
    owner = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.OWNER)
    workspace = WorkspaceFactory(name="Acme", organization=owner.organization)
    sign_in(page, owner.user.email)

    page.goto(f"/w/{workspace.id}/settings/members/")
    page.fill("#id_email", "Nina@Example.com")
    page.select_option("#id_role", "viewer")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".alert-success")).to_contain_text(
        "Invitation sent to nina@example.com as Viewer."
    )
    expect(page.locator("#invitations tbody tr")).to_have_count(1)
    screenshot(page, "members-invitation-pending")

    [message] = mail.outbox
    link = LINK.search(message.body).group(1)
    invitee = browser.new_context(base_url=live_server.url).new_page()
    invitee.goto(link)
    expect(invitee.locator("h1")).to_have_text("Join Acme Inc")
    invitee.fill("#id_name", "Nina Simone")
    invitee.fill("#id_password1", "a long passphrase 9")
    invitee.fill("#id_password2", "a long passphrase 9")
    screenshot(invitee, "invitation-accept")
    invitee.get_by_role("button", name="Create account and join").click()

    invitee.wait_for_url(f"**/w/{workspace.id}/")
    expect(invitee.locator(".alert-success")).to_contain_text(
        "Welcome to Acme Inc. You joined as Viewer."
    )
    assert invitee.inner_text("h1") == "Acme"
    member = Member.objects.get(organization=owner.organization, user__email="nina@example.com")
    assert (member.role, member.user.get_full_name()) == ("viewer", "Nina Simone")

    invitee.goto(link)
    expect(invitee.locator(".alert-error")).to_have_text("This invitation has already been used")
    page.reload()
    expect(page.locator("#invitations")).to_have_count(0)
    expect(page.locator(f"#member-{member.id}")).to_contain_text("nina@example.com")
    assert page.console_errors == []
    invitee.context.close()
