"""A webhook end to end in headless Chromium: create an endpoint in the dashboard (the secret
shown once), an event arrives through the ingestion follow-up, forwarding turns it into a
delivery, the sender signs and posts it to a receiver that verifies the Standard Webhooks
signature, and the endpoint's delivery log shows it delivered. Screenshots in
test-artifacts/screenshots."""

import re

import pytest
from django.utils import timezone

from destinations.forwarding import forwarding_tick_one
from destinations.models import Destination
from destinations.webhooks import deliveries_send_until_idle
from masivo.pipeline import process_events_now
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from profiles.models import Event
from tests.e2e.conftest import browser, page, screenshot, woken  # noqa: F401 (shared fixtures)
from tests.factories import CustomerFactory, MemberFactory, OrganizationFactory, WorkspaceFactory
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.feeds.support import wait_until_committed_rows_readable

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's password


@pytest.fixture
def receiver():
    fake = WebhookReceiver().start()
    yield fake
    fake.stop()


def test_create_a_webhook_send_an_event_and_see_the_signed_delivery(page, screenshot, woken,  # noqa: F811
                                                                     receiver):  # fmt: skip
    owner = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.OWNER)
    workspace = WorkspaceFactory(name="Acme", organization=owner.organization)
    page.goto("/login/")
    page.fill("#id_username", owner.user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/w/\d+/$"))

    page.goto(f"/w/{workspace.id}/destinations/webhooks/new/")
    page.fill("#id_name", "Order feed")
    page.fill("#id_url", f"{receiver.url}/hooks/masivo")
    page.check("input[name=topics][value='event.tracked']")
    page.fill("#id_event_names", "Order Completed")
    screenshot(page, "webhook-new")
    page.click("#webhook-form button[type=submit]")
    page.wait_for_selector("#new-secret")
    secret = page.inner_text("#new-secret code")
    assert secret.startswith("whsec_")
    screenshot(page, "webhook-created-secret-once")
    receiver.trust(secret)

    with workspace_scope(workspace.id):
        endpoint = Destination.objects.get(kind="webhook")
        assert endpoint.forwarding["enabled"] is True
        ana = CustomerFactory(workspace=workspace, email="ana@acme.example")
        for name, message_id in (("Order Completed", "order-77"), ("Page Viewed", "page-1")):
            Event.objects.create(workspace=workspace, customer=ana, name=name,
                                 properties={"order_id": "77", "total": 120},
                                 occurred_at=timezone.now(), message_id=message_id,
                                 source="api")  # fmt: skip
        process_events_now(workspace=workspace)
        wait_until_committed_rows_readable()
        forwarding_tick_one(endpoint)  # Page Viewed is filtered out by the event names
    report = deliveries_send_until_idle(max_seconds=10)
    assert report.claimed == 1

    assert list(receiver.seen.values()) == [1]
    (payload,) = receiver.applied.values()
    assert payload["type"] == "event.tracked"
    assert payload["data"]["event"]["name"] == "Order Completed"
    assert receiver.rejected == []
    page.goto(f"/w/{workspace.id}/destinations/webhooks/{endpoint.id}/")
    row = page.inner_text("#delivery-log tbody tr")
    assert "event.tracked" in row and "200" in row
    screenshot(page, "webhook-delivery-log")
    assert page.console_errors == []
