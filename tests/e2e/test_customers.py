"""Customers in a real browser: search as you type, the profile, the timeline, consent, imports."""

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from profiles.models import ConsentChange, Customer, Device, Event, Identity
from profiles.tasks import import_customers
from tests.e2e.test_dashboard import sign_in
from tests.factories import CustomerFactory, MemberFactory, OrganizationFactory, WorkspaceFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PEOPLE = [
    ("Ana", "López", "MX"), ("Bruno", "Díaz", "AR"), ("Carla", "Méndez", "MX"),
    ("Diego", "Ramírez", "CO"), ("Elena", "Torres", "ES"), ("Fernando", "Ruiz", "MX"),
    ("Gabriela", "Castro", "CL"), ("Héctor", "Vargas", "PE"), ("Isabel", "Rojas", "MX"),
    ("Javier", "Morales", "US"),
]  # fmt: skip
CSV = (
    "external_id,email,first_name,last_name,country,plan,newsletter\n"
    "crm-1,new.one@example.com,Nora,Quiroga,MX,gold,yes\n"
    "crm-2,not-an-email,Omar,Paz,MX,silver,no\n"
    "crm-3,third@example.com,Paula,Ibarra,XX,free,yes\n"
    "crm-4,fourth@example.com,Raúl,Soto,CO,free,maybe\n"
    "crm-5,fifth@example.com,Sofía,Luna,AR,gold,no\n"
)


@pytest.fixture
def marketer():
    member = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.MARKETER)
    workspace = WorkspaceFactory(name="Acme", organization=member.organization)
    return member, workspace


