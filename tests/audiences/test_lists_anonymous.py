"""Anonymous customers (no external id and no email) are never members, of uploaded lists too:
the members API and the dashboard form refuse them by id, and an upload matching one by phone
adds no one and says why."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.html import escape

from audiences.models import Membership, MembershipChange
from audiences.services import audience_create
from audiences.tasks import process_list_upload
from masivo.tenancy.context import workspace_scope
from profiles.models import Customer
from tests.dashboard.conftest import client_for
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

PHONE = "+525512345678"


@pytest.fixture
def vip(workspace):
    with workspace_scope(workspace.id):
        return audience_create(workspace=workspace, data={"name": "VIP", "kind": "list"})


@pytest.fixture
def ana(workspace):
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, external_id="ana", email="ana@example.com")


@pytest.fixture
def visitor(workspace):
    """Anonymous, with a phone (customer_upsert without an external id or email)."""
    with workspace_scope(workspace.id):
        return Customer.objects.create(workspace=workspace, phone=PHONE, is_anonymous=True)


def membership_rows(workspace, audience):
    with workspace_scope(workspace.id):
        return (
            list(Membership.objects.filter(audience=audience).values_list("customer_id", "source")),
            list(MembershipChange.objects.filter(audience=audience).values_list("customer_id")),
        )


def test_the_api_refuses_an_anonymous_customer_by_id_and_adds_no_one(
    api, workspace, vip, ana, visitor
):
    response = api.post(
        f"/api/v1/audiences/{vip.id}/members",
        {"add": [ana.id, visitor.id]},
        content_type="application/json",
    )
    assert response.status_code == 400
    message = f"customer {visitor.id} is anonymous, and anonymous customers are never members"
    assert response.json() == {
        "detail": message,
        "code": "invalid",
        "errors": {"add": [message]},
    }
    assert membership_rows(workspace, vip) == ([], [])


def test_the_api_still_adds_known_customers(api, workspace, vip, ana):
    response = api.post(
        f"/api/v1/audiences/{vip.id}/members", {"add": [ana.id]}, content_type="application/json"
    )
    assert response.json() == {"added": 1, "removed": 0}
    assert membership_rows(workspace, vip) == ([(ana.id, "list")], [(ana.id,)])


def test_the_dashboard_form_refuses_an_anonymous_customer(member, workspace, vip, visitor):
    response = client_for(member).post(
        f"/w/{workspace.id}/audiences/{vip.id}/members/",
        {"customer_ids": str(visitor.id), "action": "add"},
    )
    assert response.status_code == 400
    message = f"customer {visitor.id} is anonymous, and anonymous customers are never members"
    assert escape(message[:1].upper() + message[1:]) in response.content.decode()
    assert membership_rows(workspace, vip) == ([], [])


def upload(api, workspace, audience, content: bytes, **fields) -> dict:
    body = {"file": SimpleUploadedFile("list.csv", content, content_type="text/csv"), **fields}
    job = api.post(f"/api/v1/audiences/{audience.id}/uploads", body).json()
    process_list_upload(workspace_id=workspace.id, upload_id=job["id"])
    return api.get(f"/api/v1/list-uploads/{job['id']}").json()


COUNTS = ("rows_added", "rows_already", "rows_created", "rows_unmatched", "rows_invalid")


def test_an_upload_matching_an_anonymous_customer_by_phone_adds_no_one(
    api, workspace, vip, visitor
):
    status = upload(api, workspace, vip, f"phone\n{PHONE}\n".encode(), identifier="phone")
    assert [status[key] for key in COUNTS] == [0, 0, 0, 1, 0]
    assert membership_rows(workspace, vip) == ([], [])
    report = api.get(f"/api/v1/list-uploads/{status['id']}/problems")
    assert b"".join(report.streaming_content).decode().splitlines() == [
        "row,value,reason",
        f"2,'{PHONE},no customer with this phone is known: anonymous customers are never members",
    ]


def test_a_known_customer_sharing_the_phone_is_the_match(api, workspace, vip, visitor):
    with workspace_scope(workspace.id):
        known = CustomerFactory(workspace=workspace, external_id="beto", phone=PHONE)
    status = upload(api, workspace, vip, f"phone\n{PHONE}\n".encode(), identifier="phone")
    assert [status[key] for key in COUNTS] == [1, 0, 0, 0, 0]
    assert membership_rows(workspace, vip)[0] == [(known.id, "list")]


def test_customers_created_by_an_upload_are_known_members(api, workspace, vip):
    status = upload(
        api, workspace, vip, b"email\nnew@example.com\n", identifier="email", create_missing="true"
    )
    assert [status[key] for key in COUNTS] == [1, 0, 1, 0, 0]
    with workspace_scope(workspace.id):
        created = Customer.objects.get(email="new@example.com")
    assert created.is_anonymous is False
    assert membership_rows(workspace, vip)[0] == [(created.id, "list")]
