"""The dashboard in a real browser: sign-in, the switcher, API keys, role-based controls."""

import re

import pytest
from playwright.sync_api import expect

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import ApiKey
from masivo.tenancy.roles import Role
from tests.factories import MemberFactory, OrganizationFactory, WorkspaceFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's password
TOKEN = re.compile(r"^msv_sk_[0-9A-Za-z]{32}$")


def sign_in(page, email: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/w/\d+/$"))


def test_sign_in_browse_and_switch_workspace_without_csp_errors(page, screenshot):
    acme = WorkspaceFactory(name="Acme", organization=OrganizationFactory(name="Acme Inc"))
    WorkspaceFactory(name="Acme Staging", organization=acme.organization)
    globex = WorkspaceFactory(name="Globex", organization=OrganizationFactory(name="Globex Corp"))
    member = MemberFactory(organization=acme.organization, role=Role.OWNER)
    MemberFactory(organization=globex.organization, user=member.user, role=Role.MARKETER)

    page.goto("/login/")
    screenshot(page, "login")
    sign_in(page, member.user.email)
    assert page.url.endswith(f"/w/{acme.id}/")
    assert page.inner_text("h1") == "Acme"
    screenshot(page, "overview")

    empty = {
        "customers": "will appear here once",
        "audiences": "will appear here once",
        "journeys": "will appear here once",
        "messages": "Messages are not available yet",
        "destinations": "will appear here once",
    }
    for section, text in empty.items():
        page.click(f"nav.sidebar >> text={section.capitalize()}")
        page.wait_for_url(f"**/w/{acme.id}/{section}/")
        assert text in page.inner_text(".empty-state")
        screenshot(page, section)
    page.click("nav.sidebar >> text=Settings")
    page.wait_for_url(f"**/w/{acme.id}/settings/")
    screenshot(page, "settings-general")
    for tab, path in [("API keys", "api-keys"), ("Members", "members")]:
        page.click(f"nav.tabs >> text={tab}")
        page.wait_for_url(f"**/w/{acme.id}/settings/{path}/")
        screenshot(page, f"settings-{path}")

    page.goto(f"/w/{acme.id}/customers/")
    page.click(".switcher summary")
    menu = page.locator(".switcher .dropdown-menu")
    assert menu.locator(".dropdown-label").all_text_contents() == ["Acme Inc", "Globex Corp"]
    assert menu.locator(".dropdown-item").all_inner_texts() == ["Acme", "Acme Staging", "Globex"]
    screenshot(page, "switcher")
    menu.locator(".dropdown-item", has_text="Globex").click()
    page.wait_for_url(f"**/w/{globex.id}/customers/")
    assert page.inner_text(".switcher-workspace") == "Globex"
    screenshot(page, "switched-workspace")

    assert page.console_errors == []


def test_create_a_key_see_the_token_once_then_revoke_it(page, screenshot):
    owner = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.OWNER)
    workspace = WorkspaceFactory(name="Acme", organization=owner.organization)
    sign_in(page, owner.user.email)
    page.goto(f"/w/{workspace.id}/settings/api-keys/")

    page.check("input[name=kind][value=write]")
    expect(page.locator("[data-role-field]")).to_be_hidden()
    page.check("input[name=kind][value=secret]")
    page.fill("#id_name", "Backend")
    page.select_option("#id_role", "admin")
    page.click("text=Create key")

    token = page.input_value("#new-token")
    assert TOKEN.match(token)
    expect(page.locator("button[data-copy]")).to_be_visible()
    screenshot(page, "api-key-created")
    page.click("text=I have copied it")
    page.wait_for_url(f"**/w/{workspace.id}/settings/api-keys/")
    assert token not in page.content()
    row = page.locator("tbody tr", has_text="Backend")
    assert row.locator("code").inner_text() == f"{token[:12]}…"
    screenshot(page, "api-keys-after-create")

    page.once("dialog", lambda dialog: dialog.accept())
    revoke = row.get_by_role("link", name="Revoke", exact=True)
    revoke.click()
    row.locator(".badge-muted").wait_for()
    assert row.locator(".badge-muted").inner_text().startswith("Revoked")
    assert revoke.count() == 0
    screenshot(page, "api-key-revoked")
    with workspace_scope(workspace.id):
        assert ApiKey.objects.get(name="Backend").revoked_at is not None
    assert page.console_errors == []


def test_a_viewer_sees_no_key_or_member_controls(page, screenshot):
    owner = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.OWNER)
    workspace = WorkspaceFactory(name="Acme", organization=owner.organization)
    viewer = MemberFactory(organization=owner.organization, role=Role.VIEWER)
    with workspace_scope(workspace.id):
        ApiKey.objects.create(
            workspace=workspace, kind="secret", name="Backend", role=Role.ADMIN,
            prefix="msv_sk_VIEW", token_hash="0" * 64,
        )  # fmt: skip
    sign_in(page, viewer.user.email)

    page.goto(f"/w/{workspace.id}/settings/api-keys/")
    assert page.locator("tbody tr", has_text="Backend").count() == 1
    assert page.get_by_role("button", name="Create key").count() == 0
    assert page.get_by_role("link", name="Revoke").count() == 0
    assert page.locator("main input, main select").count() == 0
    screenshot(page, "api-keys-viewer")

    page.goto(f"/w/{workspace.id}/settings/members/")
    assert page.get_by_role("button", name="Send invitation").count() == 0
    assert page.get_by_role("link", name="Remove").count() == 0
    assert page.locator("main input, main select").count() == 0
    screenshot(page, "members-viewer")
