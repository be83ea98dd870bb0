"""Audiences in a real browser: build nested rules by clicking, watch the live estimate, save,
recalculate, and explain a customer's membership from their profile."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from audiences.models import Audience, Membership
from audiences.recalculation import audience_recalculate
from audiences.services import audience_create
from audiences.tasks import recalculate_audience
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from profiles.models import Customer, Event
from tests.e2e.test_dashboard import sign_in
from tests.factories import CustomerFactory, MemberFactory, OrganizationFactory, WorkspaceFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

GRANTED = {"email_marketing": {"status": "granted", "at": "2026-10-01T09:00:00+00:00",
                               "source": "signup form"}}  # fmt: skip
# name, country, purchases in the last 30 days, email consent
PEOPLE = [
    ("Ana", "López", "MX", 3, True),
    ("Bruno", "Díaz", "MX", 1, False),
    ("Carla", "Méndez", "MX", 0, True),
    ("Diego", "Ramírez", "AR", 3, True),
    ("Elena", "Torres", "MX", 2, False),
    ("Fernando", "Ruiz", "CO", 0, False),
]
EXPECTED_RULES = {
    "version": 1,
    "root": {
        "all": [
            {"profile": {"field": "country", "op": "eq", "value": "MX"}},
            {
                "any": [
                    {"event": {"name": "purchase", "count": {"op": "gte", "value": 2},
                               "within": {"last": 30, "unit": "days"}}},
                    {"consent": {"purpose": "email_marketing", "allowed": True}},
                ]
            },
        ]
    },
}  # fmt: skip


# Changes between the Buyers audience's recalculations: (customer, buys or loses every purchase).
HISTORY = [("Carla", True), ("Bruno", False), ("Fernando", True), ("Diego", False),
           ("Bruno", True), ("Diego", True)]  # fmt: skip


@pytest.fixture
def marketer():
    member = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.MARKETER)
    workspace = WorkspaceFactory(name="Acme", organization=member.organization)
    return member, workspace


def seed(workspace) -> dict[str, Customer]:
    now = timezone.now()
    people = {}
    with workspace_scope(workspace.id):
        for first, last, country, purchases, consented in PEOPLE:
            customer = CustomerFactory(
                workspace=workspace, first_name=first, last_name=last, country=country,
                email=f"{first.lower()}@example.com", external_id=f"crm-{first.lower()}",
                consent=GRANTED if consented else {}, tags={"vip": purchases > 2},
                traits={"plan": "pro" if consented else "free"},
            )  # fmt: skip
            Event.objects.bulk_create(
                Event(
                    workspace=workspace, customer=customer, name="purchase",
                    properties={"revenue": 590, "currency": "MXN"},
                    occurred_at=now - timedelta(days=number + 1),
                    message_id=f"{first}-{number}", source="api",
                )
                for number in range(purchases)
            )  # fmt: skip
            people[first] = customer
        Event.objects.create(
            workspace=workspace, customer=people["Ana"], name="Product Viewed",
            properties={"sku": "SKU-1"}, occurred_at=now, message_id="view-1", source="api",
        )  # fmt: skip
    return people


def shoot(screenshot, page, name: str) -> None:
    """A full-page screenshot from the top (the sticky top bar would float mid-page)."""
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, name)


def estimate(page):
    return page.locator("#estimate-result .estimate-count")


def test_build_a_nested_audience_recalculate_it_and_explain_a_member(
    page, screenshot, marketer, woken
):
    member, workspace = marketer
    people = seed(workspace)
    # No Celery worker here: `woken` records what saving queues; the test runs it in this thread.
    sign_in(page, member.user.email)

    page.click("nav.sidebar >> text=Audiences")
    page.wait_for_url(f"**/w/{workspace.id}/audiences/")
    page.click("text=Create an audience")
    page.wait_for_url(f"**/w/{workspace.id}/audiences/new/")
    page.fill("#id_name", "Engaged in Mexico")

    builder = page.locator("[data-rule-builder]")
    root = builder.locator(".rb-tree > .rb-group")
    first = root.locator(":scope > .rb-children > .rb-item > .rb-condition").first
    expect(first.locator(".rb-field")).to_have_value("country")
    first.locator(".rb-value").fill("MX")
    expect(estimate(page)).to_have_text("4")

    root.locator(":scope > .rb-group-head .rb-add-group").click()
    nested = root.locator(":scope > .rb-children .rb-group")
    expect(nested.locator(".rb-group-kind")).to_have_value("any")
    event = nested.locator(".rb-condition").first
    event.locator(".rb-kind").select_option("event")
    expect(event.locator(".rb-event-name")).to_have_value("Product Viewed")
    event.locator(".rb-event-name").select_option("purchase")
    event.locator(".rb-count-value").fill("2")
    event.locator(".rb-window").select_option("last")
    expect(event.locator(".rb-window-last")).to_have_value("30")
    nested.locator(":scope > .rb-group-head .rb-add-condition").click()
    consent = nested.locator(".rb-condition").nth(1)
    consent.locator(".rb-kind").select_option("consent")
    expect(consent.locator(".rb-consent-purpose")).to_have_value("email_marketing")
    expect(estimate(page)).to_have_text("3")
    expect(page.locator("#estimate-result .estimate-sample li")).to_have_count(3)
    assert json.loads(page.input_value("#id_rules")) == EXPECTED_RULES
    shoot(screenshot, page, "audience-builder")

    page.click("text=Create audience")
    page.wait_for_url(re.compile(rf"/w/{workspace.id}/audiences/\d+/$"))
    expect(page.locator("#recalculation-status")).to_have_attribute("data-status", "queued")
    shoot(screenshot, page, "audience-queued")

    [(name, task)] = woken

    assert name == "audiences.recalculate"
    recalculate_audience(**task)

    expect(page.locator("#recalculation-status")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("[data-audience-size]")).to_have_text("3")
    members = page.locator("#members tbody tr td:first-child a")
    expect(members).to_have_count(3)
    assert sorted(members.all_inner_texts()) == ["Ana López", "Carla Méndez", "Elena Torres"]
    shoot(screenshot, page, "audience-detail")
    with workspace_scope(workspace.id):
        audience = Audience.objects.get(name="Engaged in Mexico")
        assert audience.rules == EXPECTED_RULES
        assert set(
            Membership.objects.filter(audience=audience).values_list("customer_id", flat=True)
        ) == {people["Ana"].id, people["Carla"].id, people["Elena"].id}

    page.goto(f"/w/{workspace.id}/customers/{people['Carla'].id}/")
    row = page.locator("#audiences tbody tr", has_text="Engaged in Mexico")
    row.get_by_role("link", name="Explain").click()
    page.wait_for_url(f"**/w/{workspace.id}/audiences/{audience.id}/explain/{people['Carla'].id}/")
    expect(page.locator("h1 .badge")).to_have_text("Matches")
    marks = page.locator(".rule-tree-explained .rule-mark")
    assert marks.evaluate_all("marks => marks.map(mark => mark.textContent)") == [
        "✓", "✓", "✓", "✗", "✓",
    ]  # fmt: skip
    expect(page.locator(".rule-node-actual").nth(1)).to_have_text(
        "Never performed (with these filters)"
    )
    shoot(screenshot, page, "audience-explain")
    assert page.console_errors == []


def test_sizes_over_time_recalculate_now_and_editing_saved_rules(page, screenshot, marketer, woken):
    member, workspace = marketer
    people = seed(workspace)
    with workspace_scope(workspace.id):
        buyers = audience_create(
            workspace=workspace,
            data={"name": "Buyers", "schedule": "hourly", "is_realtime": True, "rules": {
                "version": 1, "root": {"event": {"name": "purchase"}}}},
        )  # fmt: skip
        [(_, first_run)] = woken
        recalculate_audience(**first_run)
        # A history that moves: buyers come (a purchase) and go (their purchases deleted).
        for number, (first, bought) in enumerate(HISTORY):
            if bought:
                Event.objects.create(
                    workspace=workspace, customer=people[first], name="purchase",
                    properties={"revenue": 90}, occurred_at=timezone.now(),
                    message_id=f"late-{number}", source="api",
                )  # fmt: skip
            else:
                Event.objects.filter(customer=people[first], name="purchase").delete()
            audience_recalculate(audience=buyers, reason="schedule")
        audience_create(workspace=workspace, data={"name": "Mexico", "rules": EXPECTED_RULES})
        audience_create(workspace=workspace, data={"name": "VIP list", "kind": "list"})
    woken.clear()
    sign_in(page, member.user.email)

    page.goto(f"/w/{workspace.id}/audiences/")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(3)
    assert rows.locator("td:first-child a").all_inner_texts() == ["Buyers", "Mexico", "VIP list"]
    expect(rows.first.locator("svg.sparkline")).to_have_count(1)
    shoot(screenshot, page, "audiences-list")

    page.click("text=Buyers")
    page.wait_for_url(f"**/w/{workspace.id}/audiences/{buyers.id}/")
    expect(page.locator("#history-title + p")).to_have_text("The latest 7 runs, newest first.")
    page.click("text=Recalculate now")
    status = page.locator("#recalculation-status")
    expect(status).to_have_attribute("data-status", "queued")
    [(name, task)] = woken
    assert name == "audiences.recalculate"
    recalculate_audience(**task)
    expect(status).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#history-title + p")).to_have_text("The latest 8 runs, newest first.")
    shoot(screenshot, page, "audience-detail-history")

    page.goto(f"/w/{workspace.id}/audiences/{buyers.id}/edit/")
    condition = page.locator(".rb-condition")
    expect(condition).to_have_count(1)
    expect(condition.locator(".rb-event-name")).to_have_value("purchase")
    expect(estimate(page)).to_have_text("6")
    condition.locator(".rb-add-where").click()
    where = condition.locator(".rb-sub")
    where.locator(".rb-property").fill("revenue")
    where.locator(".rb-json-kind").select_option("number")
    where.locator(".rb-op").select_option("gte")
    where.locator(".rb-value").fill("1000")
    expect(estimate(page)).to_have_text("0")
    where.locator(".rb-op").select_option("gt")
    where.locator(".rb-value").fill("")
    # A filter without its value leaves the condition incomplete: flagged, not estimated.
    expect(condition.locator(".rb-incomplete-note")).to_have_text(
        "Incomplete: give the value of filter 1. Not counted in the estimate and not saved."
    )
    expect(page.locator("#estimate-result .estimate-problem")).to_have_text(
        "Complete a condition to see how many customers match."
    )
    where.locator(".rb-value").fill("1000")
    where.locator(".rb-property").fill("revenue..net")
    expect(page.locator("#estimate-result [data-error-path]")).to_have_text(
        "$.root.all[0].event.where[0].property a property name (dots for nesting)"
    )
    # The problem is marked on the property filter's line, not the whole condition.
    expect(page.locator(".rb-has-error")).to_have_count(1)
    expect(where).to_have_class(re.compile(r"\brb-has-error\b"))
    shoot(screenshot, page, "audience-builder-error")
    assert page.console_errors == []


def test_json_typed_by_hand_drives_the_builder_and_a_list_takes_members_by_id(
    page, screenshot, marketer, woken
):
    member, workspace = marketer
    people = seed(workspace)
    with workspace_scope(workspace.id):
        mexico = audience_create(
            workspace=workspace,
            data={
                "name": "Mexico",
                "rules": {
                    "version": 1,
                    "root": {"profile": {"field": "country", "op": "eq", "value": "MX"}},
                },
            },
        )
        [(_, first_run)] = woken
        recalculate_audience(**first_run)
    typed = {"version": 1, "root": {"not": {"any": [
        {"audience": {"id": mexico.id, "in": True}},
        {"device": {"has_active": True, "platform": "ios"}},
        {"profile": {"field": "traits.plan", "op": "in", "value": ["pro", "gold"]}},
    ]}}}  # fmt: skip
    sign_in(page, member.user.email)
    page.goto(f"/w/{workspace.id}/audiences/new/")

    page.click("text=Edit as JSON")
    page.fill("#id_rules", json.dumps(typed, indent=2))
    root = page.locator(".rb-tree > .rb-group")
    expect(root.locator(":scope > .rb-group-head .rb-group-kind")).to_have_value("none")
    kinds = root.locator(".rb-condition .rb-kind")
    assert kinds.evaluate_all("s => s.map(s => s.value)") == ["audience", "device", "profile"]
    expect(root.locator(".rb-audience")).to_have_value(str(mexico.id))
    expect(root.locator(".rb-device-platform")).to_have_value("ios")
    expect(root.locator(".rb-field")).to_have_value("traits.plan")
    expect(root.locator(".rb-value-list")).to_have_value("pro, gold")
    # Neither in Mexico nor on the pro plan: Fernando (Diego, in Argentina, is on pro).
    expect(estimate(page)).to_have_text("1")
    shoot(screenshot, page, "audience-builder-json")

    page.fill("#id_rules", '{"version": 1, "root": ')
    expect(page.locator(".rb-notice")).to_have_text(
        "The JSON below does not parse yet; the builder follows it once it does."
    )
    expect(page.locator("#estimate-result .estimate-problem")).to_contain_text("not valid JSON")

    page.check("text=An uploaded list of customers")
    expect(page.locator("#rules-title")).to_be_hidden()
    page.fill("#id_name", "Launch party")
    page.click("text=Create audience")
    page.wait_for_url(re.compile(rf"/w/{workspace.id}/audiences/\d+/$"))
    ids = f"{people['Ana'].id}, {people['Fernando'].id}"
    page.fill("#id_customer_ids", ids)
    page.click("text=Add to the list")
    expect(page.locator(".alert-success")).to_have_text("Added 2 customers.")
    expect(page.locator("#members tbody tr")).to_have_count(2)
    expect(page.locator("[data-audience-size]")).to_have_text("2")
    shoot(screenshot, page, "audience-uploaded-list")
    assert page.console_errors == []


def test_event_details_write_the_documented_json(page, marketer):
    member, workspace = marketer
    seed(workspace)
    sign_in(page, member.user.email)
    page.goto(f"/w/{workspace.id}/audiences/new/")

    condition = page.locator(".rb-condition").first
    condition.locator(".rb-kind").select_option("event")
    condition.locator(".rb-event-name").select_option("purchase")
    condition.locator(".rb-count-op").select_option("between")
    condition.locator(".rb-count-value").nth(1).fill("5")
    condition.locator(".rb-add-where").click()
    where = condition.locator(".rb-sub").first
    where.locator(".rb-property").fill("currency")
    where.locator(".rb-value").fill("MXN")
    condition.locator(".rb-add-aggregate").click()
    aggregate = condition.locator(".rb-sub").nth(1)
    aggregate.locator(".rb-aggregate-fn").select_option("avg")
    aggregate.locator(".rb-property").fill("revenue")
    aggregate.locator(".rb-value").fill("500")
    condition.locator(".rb-add-bound").click()
    condition.locator(".rb-sub").nth(2).locator(".rb-bound-value").fill("2026-01-01T00:00")
    # Everyone who bought (Ana, Bruno, Diego, Elena) paid 590 in MXN, lately.
    expect(estimate(page)).to_have_text("4")

    assert json.loads(page.input_value("#id_rules")) == {
        "version": 1,
        "root": {"all": [{"event": {
            "name": "purchase",
            "count": {"op": "between", "value": [1, 5]},
            "where": [{"property": "currency", "op": "eq", "value": "MXN"}],
            "aggregate": {"fn": "avg", "property": "revenue", "op": "gte", "value": 500},
            "first": {"op": "after", "value": "2026-01-01T00:00:00Z"},
        }}]},
    }  # fmt: skip
    aggregate.locator(".rb-value").fill("600")
    expect(estimate(page)).to_have_text("0")
    assert page.console_errors == []


def test_incomplete_conditions_are_flagged_and_never_estimated_or_saved(
    page, screenshot, marketer, woken
):
    member, workspace = marketer
    seed(workspace)
    sign_in(page, member.user.email)
    page.goto(f"/w/{workspace.id}/audiences/new/")
    page.fill("#id_name", "Mexico")
    root = page.locator(".rb-tree > .rb-group")
    first = root.locator(":scope > .rb-children > .rb-item > .rb-condition").first

    # A new audience starts with "Country is …": incomplete until it has a value.
    expect(first).to_have_class(re.compile(r"\brb-incomplete\b"))
    expect(first.locator(".rb-incomplete-note")).to_have_text(
        "Incomplete: give a value. Not counted in the estimate and not saved."
    )
    assert page.input_value("#id_rules") == ""
    expect(page.locator("#estimate-result .estimate-problem")).to_have_text(
        "Complete a condition to see how many customers match."
    )
    first.locator(".rb-value").fill("MX")
    expect(estimate(page)).to_have_text("4")
    expect(first).not_to_have_class(re.compile(r"\brb-incomplete\b"))
    expect(first.locator(".rb-incomplete-note")).to_have_count(0)

    # "+ Group" adds a blank condition: flagged, left out, and the estimate stays.
    root.locator(":scope > .rb-group-head .rb-add-group").click()
    blank = root.locator(":scope > .rb-children .rb-group .rb-condition").first
    expect(blank.locator(".rb-incomplete-note")).to_have_text(
        "Incomplete: give a value. Not counted in the estimate and not saved."
    )
    assert json.loads(page.input_value("#id_rules")) == {
        "version": 1,
        "root": {"all": [{"profile": {"field": "country", "op": "eq", "value": "MX"}}]},
    }
    expect(estimate(page)).to_have_text("4")
    shoot(screenshot, page, "audience-builder-incomplete")

    # Saving waits: the alert counts what is incomplete, and nothing is stored.
    page.click("text=Create audience")
    expect(page.locator("[data-incomplete-alert]")).to_have_text(
        "Complete or remove the incomplete condition (marked below) before saving."
    )
    assert page.url.endswith(f"/w/{workspace.id}/audiences/new/")
    with workspace_scope(workspace.id):
        assert not Audience.objects.exists()
    assert woken == []

    # Completing it saves both conditions.
    blank.locator(".rb-field").select_option("tier")
    blank.locator(".rb-value").fill("gold")
    expect(blank.locator(".rb-incomplete-note")).to_have_count(0)
    page.click("text=Create audience")
    page.wait_for_url(re.compile(rf"/w/{workspace.id}/audiences/\d+/$"))
    with workspace_scope(workspace.id):
        assert Audience.objects.get().rules == {
            "version": 1,
            "root": {
                "all": [
                    {"profile": {"field": "country", "op": "eq", "value": "MX"}},
                    {"any": [{"profile": {"field": "tier", "op": "eq", "value": "gold"}}]},
                ]
            },
        }
    assert page.console_errors == []
