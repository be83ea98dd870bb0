"""A partial import mapping: columns it leaves out map to the field they are named like (API and
dashboard alike), others are ignored and the import says so."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from masivo.tenancy.context import workspace_scope
from profiles.models import Customer, CustomerImport
from profiles.tasks import import_customers

pytestmark = pytest.mark.django_db

CSV = "external_id,Email,first_name,Plan,notes\nu1,ana@example.com,Ana,gold,call back\n"


def csv_file(content: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("customers.csv", content.encode(), content_type="text/csv")


def the_import(workspace) -> CustomerImport:
    with workspace_scope(workspace.id):
        return CustomerImport.objects.get()


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        (
            {"Plan": "traits.plan"},
            {"external_id": "external_id", "Email": "email", "first_name": "first_name",
             "Plan": "traits.plan", "notes": "ignore"},
        ),
        (
            {"first_name": "ignore", "notes": "traits.notes"},
            {"external_id": "external_id", "Email": "email", "first_name": "ignore",
             "Plan": "ignore", "notes": "traits.notes"},
        ),
        # A column named like a field another column is mapped to is left out, not doubled.
        (
            {"notes": "email"},
            {"external_id": "external_id", "Email": "ignore", "first_name": "first_name",
             "Plan": "ignore", "notes": "email"},
        ),
    ],
)  # fmt: skip
def test_the_api_completes_a_partial_mapping(api, workspace, mapping, expected):
    response = api.post(
        "/api/v1/customer-imports", {"file": csv_file(CSV), "mapping": json.dumps(mapping)}
    )

    assert response.status_code == 202
    assert response.json()["match_by"] == "external_id"
    assert the_import(workspace).mapping == expected


def test_the_dashboard_imports_the_named_columns_with_a_partial_mapping(member_client, workspace):
    response = member_client.post(
        f"/w/{workspace.id}/customers/import/",
        {"file": csv_file(CSV), "mapping": '{"Plan": "traits.plan"}'},
    )

    assert response.status_code == 302
    customer_import = the_import(workspace)
    import_customers(workspace_id=workspace.id, import_id=customer_import.id)
    with workspace_scope(workspace.id):
        ana = Customer.objects.get()
    assert (ana.external_id, ana.email, ana.first_name, ana.traits) == (
        "u1", "ana@example.com", "Ana", {"plan": "gold"},
    )  # fmt: skip
    detail = member_client.get(f"/w/{workspace.id}/customers/import/{customer_import.id}/")
    assert detail.context["ignored_columns"] == ["notes"]
    assert "Ignored: <code>notes</code>." in detail.content.decode()


def test_the_form_gives_the_header_pre_fill_its_targets(member_client, workspace):
    form = member_client.get(f"/w/{workspace.id}/customers/import/").context["form"]

    targets = json.loads(form.fields["mapping"].widget.attrs["data-mapping-targets"])
    assert targets[:3] == ["external_id", "email", "phone"]
    assert "consent.email_marketing" in targets
