"""Rules that keep one person one profile: no silent re-keying, identify only the anonymous,
aliases resolve, and erased ids stay erased through alias."""

import pytest

from masivo.tenancy.context import workspace_scope
from profiles.models import Customer, CustomerMerge, Event, Identity
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_upsert_refuses_to_rekey_a_customer_found_by_email(api, workspace):
    with workspace_scope(workspace.id):
        CustomerFactory(workspace=workspace, external_id="u1", email="ana@example.com")
    response = api.post(
        "/api/v1/customers",
        {"external_id": "u2", "email": "ana@example.com"},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert response.json()["errors"] == {
        "email": ["this email belongs to a customer with another external_id"]
    }
    with workspace_scope(workspace.id):
        assert list(Customer.objects.values_list("external_id", "email")) == [
            ("u1", "ana@example.com")
        ]


def test_identify_refuses_a_customer_that_is_already_known(api, workspace):
    with workspace_scope(workspace.id):
        known = CustomerFactory(workspace=workspace, external_id="u1")
    response = api.post(
        f"/api/v1/customers/{known.id}/identify",
        {"external_id": "u9"},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": "this customer is already identified",
        "code": "already_identified",
    }
    with workspace_scope(workspace.id):
        known.refresh_from_db()
    assert known.external_id == "u1"


def test_identify_with_an_alias_merges_into_its_owner(api, tracking, workspace):
    tracking.post("identify", {"userId": "old", "messageId": "1"})
    tracking.post("identify", {"userId": "new", "messageId": "2"})
    tracking.post("alias", {"previousId": "old", "userId": "new", "messageId": "3"})
    anonymous = api.post("/api/v1/customers", {}, content_type="application/json").json()

    response = api.post(
        f"/api/v1/customers/{anonymous['id']}/identify",
        {"external_id": "old"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["external_id"] == "new"
    with workspace_scope(workspace.id):
        assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["new"]
        assert sorted(CustomerMerge.objects.values_list("reason", flat=True)) == [
            "alias",
            "identify",
        ]


def test_an_alias_from_an_erased_id_is_rejected(api, tracking, workspace):
    tracking.post("identify", {"userId": "gone", "messageId": "1"})
    with workspace_scope(workspace.id):
        gone = Customer.objects.get(external_id="gone")
    assert api.post(f"/api/v1/customers/{gone.id}/erase").status_code == 204

    response = tracking.post("alias", {"previousId": "gone", "userId": "new", "messageId": "2"})
    assert response.status_code == 400
    assert response.json()["rejected"] == [
        {"index": 0, "reason": "the customer was erased", "messageId": "2"}
    ]
    with workspace_scope(workspace.id):
        assert Identity.objects.count() == 0
        assert Event.objects.count() == 0


def test_page_category_is_kept(tracking, workspace):
    tracking.post(
        "page", {"userId": "u1", "name": "Shoes", "category": "Catalog", "messageId": "p"}
    )
    with workspace_scope(workspace.id):
        assert Event.objects.get().properties == {"name": "Shoes", "category": "Catalog"}


def test_a_lone_surrogate_echoed_in_an_error_renders(api):
    response = api.post("/api/v1/customers", '{"\\ud800": 1}', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"\ud800": ["unknown field"]}
