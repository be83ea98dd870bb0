"""Journeys in headless Chromium: build the cart-abandonment journey in the builder (trigger
Product Added; wait up to an hour for Order Completed; if it does not come, an email, a day's
delay, a push; goal Order Completed), see a step's error on its card until it is configured,
publish it with a note, then drive events and time in-process (no worker here: the pipeline's
follow-up and the journeys tick with a chosen `now`) and reload the builder to see the counts
on the flow and the customer's page to see their journey. Screenshots in
test-artifacts/screenshots."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from journeys.models import Journey, JourneyVersion
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from messaging.models import Message, Template, TemplateVersion
from tests.factories import MemberFactory, OrganizationFactory, WorkspaceFactory
from tests.journeys.test_engine import shopper, tick, track
from tests.messaging.test_sending_support import CONTENT

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's password


def templates(workspace) -> dict:
    made = {}
    with workspace_scope(workspace.id):
        for channel, name in (("email", "Come back"), ("push", "Still there?")):
            template = Template.objects.create(workspace=workspace, name=name, channel=channel)
            TemplateVersion.objects.create(
                workspace=workspace, template=template, number=1, content=CONTENT[channel]
            )
            made[channel] = template
    return made


def add_step(page, edge: str, label: str) -> None:
    """Open the "Add a step" control on an edge (source:field), choose the type, add it."""
    control = page.locator(f'details.add-step[data-edge="{edge}"]')
    control.locator("summary").click()
    control.locator("select").select_option(label=label)
    with page.expect_navigation():
        control.locator("button[type=submit]").click()


def configure(page, step_id: str, fields: dict, selects: dict | None = None) -> None:
    card = page.locator(f"#step-{step_id}")
    if not card.locator("details.step-config").evaluate("element => element.open"):
        card.locator("details.step-config > summary").click()
    for name, value in fields.items():
        page.fill(f"#id_{step_id}-{name}", value)
    for name, label in (selects or {}).items():
        page.select_option(f"#id_{step_id}-{name}", label=label)
    with page.expect_navigation():
        page.click(f"#step-{step_id}-form button[type=submit]")


def shot(screenshot, page, name: str) -> None:
    """From the top: a full-page screenshot scrolled to a step would cut the sticky bars in."""
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, name)


def counts(page, step_id: str) -> dict:
    stats = page.locator(f"#step-{step_id} [data-stat]")
    return {element.get_attribute("data-stat"): element.inner_text() for element in stats.all()}


def test_build_publish_and_watch_the_cart_abandonment_journey(page, screenshot):
    owner = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.MARKETER)
    workspace = WorkspaceFactory(name="Acme", organization=owner.organization)
    made = templates(workspace)
    page.goto("/login/")
    page.fill("#id_username", owner.user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/w/\d+/$"))

    page.click("nav.sidebar >> text=Journeys")
    page.wait_for_url(f"**/w/{workspace.id}/journeys/")
    assert "No journeys yet" in page.inner_text(".empty-state")
    page.click(".page-header >> text=New journey")
    page.fill("#id_name", "Cart abandonment")
    page.fill("#id_trigger_event", "Product Added")
    page.click("#journey-form button[type=submit]")
    page.wait_for_url(re.compile(rf"/w/{workspace.id}/journeys/\d+/$"))
    with workspace_scope(workspace.id):
        journey = Journey.objects.get()
    assert page.inner_text("#entry-title") == "When Product Added happens"

    add_step(page, ":start", "Wait for an event")
    errors = page.locator("#step-wait_event .step-errors")
    assert errors.inner_text() == "'event' is a required property"
    shot(screenshot, page, "journey-step-error")
    configure(
        page,
        "wait_event",
        {"event": "Order Completed", "timeout_amount": "1", "label": "Order within the hour?"},
        {"timeout_unit": "hours"},
    )
    assert page.locator("#step-wait_event .step-errors").count() == 0
    columns = page.locator('.flow-column[data-path^="wait_event:"] .flow-column-label')
    assert columns.all_inner_texts() == ["Order Completed came", "Timed out"]

    add_step(page, "wait_event:timeout_next", "Send email")
    picker = page.locator("#id_email-template_id option")
    assert picker.all_text_contents() == ["Choose a template", "Come back"]
    configure(page, "email", {}, {"template_id": "Come back"})
    add_step(page, "email:next", "Delay")
    configure(page, "delay", {"wait_amount": "1"}, {"wait_unit": "days"})
    add_step(page, "delay:next", "Send push")
    card = page.locator("#step-push")
    card.locator("details.step-config > summary").click()
    page.select_option("#id_push-channel", "email")  # htmx reloads the picker for the channel
    page.locator("#id_push-template_id option", has_text="Come back").wait_for(state="attached")
    page.select_option("#id_push-channel", "push")
    page.locator("#id_push-template_id option", has_text="Still there?").wait_for(state="attached")
    configure(page, "push", {}, {"template_id": "Still there?"})

    page.locator("#entry details.step-config > summary").click()
    page.fill("#id_entry-goal_event", "Order Completed")
    page.fill("#id_entry-goal_within_days", "7")
    page.select_option("#id_entry-reentry", label="Every time")
    with page.expect_navigation():
        page.click("#entry-form button[type=submit]")
    assert page.inner_text("#goal") == "Order Completed within 7 days"
    steps = page.locator("article.step-card").evaluate_all(
        "cards => cards.map(card => card.dataset.step)"
    )
    assert steps == ["wait_event", "email", "delay", "push", "end"]
    assert page.locator(".step-errors").count() == 0
    shot(screenshot, page, "journey-builder")

    page.fill("#id_journey-publish-note", "First version")
    with page.expect_navigation():
        page.click("#publish-form button[type=submit]")
    assert page.get_attribute("h1 .badge", "data-status") == "active"
    assert "Version 1 of Cart abandonment is live." in page.inner_text(".flash-stack")
    with workspace_scope(workspace.id):
        version = JourneyVersion.objects.get(journey=journey)
    assert version.graph["steps"] == {
        "wait_event": {
            "type": "wait_event",
            "label": "Order within the hour?",
            "event": "Order Completed",
            "timeout": {"hours": 1},
            "next": "end",
            "timeout_next": "email",
        },
        "email": {
            "type": "send",
            "channel": "email",
            "template_id": made["email"].id,
            "kind": "marketing",
            "quiet_hours": "defer",
            "next": "delay",
        },
        "delay": {"type": "delay", "duration": {"days": 1}, "next": "push"},
        "push": {
            "type": "send",
            "channel": "push",
            "template_id": made["push"].id,
            "kind": "marketing",
            "quiet_hours": "defer",
            "next": "end",
        },
        "end": {"type": "exit", "label": "End"},
    }
    assert (version.note, version.published_by) == ("First version", f"user:{owner.user.id}")

    # No worker here: the events' follow-up and the journeys tick run in-process, with the
    # clock chosen by the test.
    start = timezone.now()
    with workspace_scope(workspace.id):
        ana = shopper(workspace)
        track(workspace, ana, "Product Added", start, cart={"id": "c-1", "value": 80})
        tick(workspace, start)
        tick(workspace, start + timedelta(minutes=61))  # no order within the hour: the email
    page.reload()
    assert counts(page, "wait_event") == {"entered": "1", "waiting_now": "0"}
    assert counts(page, "email") == {
        "entered": "1",
        "sent": "1",
        "delivered": "0",
        "opened": "0",
        "clicked": "0",
    }
    assert counts(page, "delay") == {"entered": "1", "waiting_now": "1"}
    assert counts(page, "push")["sent"] == "0"
    assert page.inner_text('#journey-stats [data-stat="active"]') == "1"
    shot(screenshot, page, "journey-running")

    with workspace_scope(workspace.id):
        tick(workspace, start + timedelta(days=1, minutes=62))
        sent = list(Message.objects.filter(customer=ana).values_list("channel", flat=True))
    assert sent == ["email", "push"]
    page.reload()
    assert counts(page, "push")["sent"] == "1"
    assert counts(page, "end") == {"entered": "1", "exited": "1"}
    assert page.inner_text('#journey-stats [data-stat="completed"]') == "1"
    shot(screenshot, page, "journey-finished")

    page.goto(f"/w/{workspace.id}/customers/{ana.id}/")
    panel = page.locator("#customer-journeys")
    assert panel.locator("[data-state]").inner_text() == "Completed"
    panel.locator("details.history > summary").click()
    history = panel.locator(".journey-history li").all_inner_texts()
    assert [line.split(" · ")[:2] for line in history] == [
        ["wait_event", "timed_out → email"],
        ["email", "sent → delay"],
        ["delay", "passed → push"],
        ["push", "sent → end"],
        ["end", "exited"],
    ]
    shot(screenshot, page, "customer-journeys")
    assert page.console_errors == []
