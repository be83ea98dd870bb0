"""Uploaded lists with cells the database cannot take as they are: a NUL, a 200 KB value."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audiences.tasks import process_list_upload
from masivo.tenancy.context import workspace_scope
from tests.factories import AudienceFactory, CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def vip_list(workspace):
    with workspace_scope(workspace.id):
        return AudienceFactory(workspace=workspace, kind="list", rules=None, profile_fields=[])


def upload_and_process(api, workspace, audience, content: bytes, identifier: str) -> dict:
    file = SimpleUploadedFile("list.csv", content, content_type="text/csv")
    response = api.post(
        f"/api/v1/audiences/{audience.id}/uploads", {"file": file, "identifier": identifier}
    )
    assert response.status_code == 202
    process_list_upload(workspace_id=workspace.id, upload_id=response.json()["id"])
    return api.get(f"/api/v1/list-uploads/{response.json()['id']}").json()


def problems(api, upload_id) -> list[str]:
    report = api.get(f"/api/v1/list-uploads/{upload_id}/problems")
    return b"".join(report.streaming_content).decode().splitlines()


def test_a_value_with_a_nul_is_a_problem_row_not_a_failed_upload(api, workspace, vip_list):
    with workspace_scope(workspace.id):
        CustomerFactory(workspace=workspace, email="ana@example.com")

    status = upload_and_process(
        api, workspace, vip_list, b"email\nnot\x00an-email\nana@exa\x00mple.com\n", "email"
    )

    assert (status["status"], status["rows_added"], status["rows_invalid"]) == ("succeeded", 1, 1)
    assert problems(api, status["id"]) == [
        "row,value,reason",
        "2,notan-email,invalid email: 'notan-email' is not a valid email address",
    ]


def test_a_200_kb_value_fails_its_row_only(api, workspace, vip_list):
    with workspace_scope(workspace.id):
        CustomerFactory(workspace=workspace, external_id="a1")
    huge = b"x" * 200_000

    status = upload_and_process(api, workspace, vip_list, b"a1\n" + huge + b"\na2\n", "external_id")

    assert (status["status"], status["error"]) == ("succeeded", "")
    assert (status["rows_added"], status["rows_invalid"], status["rows_unmatched"]) == (1, 1, 1)
    assert problems(api, status["id"]) == [
        "row,value,reason",
        f"2,{'x' * 255},invalid external_id: longer than 255 characters",
        "3,a2,no customer with this external_id",
    ]
