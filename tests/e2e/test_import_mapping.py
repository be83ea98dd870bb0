"""The import form pre-fills its mapping from the chosen file's header, as the server maps it."""

import json

import pytest
from playwright.sync_api import expect

from masivo.tenancy.roles import Role
from tests.e2e.test_dashboard import sign_in
from tests.factories import MemberFactory, OrganizationFactory, WorkspaceFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CSV = '\ufeffexternal_id,Email,"First Name",Plan,"a, b"\nu1,ana@example.com,Ana,gold,x\n'


def test_choosing_a_file_pre_fills_the_mapping_and_keeps_an_edited_one(page):
    member = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.MARKETER)
    workspace = WorkspaceFactory(name="Acme", organization=member.organization)
    sign_in(page, member.user.email)
    page.goto(f"/w/{workspace.id}/customers/import/")
    file = {"name": "leads.csv", "mimeType": "text/csv", "buffer": CSV.encode()}

    page.set_input_files("input[name=file]", files=[file])

    box = page.locator("textarea[name=mapping]")
    expect(box).not_to_have_value("")
    assert json.loads(box.input_value()) == {
        "external_id": "external_id",
        "Email": "email",
        "First Name": "first_name",
        "Plan": "traits.Plan",
        "a, b": "traits.a, b",
    }
    expect(page.locator("[data-mapping-note]")).to_have_text(
        "Pre-filled from the file's header: external_id, Email, First Name map to fields; "
        'Plan, a, b become traits. Set a column to "ignore" to leave it out.'
    )
    box.fill('{"Plan": "tags.plan"}')
    page.set_input_files("input[name=file]", files=[file])
    expect(box).to_have_value('{"Plan": "tags.plan"}')
    assert page.console_errors == []
