"""A campaign in a real browser: build it to an audience (the estimate shows who it reaches),
send it, run the start and the sender in-process against the SendGrid fake, watch the live
progress reach 100%, and open the stats. Screenshots in test-artifacts/screenshots/."""

import pytest
from playwright.sync_api import expect

from audiences.models import Audience, Membership
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from messaging import campaigns
from messaging.feedback.engagement import record_engagement
from messaging.models import Campaign, Message, Template, TemplateVersion
from messaging.sending import send_until_idle
from profiles.services.settings import profile_settings_get
from tests.e2e.conftest import browser, page, screenshot, woken  # noqa: F401 (shared fixtures)
from tests.e2e.test_dashboard import sign_in
from tests.factories import CustomerFactory, MemberFactory, OrganizationFactory, WorkspaceFactory
from tests.fakes.conftest import sendgrid_fake, sendgrid_server  # noqa: F401 (shared fixtures)
from tests.messaging.test_sending_support import connect_sendgrid

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

GRANTED = {"email_marketing": {"status": "granted", "at": "2026-10-01T09:00:00+00:00",
                               "source": "signup form"}}  # fmt: skip
PEOPLE = [("Ana", True), ("Bruno", True), ("Carla", True), ("Diego", False)]


@pytest.fixture
def acme(settings, sendgrid_fake):  # noqa: F811
    settings.MASIVO_SEND_RATES = {"sendgrid": 1000, "fcm": 1000, "twilio": 1000, "in_app": 1000}
    member = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.MARKETER)
    workspace = WorkspaceFactory(name="Acme", organization=member.organization)
    with workspace_scope(workspace.id):
        profile = profile_settings_get(workspace=workspace)
        profile.consent_regime = "opt_in"
        profile.save()
        connect_sendgrid(workspace, sendgrid_fake)
        template = Template.objects.create(workspace=workspace, name="Summer sale", channel="email")
        TemplateVersion.objects.create(
            workspace=workspace, template=template, number=1,
            content={"subject": "{{ customer.first_name }}, the sale is on",
                     "html": "<p>Hi {{ customer.first_name }}, 30% off this week.</p>"},
        )  # fmt: skip
        audience = Audience.objects.create(
            workspace=workspace, name="VIP customers", kind="list", rules=None, profile_fields=[]
        )
        for index, (name, consents) in enumerate(PEOPLE):
            customer = CustomerFactory(
                workspace=workspace, first_name=name, email=f"{name.lower()}@example.com",
                consent=GRANTED if consents else {}, external_id=f"c{index}",
            )  # fmt: skip
            Membership.objects.create(
                workspace=workspace, audience=audience, customer=customer, source="list"
            )
    return member, workspace, audience, template


def test_build_send_watch_progress_and_open_the_stats(page, screenshot, woken, acme, sendgrid_fake):  # noqa: F811
    member, workspace, audience, template = acme
    sign_in(page, member.user.email)

    page.goto(f"/w/{workspace.id}/campaigns/")
    page.click("text=New campaign")
    page.fill("#id_name", "Summer sale")
    page.select_option("#id_channel", "email")
    page.select_option("#id_template", str(template.id))
    page.check(f"input[name=audiences][value='{audience.id}']")
    page.click("button:has-text('Estimate reach')")
    expect(page.locator("#estimate")).to_contain_text("3 of 4 reachable: 1 no consent")
    screenshot(page, "campaign-builder-estimate")

    page.click("button:has-text('Save draft')")
    expect(page.locator("h1")).to_have_text("Summer sale")
    with workspace_scope(workspace.id):
        campaign = Campaign.objects.get()
    page.click("button:has-text('Send now')")
    expect(page.locator(".alert").first).to_contain_text("Summer sale is starting.")
    assert ("messaging.campaign_start", {"workspace_id": workspace.id,
                                         "campaign_id": campaign.id}) in woken  # fmt: skip

    # No worker here: the start and the sender run in-process, against the SendGrid fake.
    with workspace_scope(workspace.id):
        started = campaigns.campaign_start(campaign_id=campaign.id)
    assert started.created == {"ok": 3, "no_consent": 1}
    report = send_until_idle(workspace_id=workspace.id)
    assert report.claimed == 3
    assert sorted(
        p["to"][0]["email"] for r in sendgrid_fake.mail_sends for p in r.json["personalizations"]
    ) == ["ana@example.com", "bruno@example.com", "carla@example.com"]

    progress = page.locator("#campaign-progress")
    expect(progress).to_have_attribute("data-percent", "100", timeout=15_000)
    assert campaigns.campaigns_tick()["completed"] == [campaign.id]
    expect(progress).to_have_attribute("data-status", "completed", timeout=15_000)
    expect(progress).to_contain_text("Completed")
    screenshot(page, "campaign-progress-complete")

    # Delivery feedback as the SendGrid webhook records it: Ana opens, Bruno's is delivered,
    # Carla's bounces.
    with workspace_scope(workspace.id):
        by_name = {m.customer.first_name: m for m in Message.objects.select_related("customer")}
        for name, status in (("Ana", "delivered"), ("Ana", "opened"), ("Bruno", "delivered"),
                             ("Carla", "bounced")):  # fmt: skip
            record_engagement(by_name[name], status, detail=f"SendGrid: {status}")
    page.reload()
    stats = page.locator("#campaign-stats")
    expect(stats.locator("[data-stat=sent]")).to_have_text("3")
    expect(stats.locator("[data-stat=delivered]")).to_have_text("2")
    expect(stats.locator("[data-stat=opened]")).to_have_text("1")
    expect(stats.locator("[data-stat=bounced]")).to_have_text("1")
    expect(stats.locator("svg[role=img]")).to_be_visible()
    stats.scroll_into_view_if_needed()
    screenshot(page, "campaign-stats")
    assert page.console_errors == []