def ascii_email(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def seed_customers(workspace) -> Customer:
    """Ten customers updated a day apart, Ana the most recent, with 40 events and a device."""
    with workspace_scope(workspace.id):
        customers = [
            CustomerFactory(
                workspace=workspace, external_id=f"crm-{100 + number}",
                email=ascii_email(f"{first}.{last}@example.com"),
                first_name=first, last_name=last, country=country,
                purchase_count=number, updated_at=NOW - timedelta(days=number),
                last_seen_at=NOW - timedelta(days=number, hours=3),
            )
            for number, (first, last, country) in enumerate(PEOPLE)
        ]  # fmt: skip
        ana = customers[0]
        Customer.objects.filter(id=ana.id).update(
            phone="+525512345678", city="Puebla", tier="gold", gender="female",
            traits={"plan": "pro", "signup_channel": "instagram", "favorite_categories": ["shoes"]},
            tags={"vip": True, "segment": "b2c"},
            consent={"email_marketing": {
                "status": "granted", "at": "2026-10-01T09:00:00+00:00", "source": "signup form",
            }},
            purchase_count=4, purchase_total=Decimal("3180.00"), purchases_30d_count=2,
            purchases_30d_total=Decimal("1290.00"), purchases_month_count=1,
            purchases_month_total=Decimal("590.00"), last_purchase_at=NOW - timedelta(days=2),
            metrics_updated_at=NOW,
        )  # fmt: skip
        Identity.objects.create(
            workspace=workspace, customer=ana, kind="anonymous_id", value="a-91"
        )
        Device.objects.create(
            workspace=workspace, customer=ana, token="fcm-3f9a0c7e55b1d2a4", platform="android",
            model="Pixel 8", os_version="15", expires_at=NOW + timedelta(days=270),
        )  # fmt: skip
        names = ["Product Viewed", "Added to Cart", "page", "purchase"]
        Event.objects.bulk_create(
            Event(
                workspace=workspace, customer=ana, name=f"{names[number % 4]} #{number}",
                type="page" if number % 4 == 2 else "track",
                properties={"sku": f"SKU-{number}", "price": 590, "currency": "MXN"},
                occurred_at=NOW - timedelta(hours=number), message_id=f"m-{number}",
                source="api",
            )
            for number in range(1, 41)
        )  # fmt: skip
    return ana


def test_search_open_a_profile_scroll_the_timeline_and_edit_consent(page, screenshot, marketer):
    member, workspace = marketer
    ana = seed_customers(workspace)
    sign_in(page, member.user.email)

    page.click("nav.sidebar >> text=Customers")
    page.wait_for_url(f"**/w/{workspace.id}/customers/")
    rows = page.locator("#customer-results tbody tr")
    expect(rows).to_have_count(10)
    assert rows.first.locator("td").first.inner_text().strip() == "Ana López"
    screenshot(page, "customers-list")

    page.fill("input[name=search]", "ana.l")
    expect(rows).to_have_count(1)
    page.wait_for_url(re.compile(r"\?search=ana\.l"))
    assert rows.first.locator("td").nth(1).inner_text() == "ana.lopez@example.com"
    screenshot(page, "customers-search")

    page.fill("input[name=search]", "")
    page.select_option("select[name=status]", "active")
    page.fill("input[name=country]", "mx")
    expect(rows).to_have_count(4)
    assert rows.locator("td:first-child a").all_inner_texts() == [
        "Ana López", "Carla Méndez", "Fernando Ruiz", "Isabel Rojas",
    ]  # fmt: skip
    screenshot(page, "customers-filtered")

    rows.locator("a", has_text="Ana López").click()
    page.wait_for_url(f"**/w/{workspace.id}/customers/{ana.id}/")
    assert page.inner_text("h1").startswith("Ana López")
    items = page.locator(".timeline-item")
    expect(items).to_have_count(25)
    assert items.first.locator(".timeline-name").inner_text() == "Added to Cart #1"
    screenshot(page, "customer-profile")

    page.locator(".timeline-more").scroll_into_view_if_needed()
    expect(items).to_have_count(40)
    expect(page.locator(".timeline-more")).to_have_count(0)
    assert items.last.locator(".timeline-name").inner_text() == "Product Viewed #40"

    page.select_option("#id_sms_marketing", "granted")
    page.select_option("#id_email_marketing", "denied")
    with page.expect_navigation():
        page.click("text=Save consent")
    assert page.url.endswith(f"/w/{workspace.id}/customers/{ana.id}/")
    expect(page.locator(".alert-success")).to_have_text(
        "Consent saved: Email marketing denied, SMS marketing granted."
    )
    screenshot(page, "customer-consent-saved")
    with workspace_scope(workspace.id):
        consent = Customer.objects.get(id=ana.id).consent
        history = list(ConsentChange.objects.order_by("id").values_list("purpose", "status"))
    assert {purpose: record["status"] for purpose, record in consent.items()} == {
        "email_marketing": "denied",
        "sms_marketing": "granted",
    }
    assert history == [("email_marketing", "denied"), ("sms_marketing", "granted")]
    assert page.console_errors == []


def test_upload_a_csv_and_watch_the_import_finish(page, screenshot, marketer, woken, tmp_path):
    member, workspace = marketer
    # No Celery worker here: `woken` records what the upload queues; run it from this thread.
    sign_in(page, member.user.email)
    page.goto(f"/w/{workspace.id}/customers/")
    page.click("text=Import a CSV")
    page.wait_for_url(f"**/w/{workspace.id}/customers/import/")

    page.set_input_files(
        "input[name=file]",
        files=[{"name": "spring-leads.csv", "mimeType": "text/csv", "buffer": CSV.encode()}],
    )
    page.fill("textarea[name=mapping]", '{"mapping": "email"}')
    page.click("text=Upload and import")
    expect(page.locator(".field-error")).to_have_text("The file has no column 'mapping'")
    screenshot(page, "customer-import-error")

    page.set_input_files(
        "input[name=file]",
        files=[{"name": "spring-leads.csv", "mimeType": "text/csv", "buffer": CSV.encode()}],
    )
    page.fill(
        "textarea[name=mapping]",
        '{"external_id": "external_id", "email": "email", "first_name": "first_name", '
        '"last_name": "last_name", "country": "country", "plan": "traits.plan", '
        '"newsletter": "consent.email_marketing"}',
    )
    page.click("text=Upload and import")
    page.wait_for_url(re.compile(rf"/w/{workspace.id}/customers/import/\d+/$"))
    expect(page.locator("#import-progress")).to_have_attribute("data-status", "queued")
    screenshot(page, "customer-import-queued")

    [(name, task)] = woken

    assert name == "profiles.import_customers"
    import_customers(**task)

    progress = page.locator("#import-progress[data-status=succeeded]")
    expect(progress).to_be_visible()
    expect(progress.locator(".progress-percent")).to_have_text("100%")
    expect(progress.locator("progress")).to_have_attribute("value", "100")
    report_link = progress.get_by_role("link", name="Download error report (3 rows)")
    expect(report_link).to_be_visible()
    screenshot(page, "customer-import-done")

    with page.expect_download() as download:
        report_link.click()
    saved = tmp_path / "errors.csv"
    download.value.save_as(saved)
    assert Path(saved).read_text().splitlines() == [
        "row,column,error",
        "2,email,'not-an-email' is not a valid email address",
        "3,country,'XX' is not an ISO 3166-1 alpha-2 country code",
        '4,newsletter,"use granted/denied (or yes/no, true/false, 1/0)"',
    ]
    with workspace_scope(workspace.id):
        assert sorted(Customer.objects.values_list("external_id", flat=True)) == [
            "crm-1",
            "crm-5",
        ]

    page.goto(f"/w/{workspace.id}/customers/import/")
    row = page.locator("tbody tr", has_text="spring-leads.csv")
    expect(row.locator(".badge-success")).to_have_text("Succeeded")
    screenshot(page, "customer-imports-list")
    # The refused upload answered 400, which Chromium logs; nothing else may.
    assert page.console_errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
