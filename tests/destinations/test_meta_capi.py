"""Meta Conversions API: the real facebook-business SDK against the Graph fake."""

import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from destinations.connectors.base import (
    BatchRejected,
    DestinationBroken,
    ForwardItem,
    RetryLater,
)
from destinations.connectors.meta_capi import MetaConversionsConfig, MetaConversionsConnector
from destinations.identifiers import identifier_value
from destinations.models import Destination
from masivo.tenancy.context import workspace_scope

pytest_plugins = ["tests.fakes.meta"]  # meta_server, meta_fake
pytestmark = pytest.mark.django_db

TOKEN = "EAAB-capi-token"
PIXEL = "555000111"
ANA_EMAIL = hashlib.sha256(b"ana@example.com").hexdigest()
ANA_PHONE = hashlib.sha256(b"525512345678").hexdigest()
ANA_EXTERNAL_ID = hashlib.sha256(b"cust-42").hexdigest()
IDENTIFIERS = {
    "email": identifier_value("meta", "email", "Ana@Example.com"),
    "phone": identifier_value("meta", "phone", "+52 55 1234 5678"),
    "external_id": identifier_value("meta", "external_id", " cust-42 "),
}
CONTEXT = {
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
    "ip": "203.0.113.7",
    "page": {"url": "https://shop.example.com/checkout"},
}
ORDER = {
    "revenue": "1250.50",
    "total": 1300,
    "currency": "MXN",
    "order_id": "ord-9",
    "products": [
        {"product_id": "sku-1", "quantity": 2, "price": 500, "name": "Mug"},
        {"sku": "sku-2", "price": "250.5"},
        "not a product",
    ],
}


def make_connector(workspace, **config):
    with workspace_scope(workspace.id):
        destination = Destination.objects.create(
            workspace=workspace,
            kind="meta_capi",
            name="Meta CAPI",
            key="meta_capi",
            config={"pixel_id": PIXEL, "event_map": {"Order Completed": "Purchase"}, **config},
            credentials={"access_token": TOKEN},
        )
    return MetaConversionsConnector(destination)


@pytest.fixture
def connector(workspace, meta_fake):
    meta_fake.add_token(TOKEN)
    meta_fake.add_pixel(PIXEL, "Acme Pixel")
    return make_connector(workspace)


def event_item(dedupe_id="evt-1", name="Order Completed", age=timedelta(hours=1), **event):
    occurred_at = timezone.now().replace(microsecond=0) - age
    return ForwardItem(
        type="event",
        dedupe_id=dedupe_id,
        customer_id=42,
        occurred_at=occurred_at,
        identifiers=IDENTIFIERS,
        event={
            "name": name,
            "properties": event.get("properties", ORDER),
            "occurred_at": occurred_at.isoformat(),
            "message_id": f"msg-{dedupe_id}",
            "context": event.get("context", CONTEXT),
        },
    )


def sent_events(meta_fake):
    """Each POST's `data`, parsed twice as Graph does: a JSON array of JSON strings."""
    batches = []
    for request in meta_fake.requests_to(f"/{PIXEL}/events", method="POST"):
        outer = json.loads(request.form["data"][0])
        assert all(isinstance(element, str) for element in outer)
        batches.append([json.loads(element) for element in outer])
    return batches


def test_forward_sends_the_mapped_event_with_hashed_user_data(connector, meta_fake):
    item = event_item()
    result = connector.forward([item])

    assert (result.sent, result.skipped) == (1, {})
    (request,) = meta_fake.requests
    assert request.path == "/v26.0/555000111/events"
    assert request.query == {"access_token": [TOKEN]}
    assert sent_events(meta_fake) == [
        [
            {
                "event_name": "Purchase",
                "event_time": int(item.occurred_at.timestamp()),
                "event_id": "evt-1",
                "event_source_url": "https://shop.example.com/checkout",
                "action_source": "website",
                "user_data": {
                    "em": [ANA_EMAIL],
                    "ph": [ANA_PHONE],
                    "external_id": [ANA_EXTERNAL_ID],
                    "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                    "client_ip_address": "203.0.113.7",
                },
                "custom_data": {
                    "value": 1250.5,
                    "currency": "mxn",
                    "order_id": "ord-9",
                    "num_items": 3,
                    "contents": [
                        {"id": "sku-1", "quantity": 2, "item_price": 500.0, "title": "Mug"},
                        {"id": "sku-2", "item_price": 250.5},
                    ],
                },
            }
        ]
    ]
    assert "test_event_code" not in request.form


