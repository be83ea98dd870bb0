"""Settings, Channels in headless Chromium: connect SendGrid, test it against the fake, see the
key only as its last characters, disconnect. Screenshots in test-artifacts/screenshots."""

import re

import pytest

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from messaging.models import ChannelConnection
from tests.e2e.conftest import browser, page, screenshot  # noqa: F401 (shared fixtures)
from tests.factories import MemberFactory, OrganizationFactory, WorkspaceFactory
from tests.messaging.helpers import SENDGRID_KEY

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's password


def test_connect_test_and_disconnect_sendgrid(page, screenshot, sendgrid_fake):  # noqa: F811
    owner = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.OWNER)
    workspace = WorkspaceFactory(name="Acme", organization=owner.organization)
    sendgrid_fake.add_key(SENDGRID_KEY)
    page.goto("/login/")
    page.fill("#id_username", owner.user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/w/\d+/$"))

    page.goto(f"/w/{workspace.id}/settings/")
    page.click("nav.tabs >> text=Channels")
    page.wait_for_url(f"**/w/{workspace.id}/settings/channels/")
    screenshot(page, "settings-channels-empty")
    page.click("text=Connect SendGrid")
    page.fill("#id_api_key", SENDGRID_KEY)
    page.fill("#id_from_email", "news@acme.example")
    page.fill("#id_from_name", "Acme")
    page.click("button:has-text('Connect')")
    page.wait_for_url(f"**/w/{workspace.id}/settings/channels/")
    page.click("#channel-sendgrid >> text=Test connection")
    page.wait_for_url(f"**/w/{workspace.id}/settings/channels/")

    card = page.locator("#channel-sendgrid")
    assert "SendGrid accepted the API key, which may send mail." in page.inner_text(".flash-stack")
    assert card.locator(".badge").inner_text() == "Connected"
    assert "Set, ending in WXYZ" in card.inner_text()
    assert SENDGRID_KEY not in page.content()
    assert [r.path for r in sendgrid_fake.requests] == ["/v3/scopes"]
    screenshot(page, "settings-channels-connected")

    card.locator("text=Disconnect").click()
    page.click("button:has-text('Disconnect')")
    page.wait_for_url(f"**/w/{workspace.id}/settings/channels/")
    assert page.locator("#channel-sendgrid .badge").inner_text() == "Not connected"
    with workspace_scope(workspace.id):
        assert ChannelConnection.objects.count() == 0
    assert page.console_errors == []
