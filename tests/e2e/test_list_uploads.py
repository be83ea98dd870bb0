"""Uploaded lists in a real browser: upload a CSV of emails to a list, watch it finish, download
the rows that added no one."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from audiences.models import Membership
from audiences.services import audience_create, list_members_change
from audiences.tasks import process_list_upload
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from tests.e2e.test_dashboard import sign_in
from tests.factories import CustomerFactory, MemberFactory, OrganizationFactory, WorkspaceFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PEOPLE = [("Ana", "López"), ("Bruno", "Díaz"), ("Carla", "Méndez"), ("Diego", "Ramírez")]
# Ana and Bruno join, Carla is already in the list, two match no one and one is not an email.
CSV = (
    "email\n"
    "ana@example.com\n"
    "BRUNO@example.com\n"
    "carla@example.com\n"
    "ghost@example.com\n"
    "not-an-email\n"
    "nobody@example.org\n"
)


@pytest.fixture
def marketer():
    member = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.MARKETER)
    workspace = WorkspaceFactory(name="Acme", organization=member.organization)
    return member, workspace


def seed_list(workspace):
    """The "Newsletter winners" list holding Carla; Ana, Bruno and Diego are customers too."""
    with workspace_scope(workspace.id):
        customers = {
            first: CustomerFactory(
                workspace=workspace, first_name=first, last_name=last,
                email=f"{first.lower()}@example.com", external_id=f"crm-{first.lower()}",
            )
            for first, last in PEOPLE
        }  # fmt: skip
        audience = audience_create(
            workspace=workspace, data={"name": "Newsletter winners", "kind": "list"}
        )
        list_members_change(audience=audience, add=[customers["Carla"].id], remove=[], actor="crm")
    return audience


def csv_payload(name: str = "winners.csv") -> list[dict]:
    return [{"name": name, "mimeType": "text/csv", "buffer": CSV.encode()}]


def test_upload_a_list_of_emails_and_watch_it_finish(page, screenshot, marketer, woken, tmp_path):
    member, workspace = marketer
    audience = seed_list(workspace)
    # No Celery worker here: `woken` records what the upload queues; run it from this thread.
    sign_in(page, member.user.email)
    page.goto(f"/w/{workspace.id}/audiences/")
    page.click("text=Newsletter winners")
    page.wait_for_url(f"**/w/{workspace.id}/audiences/{audience.id}/")
    expect(page.locator("#list-uploads-recent")).to_have_text("No files uploaded to this list yet.")
    screenshot(page, "list-upload-audience-before")

    page.get_by_role("link", name="Upload a CSV").click()
    page.wait_for_url(f"**/w/{workspace.id}/audiences/{audience.id}/uploads/")
    page.set_input_files("input[name=file]", files=csv_payload())
    page.select_option("select[name=identifier]", "phone")
    page.check("input[name=create_missing]")
    page.click("text=Upload and add")
    expect(page.locator(".field-error")).to_have_text(
        "Missing customers can be created from external ids or emails only"
    )
    screenshot(page, "list-upload-error")

    page.set_input_files("input[name=file]", files=csv_payload())
    page.select_option("select[name=identifier]", "email")
    page.uncheck("input[name=create_missing]")
    page.click("text=Upload and add")
    page.wait_for_url(re.compile(rf"/w/{workspace.id}/audiences/{audience.id}/uploads/\d+/$"))
    expect(page.locator("#list-upload-progress")).to_have_attribute("data-status", "queued")
    expect(page.locator(".progress-percent")).to_have_text("0%")
    screenshot(page, "list-upload-queued")

    [(name, task)] = woken

    assert name == "audiences.process_list_upload"
    assert task["workspace_id"] == workspace.id
    process_list_upload(**task)

    progress = page.locator("#list-upload-progress[data-status=succeeded]")
    expect(progress).to_be_visible()
    expect(progress.locator(".progress-percent")).to_have_text("100%")
    expect(progress.locator("progress")).to_have_attribute("value", "100")
    counts = dict(
        zip(
            progress.locator(".stat-label").all_inner_texts(),
            progress.locator(".stat-value").all_inner_texts(),
            strict=True,
        )
    )
    assert counts == {
        "Added": "2",
        "Already members": "1",
        "Customers created": "0",
        "Unmatched": "2",
        "Invalid": "1",
    }
    report_link = progress.get_by_role("link", name="Download the rows that added no one (3)")
    expect(report_link).to_be_visible()
    screenshot(page, "list-upload-done")

    with page.expect_download() as download:
        report_link.click()
    saved = tmp_path / "problems.csv"
    download.value.save_as(saved)
    assert Path(saved).read_text().splitlines() == [
        "row,value,reason",
        "5,ghost@example.com,no customer with this email",
        "6,not-an-email,invalid email: 'not-an-email' is not a valid email address",
        "7,nobody@example.org,no customer with this email",
    ]
    with workspace_scope(workspace.id):
        assert sorted(
            Membership.objects.filter(audience=audience).values_list("customer__email", "source")
        ) == [
            ("ana@example.com", "list"),
            ("bruno@example.com", "list"),
            ("carla@example.com", "list"),
        ]

    progress.get_by_role("link", name="See the members").click()
    page.wait_for_url(f"**/w/{workspace.id}/audiences/{audience.id}/#members")
    expect(page.locator("[data-audience-size]")).to_have_text("3")
    row = page.locator("#list-uploads-recent tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".badge-success")).to_have_text("Succeeded")
    expect(row.locator("td a")).to_have_text("winners.csv")
    page.evaluate("window.scrollTo(0, 0)")  # a full-page shot of a scrolled page breaks the bars
    screenshot(page, "list-upload-audience-after")
    # The refused upload answered 400, which Chromium logs; nothing else may.
    assert page.console_errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
