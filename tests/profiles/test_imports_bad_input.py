"""Customer CSV imports with input the database cannot take as it is: a NUL in the header, a
200 KB cell, a mapping holding NUL, lone surrogates or 10,000 levels of nesting."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from profiles.models import Customer, CustomerImport
from profiles.tasks import import_customers
from tests.profiles.helpers import rows

pytestmark = pytest.mark.django_db


def upload(api, content: bytes, **fields):
    body = {"file": SimpleUploadedFile("customers.csv", content, content_type="text/csv")}
    return api.post("/api/v1/customer-imports", body | fields)


def test_a_nul_in_the_header_row_is_refused_at_upload(api, workspace):
    response = upload(api, b"external_id,fi\x00rst\nx1,y\n")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "column 2 of the header row contains a NUL character",
        "code": "invalid",
        "errors": {"file": ["column 2 of the header row contains a NUL character"]},
    }
    assert rows(workspace, CustomerImport, "id") == []


def test_a_200_kb_cell_fails_its_row_only(api, workspace):
    content = (
        b"external_id,first_name,plan\nu1,Ana,a\nu2,Beto," + b"x" * 200_000 + b"\nu3,Carla,c\n"
    )
    job = upload(api, content).json()

    import_customers(workspace_id=workspace.id, import_id=job["id"])

    status = api.get(f"/api/v1/customer-imports/{job['id']}").json()
    assert (status["status"], status["error"]) == ("succeeded", "")
    assert (status["rows_created"], status["rows_failed"]) == (2, 1)
    report = api.get(f"/api/v1/customer-imports/{job['id']}/errors")
    assert b"".join(report.streaming_content).decode().splitlines() == [
        "row,column,error",
        "2,plan,longer than 131072 characters",
    ]
    assert rows(workspace, Customer, "external_id", order_by=["external_id"]) == ["u1", "u3"]


NOT_A_TARGET = (
    "is not a target: use a profile field, traits.<key>, tags.<key>, consent.<purpose> or ignore"
)


@pytest.mark.parametrize(
    ("mapping", "errors"),
    [
        ('{"external_id": "external_id", "plan": "traits.a\\u0000b"}',
         {"mapping.plan": [f"'traits.a\\x00b' {NOT_A_TARGET}"]}),
        ('{"external_id": "external_id", "plan": "traits.\\ud800"}',
         {"mapping.plan": [f"'traits.\\ud800' {NOT_A_TARGET}"]}),
        ("[" * 10_000 + "]" * 10_000,
         {"mapping": ["must be JSON: JSON nested deeper than 64 levels"]}),
        ('{"external_id": "external_id", "plan": NaN}',
         {"mapping": ["must be JSON: plan: numbers must be finite (got NaN)"]}),
    ],
)  # fmt: skip
def test_a_mapping_the_database_cannot_store_is_refused(api, workspace, mapping, errors):
    response = upload(api, b"external_id,plan\nu1,x\n", mapping=mapping)

    assert response.status_code == 400
    assert response.json()["errors"] == errors
    assert rows(workspace, CustomerImport, "id") == []
