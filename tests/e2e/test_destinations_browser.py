"""Destinations in headless Chromium: connect Meta Custom Audiences against the Meta fake, test
the connection in place, sync an audience from its page (the remote audience is made at the
fake), run it in-process (no worker here) and watch the sync page's live run show the counts.
Screenshots in test-artifacts/screenshots."""

import re

import pytest
from django.utils import timezone

from audiences.membership import cause_list, membership_apply
from destinations.identifiers import sha256_hex
from destinations.models import AudienceSync, Destination
from destinations.services import RUN_TASK
from destinations.syncing import sync_run_execute
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from profiles.consent import consent_update
from tests.e2e.conftest import browser, page, screenshot, woken  # noqa: F401 (shared fixtures)
from tests.factories import (
    AudienceFactory,
    CustomerFactory,
    MemberFactory,
    OrganizationFactory,
    WorkspaceFactory,
)
from tests.fakes.meta import meta_fake, meta_server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's password
TOKEN = "EAAB-browser-token-9876"
ACCOUNT = "1234567890"
EMAILS = ("ana@acme.example", "bo@acme.example", "cy@acme.example")


def vip_audience(workspace):
    """Three members; the first two allow advertising, the third said nothing."""
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, name="VIP")
        people = [CustomerFactory(workspace=workspace, email=email, phone="") for email in EMAILS]
        for person in people[:2]:
            consent_update(customer=person, changes={"advertising": "granted"}, source="test")
        membership_apply(workspace_id=workspace.id, audience_id=audience.id,
                         entering=[p.id for p in people], leaving=(), cause=cause_list("test"),
                         now=timezone.now())  # fmt: skip
    return audience


def test_connect_meta_sync_an_audience_and_watch_the_run(page, screenshot, woken, meta_fake):  # noqa: F811
    owner = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.OWNER)
    workspace = WorkspaceFactory(name="Acme", organization=owner.organization)
    meta_fake.add_token(TOKEN)
    meta_fake.add_account(ACCOUNT, "Acme Ads")
    audience = vip_audience(workspace)
    page.goto("/login/")
    page.fill("#id_username", owner.user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/w/\d+/$"))

    page.click("nav.sidebar >> text=Destinations")
    page.wait_for_url(f"**/w/{workspace.id}/destinations/")
    assert "No destinations yet" in page.inner_text(".empty-state")
    page.click("text=Connect a destination")
    page.wait_for_url(f"**/w/{workspace.id}/destinations/new/")
    screenshot(page, "destinations-catalogue")
    page.click("#kind-meta >> text=Connect")
    page.wait_for_url(f"**/w/{workspace.id}/destinations/new/meta/")
    page.fill("#id_name", "Meta ads")
    page.fill("#id_config_ad_account_id", "act_12x")
    page.fill("#id_credentials_access_token", TOKEN)
    page.click("#connect-form button[type=submit]")
    assert page.inner_text(".has-error .field-error") == 'Must be digits, optionally after "act_"'
    screenshot(page, "destinations-connect-error")
    # The refused form answers 400, which Chromium logs; nothing else may.
    assert page.console_errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    page.console_errors.clear()
    page.fill("#id_config_ad_account_id", f"act_{ACCOUNT}")
    page.fill("#id_credentials_access_token", TOKEN)  # a password field is not filled again
    page.click("#connect-form button[type=submit]")
    page.wait_for_url(re.compile(rf"/w/{workspace.id}/destinations/\d+/$"))
    with workspace_scope(workspace.id):
        destination = Destination.objects.get()

    page.click("#destination-actions >> text=Test connection")
    result = page.locator("#test-result[data-ok=yes]")
    result.wait_for()
    assert f"Connected to ad account 'Acme Ads' (act_{ACCOUNT})." in result.inner_text()
    assert TOKEN not in page.content()
    screenshot(page, "destination-meta")

    page.goto(f"/w/{workspace.id}/audiences/{audience.id}/")
    page.locator("#audience-syncs-panel").wait_for()
    assert "No syncs yet." in page.inner_text("#audience-syncs")
    page.click("#audience-syncs >> text=Sync to a destination")
    page.wait_for_url(f"**/destinations/syncs/new/?audience={audience.id}")
    page.select_option("#id_destination", label="Meta ads")
    page.fill("#id_remote_audience_name", "Masivo VIP")
    screenshot(page, "sync-new")
    page.click("#sync-form button[type=submit]")
    page.wait_for_url(re.compile(rf"/w/{workspace.id}/destinations/syncs/\d+/$"))
    with workspace_scope(workspace.id):
        sync = AudienceSync.objects.get()
        run = sync.runs.get()
    assert (sync.destination_id, sync.identifiers) == (destination.id, ["email", "phone"])
    assert meta_fake.audiences[sync.remote_audience_id].name == "Masivo VIP"
    assert page.get_attribute("#sync-progress", "data-status") == "queued"
    assert (RUN_TASK, {"workspace_id": workspace.id, "run_id": run.id}) in woken

    # No worker here: the run executes in-process against the Meta fake, and the page's
    # progress partial (polling every 2 s) picks up the result.
    with workspace_scope(workspace.id):
        finished = sync_run_execute(run_id=run.id)
    assert finished.status == "succeeded", finished.error
    page.locator("#sync-progress[data-status=succeeded]").wait_for()
    progress = page.locator("#sync-progress")
    counts = {name: progress.locator(f"[data-count={name}]").inner_text()
              for name in ("to_add", "added", "to_remove", "removed", "failed")}  # fmt: skip
    assert counts == {"to_add": "2", "added": "2", "to_remove": "0", "removed": "0", "failed": "0"}
    assert progress.locator("[data-skipped=no_consent]").inner_text() == "1"
    assert meta_fake.values(sync.remote_audience_id, "EMAIL") == {
        sha256_hex(EMAILS[0]), sha256_hex(EMAILS[1]),
    }  # fmt: skip
    screenshot(page, "sync-succeeded")

    page.reload()
    assert "no_consent: 1" in page.inner_text("#runs")
    assert "2 customers" in page.inner_text(".details")
    assert page.console_errors == []