def test_value_falls_back_to_value_then_total(connector, meta_fake):
    connector.forward([event_item(properties={"total": 99, "currency": "US dollars"})])
    assert sent_events(meta_fake)[0][0]["custom_data"] == {"value": 99.0}


def test_old_unmapped_and_non_events_are_skipped_not_failed(connector, meta_fake):
    profile = ForwardItem(
        type="profile", dedupe_id="prof-1", customer_id=42, occurred_at=timezone.now()
    )
    items = [
        event_item("evt-old", age=timedelta(days=7, minutes=1)),
        event_item("evt-new"),
        event_item("evt-unmapped", name="Product Viewed"),
        profile,
    ]
    result = connector.forward(items)

    assert result.sent == 1
    assert result.skipped == {
        "evt-old": "older than 7 days",
        "evt-unmapped": "no mapping",
        "prof-1": "not an event",
    }
    assert [event["event_id"] for event in sent_events(meta_fake)[0]] == ["evt-new"]


def test_nothing_to_send_makes_no_request(connector, meta_fake):
    result = connector.forward([event_item(name="Product Viewed")])
    assert (result.sent, result.skipped) == (0, {"evt-1": "no mapping"})
    assert meta_fake.requests == []


def test_website_events_without_a_user_agent_are_skipped(connector, meta_fake):
    result = connector.forward([event_item(context={})])
    assert result.skipped == {"evt-1": "no user agent (Meta requires one for website events)"}


def test_other_action_sources_need_no_user_agent(workspace, meta_fake):
    meta_fake.add_token(TOKEN)
    meta_fake.add_pixel(PIXEL)
    connector = make_connector(workspace, action_source="physical_store", test_event_code="T1")
    assert connector.forward([event_item(context={})]).sent == 1

    (request,) = meta_fake.requests
    assert request.form["test_event_code"] == ["T1"]
    (event,) = sent_events(meta_fake)[0]
    assert event["action_source"] == "physical_store"
    assert "event_source_url" not in event


def test_a_retried_batch_keeps_its_event_ids(connector, meta_fake):
    items = [event_item("evt-1"), event_item("evt-2")]
    connector.forward(items)
    connector.forward(items)

    first, second = sent_events(meta_fake)
    assert [event["event_id"] for event in first] == ["evt-1", "evt-2"]
    assert [event["event_id"] for event in second] == ["evt-1", "evt-2"]
    assert meta_fake.event_duplicates == 2
    assert meta_fake.event_keys[(PIXEL, "Purchase", "evt-1")] == 2


def test_graph_refuses_more_than_a_thousand_events(connector, meta_fake):
    assert connector.batch_size == 1000
    items = [event_item(f"evt-{index}") for index in range(1001)]
    with pytest.raises(BatchRejected) as caught:
        connector.forward(items)
    assert caught.value.code == 100
    assert meta_fake.events == {}


def test_an_event_older_than_seven_days_rejects_the_whole_request(connector, meta_fake):
    """What the skip avoids: Graph refuses the request when any event is too old."""
    meta_fake.now = lambda: timezone.now().timestamp() + 7 * 24 * 3600
    with pytest.raises(BatchRejected) as caught:
        connector.forward([event_item()])
    assert str(caught.value) == (
        "Meta error 100/2804003: (#100) Invalid parameter: event_time is more than 7 days "
        "in the past"
    )


@pytest.mark.parametrize("code", [80003, 17, 613, 4, 32])
def test_throttling_is_retried_later(connector, meta_fake, code):
    meta_fake.script(meta_fake.throttled(code, regain_minutes=1))
    with pytest.raises(RetryLater) as caught:
        connector.forward([event_item()])
    assert (caught.value.code, caught.value.retry_after) == (code, 60.0)


def test_a_revoked_token_breaks_the_destination(connector, meta_fake):
    meta_fake.tokens.clear()
    with pytest.raises(DestinationBroken):
        connector.forward([event_item()])


def test_connection_reads_the_pixel(connector, meta_fake):
    assert connector.test_connection() == "Connected to pixel 'Acme Pixel' (555000111)."


def test_config_defaults_and_refusals():
    serializer = MetaConversionsConfig(
        data={"pixel_id": "555000111", "event_map": {"Order Completed": "Purchase"}}
    )
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {
        "pixel_id": "555000111",
        "event_map": {"Order Completed": "Purchase"},
        "action_source": "website",
        "api_version": "v26.0",
    }
    refused = MetaConversionsConfig(
        data={"pixel_id": "px", "event_map": {"A": 1}, "action_source": "fax"}
    )
    assert not refused.is_valid()
    assert set(refused.errors) == {"pixel_id", "event_map", "action_source"}
