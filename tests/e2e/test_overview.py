"""The overview in a real browser: the figures and the server-drawn chart pass the strict CSP."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from profiles.models import Event
from tests.e2e.test_dashboard import sign_in
from tests.factories import (
    AudienceFactory,
    CustomerFactory,
    MemberFactory,
    OrganizationFactory,
    WorkspaceFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_overview_shows_figures_and_the_chart_without_csp_errors(page, screenshot):
    member = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.VIEWER)
    workspace = WorkspaceFactory(name="Acme", organization=member.organization)
    now = timezone.now()
    with workspace_scope(workspace.id):
        ana = CustomerFactory(workspace=workspace)
        for number in range(12):
            received_at = now - timedelta(minutes=7 * number)
            Event.objects.create(
                workspace=workspace, customer=ana, name="page_viewed", occurred_at=received_at,
                received_at=received_at, message_id=f"m-{number}", source="api",
                processed_at=received_at,
            )  # fmt: skip
        AudienceFactory(workspace=workspace, name="VIP", size=1)

    sign_in(page, member.user.email)

    stats = page.locator(".overview-stats")
    expect(stats).to_contain_text("Customers")
    expect(page.locator("[data-ingestion-lag]")).to_have_text("Up to date")
    expect(page.locator("svg.bar-chart rect.bar").first).to_be_attached()
    expect(page.locator("#overview-audiences-title")).to_have_text("Largest audiences")
    screenshot(page, "overview-at-a-glance")
    assert page.console_errors == []
