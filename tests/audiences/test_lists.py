"""Uploaded lists from CSV: matched, optionally created, reported, idempotent."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audiences.models import Membership, MembershipChange
from audiences.tasks import process_list_upload
from masivo.tenancy.context import workspace_scope
from profiles.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def vip_list(api):
    return api.post(
        "/api/v1/audiences", {"name": "VIP", "kind": "list"}, content_type="application/json"
    ).json()["id"]


@pytest.fixture
def ana(workspace):
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, email="ana@example.com", external_id="a1")


def upload(api, audience_id, content: bytes, **fields):
    body = {"file": SimpleUploadedFile("list.csv", content, content_type="text/csv"), **fields}
    return api.post(f"/api/v1/audiences/{audience_id}/uploads", body)


def process(workspace, upload_id):
    process_list_upload(workspace_id=workspace.id, upload_id=upload_id)


def members(workspace, audience_id):
    with workspace_scope(workspace.id):
        return sorted(
            Membership.objects.filter(audience_id=audience_id).values_list(
                "customer__email", "source"
            )
        )


def test_a_list_of_emails_adds_matches_and_reports_the_rest(api, workspace, vip_list, ana):
    content = b"email\nANA@example.com\nnobody@example.com\nnot-an-email\n\nana@example.com\n"
    response = upload(api, vip_list, content, identifier="email")
    assert response.status_code == 202
    job = response.json()
    assert (job["status"], job["identifier"], job["size_bytes"]) == (
        "queued",
        "email",
        len(content),
    )
    process(workspace, job["id"])

    status = api.get(f"/api/v1/list-uploads/{job['id']}").json()
    assert (status["status"], status["progress"]) == ("succeeded", 1.0)
    counts = [
        status[k]
        for k in ("rows_added", "rows_already", "rows_created", "rows_unmatched", "rows_invalid")
    ]
    # Four rows, each counted once: the repeated ana@example.com is already a member.
    assert counts == [1, 1, 0, 1, 1]
    assert members(workspace, vip_list) == [("ana@example.com", "list")]
    report = api.get(f"/api/v1/list-uploads/{job['id']}/problems")
    assert b"".join(report.streaming_content).decode().splitlines() == [
        "row,value,reason",
        "3,nobody@example.com,no customer with this email",
        "4,not-an-email,invalid email: 'not-an-email' is not a valid email address",
    ]
    assert api.get(f"/api/v1/audiences/{vip_list}").json()["size"] == 1


def test_uploading_again_adds_nothing_twice(api, workspace, vip_list, ana):
    for _ in range(2):
        job = upload(api, vip_list, b"a1\n", identifier="external_id").json()
        process(workspace, job["id"])
    status = api.get(f"/api/v1/list-uploads/{job['id']}").json()
    assert (status["rows_added"], status["rows_already"]) == (0, 1)
    with workspace_scope(workspace.id):
        assert MembershipChange.objects.filter(audience_id=vip_list).count() == 1


def test_missing_customers_can_be_created(api, workspace, vip_list):
    job = upload(api, vip_list, b"external_id\nn1\nn2\n", identifier="external_id",
                 create_missing="true").json()  # fmt: skip
    process(workspace, job["id"])
    status = api.get(f"/api/v1/list-uploads/{job['id']}").json()
    assert (status["rows_added"], status["rows_created"]) == (2, 2)
    with workspace_scope(workspace.id):
        assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["n1", "n2"]


@pytest.mark.parametrize(
    ("content", "fields", "errors"),
    [
        (b"", {"identifier": "email"}, {"file": ["The submitted file is empty."]}),
        (b"\xff\xfe\x00a\x00b\x00c\x00d\x00e", {"identifier": "email"},
         {"file": ["the file is not UTF-8 text"]}),
        (b"x\n", {"identifier": "name"}, {"identifier": ['"name" is not a valid choice.']}),
        (b"x\n", {"identifier": "phone", "create_missing": "true"},
         {"create_missing": ["missing customers can be created from external ids or emails only"]}),
    ],
)  # fmt: skip
def test_bad_uploads_are_refused(api, workspace, vip_list, content, fields, errors):
    response = upload(api, vip_list, content, **fields)
    assert response.status_code == 400
    assert response.json()["errors"] == errors


def test_a_rules_audience_takes_no_file(api, workspace):
    rules = {"version": 1, "root": {"profile": {"field": "country", "op": "eq", "value": "MX"}}}
    audience_id = api.post(
        "/api/v1/audiences", {"name": "MX", "rules": rules}, content_type="application/json"
    ).json()["id"]
    response = upload(api, audience_id, b"a1\n", identifier="external_id")
    assert response.status_code == 409
    assert response.json()["detail"] == "only uploaded-list audiences take a file of members"
