"""ingest_batch itself, whatever API called it: the rules it keeps without help from the view."""

from datetime import UTC, datetime

import pytest

from masivo.tenancy.context import workspace_scope
from profiles.ingestion import TrackedMessage, ingest_batch
from profiles.models import Customer, Event
from tests.factories import CustomerFactory
from tests.profiles.helpers import rows

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 2, 10, tzinfo=UTC)


def track(index: int, **fields) -> TrackedMessage:
    return TrackedMessage(
        index=index, type="track", name="Viewed", message_id=f"m-{index}", occurred_at=AT, **fields
    )


def test_a_customer_id_of_another_workspace_is_refused_like_a_missing_one(
    workspace, other_workspace
):
    with workspace_scope(workspace.id):
        ours = CustomerFactory(workspace=workspace, external_id="ours")
    with workspace_scope(other_workspace.id):
        theirs = CustomerFactory(workspace=other_workspace, external_id="theirs")
    messages = [
        track(0, customer_id=ours.id),
        track(1, customer_id=theirs.id),
        track(2, customer_id=2_000_000_000),
        track(3, customer_id=theirs.id, user_id="new-user"),
    ]

    with workspace_scope(workspace.id):
        result = ingest_batch(workspace=workspace, messages=messages, source="api", now=AT)

    assert (result.accepted, result.duplicates, result.warnings) == (1, 0, [])
    assert [r.as_dict() for r in result.rejected] == [
        {"index": index, "reason": "no such customer", "field": "customer_id"}
        for index in (1, 2, 3)
    ]
    assert rows(workspace, Event, "message_id", "customer_id") == [("m-0", ours.id)]
    # A refused message creates no one, not even for the user id it carried.
    assert rows(workspace, Customer, "external_id") == ["ours"]
    assert rows(other_workspace, Event, "id") == []


def test_a_user_id_makes_a_customer_with_every_column_at_its_default(workspace):
    with workspace_scope(workspace.id):
        ingest_batch(workspace=workspace, messages=[track(0, user_id="u-1")], source="api", now=AT)
        customer = Customer.objects.get(external_id="u-1")

    unsaved = Customer(workspace=workspace, external_id="u-1", created_at=AT, updated_at=AT)
    for field in Customer._meta.concrete_fields:
        if not (field.primary_key or field.generated):
            assert getattr(customer, field.attname) == getattr(unsaved, field.attname), field.name
