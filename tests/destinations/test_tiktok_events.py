"""TikTok Events API: forwarded events as TikTok receives them (the local fake), the event map
and skipping, and errors."""

from datetime import UTC, datetime

import pytest

from destinations.connectors import connector_for
from destinations.connectors.base import (
    BatchRejected,
    DestinationBroken,
    ForwardItem,
    ForwardResult,
    RetryLater,
)
from destinations.connectors.tiktok import DEFAULT_BASE_URL
from destinations.connectors.tiktok_events import (
    DEFAULT_EVENT_MAP,
    TikTokEventsConfig,
    TikTokEventsConnector,
)
from destinations.identifiers import member_identifiers
from destinations.models import Destination, DestinationKind
from masivo.tenancy.context import workspace_scope
from tests.factories import CustomerFactory
from tests.fakes.tiktok import TikTokFake

ANA_EMAIL = "8e43ca37701228e74983efdbd0cff5c16b3b1e5d4e29a7c05626d4d25a018e11"
ANA_PHONE = "91e296c972c986bfd3469ba3cb87a2c742b990be55289589c683d5ef0c0bc1c3"
USER_42 = "6d894aa3ee802549d7f340e7c1cf0d1c1cb14cd84f768d92ffaa6785337c4997"
TOKEN = "tt-events-token-123456"
AT = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)  # 1796126400
PIXEL = "CPIXEL0123456789"

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def tiktok_server():
    fake = TikTokFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def tiktok(tiktok_server):
    tiktok_server.reset()
    tiktok_server.add_token(TOKEN)
    return tiktok_server


@pytest.fixture
def connector(workspace, tiktok) -> TikTokEventsConnector:
    config = TikTokEventsConfig(data={"event_source_id": PIXEL, "base_url": tiktok.base_url})
    assert config.is_valid(), config.errors
    with workspace_scope(workspace.id):
        destination = Destination.objects.create(
            workspace=workspace,
            kind=DestinationKind.TIKTOK_EVENTS,
            name="TikTok pixel",
            key="tiktok_events",
            config=config.validated_data,
            credentials={"access_token": TOKEN},
        )
        return connector_for(Destination.objects.get(id=destination.id))


@pytest.fixture
def ana_identifiers(workspace) -> dict[str, str]:
    """Ana's identifiers as the forwarder builds them for platform "tiktok"."""
    with workspace_scope(workspace.id):
        ana = CustomerFactory(workspace=workspace, email="Ana@Example.com",
                              phone="+525512345678", external_id="User-42")  # fmt: skip
    return member_identifiers(ana, "tiktok", ["email", "phone", "external_id"])


def event(name: str, properties: dict, *, dedupe_id: str = "evt-1", identifiers=None,
          context=None) -> ForwardItem:  # fmt: skip
    return ForwardItem(
        type="event",
        dedupe_id=dedupe_id,
        customer_id=1,
        occurred_at=AT,
        identifiers=identifiers or {},
        event={"name": name, "properties": properties, "occurred_at": AT.isoformat(),
               "message_id": f"msg-{dedupe_id}", "context": context or {}},
    )  # fmt: skip


ORDER = {
    "order_id": "ord-1001",
    "revenue": 46.5,
    "currency": "mxn",
    "products": [
        {"product_id": "sku-1", "name": "Tenis", "price": 40, "quantity": 1,
         "category": "Calzado", "brand": "Acme"},
        {"sku": "sku-2", "name": "Calcetas", "price": 6.5, "quantity": 1},
    ],
}  # fmt: skip


def test_an_order_goes_as_a_purchase_with_hashed_user_and_contents(
    connector, tiktok, ana_identifiers
):
    context = {
        "ip": "203.0.113.9",
        "userAgent": "Mozilla/5.0",
        "page": {"url": "https://shop.example/checkout", "referrer": "https://x.example/"},
    }
    item = event("Order Completed", ORDER, identifiers=ana_identifiers, context=context)
    assert connector.forward([item]) == ForwardResult(sent=1)
    (request,) = tiktok.requests
    assert (request.method, request.path) == ("POST", "/open_api/v1.3/event/track/")
    assert request.header("Access-Token") == TOKEN
    assert request.json == {
        "event_source": "web",
        "event_source_id": PIXEL,
        "data": [
            {
                "event": "Purchase",
                "event_time": 1796126400,
                "event_id": "evt-1",
                "user": {"email": ANA_EMAIL, "phone": ANA_PHONE, "external_id": USER_42,
                         "ip": "203.0.113.9", "user_agent": "Mozilla/5.0"},
                "properties": {
                    "currency": "MXN",
                    "value": 46.5,
                    "order_id": "ord-1001",
                    "contents": [
                        {"content_id": "sku-1", "content_name": "Tenis",
                         "content_category": "Calzado", "brand": "Acme", "price": 40,
                         "quantity": 1},
                        {"content_id": "sku-2", "content_name": "Calcetas", "price": 6.5,
                         "quantity": 1},
                    ],
                    "content_type": "product",
                },
                "page": {"url": "https://shop.example/checkout",
                         "referrer": "https://x.example/"},
            }
        ],
    }  # fmt: skip


def test_unmapped_events_are_skipped_and_mapped_ones_batched(connector, tiktok):
    items = [
        event("Product Viewed", {"product_id": "sku-1", "price": 40, "currency": "MXN"},
              dedupe_id="a"),
        event("Newsletter Opened", {}, dedupe_id="b"),
        event("Product Added", {"product_id": "sku-1", "quantity": 2}, dedupe_id="c"),
        ForwardItem(type="membership", dedupe_id="d", customer_id=1, occurred_at=AT,
                    kind="entered", audience={"id": 3, "name": "VIP", "kind": "rules"}),
    ]  # fmt: skip
    result = connector.forward(items)
    assert result == ForwardResult(sent=2, skipped={"b": "no mapping", "d": "not an event"})
    (request,) = tiktok.requests
    assert [(e["event"], e["event_id"], e["properties"]) for e in request.json["data"]] == [
        ("ViewContent", "a", {"currency": "MXN", "value": 40,
                              "contents": [{"content_id": "sku-1", "price": 40}],
                              "content_type": "product"}),
        ("AddToCart", "c", {"contents": [{"content_id": "sku-1", "quantity": 2}],
                            "content_type": "product"}),
    ]  # fmt: skip
    assert [e["user"] for e in request.json["data"]] == [{}, {}]


def test_nothing_mapped_sends_nothing(connector, tiktok):
    result = connector.forward([event("Newsletter Opened", {}, dedupe_id="b")])
    assert result == ForwardResult(sent=0, skipped={"b": "no mapping"})
    assert tiktok.requests == []


def test_the_event_map_is_the_destinations_own_data(connector, tiktok):
    connector.config["event_map"] = {"Lead Captured": "Lead", "Order Completed": "PlaceAnOrder"}
    connector.config["test_event_code"] = "TEST123"
    result = connector.forward(
        [event("Lead Captured", {}, dedupe_id="x"), event("Product Viewed", {}, dedupe_id="y"),
         event("Order Completed", {"order_id": 7}, dedupe_id="z")]
    )  # fmt: skip
    assert result == ForwardResult(sent=2, skipped={"y": "no mapping"})
    body = tiktok.requests[0].json
    assert body["test_event_code"] == "TEST123"
    assert [(e["event"], e["properties"]) for e in body["data"]] == [
        ("Lead", {}),
        ("PlaceAnOrder", {"order_id": "7"}),
    ]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (TikTokFake.rate_limited(), RetryLater),
        (TikTokFake.server_error(502), RetryLater),
        (TikTokFake.invalid_token(), DestinationBroken),
        (TikTokFake.error(40002, "Invalid access token"), DestinationBroken),
        (TikTokFake.error(40701, "event_source_id: pixel not found"), BatchRejected),
    ],
)
def test_errors(connector, tiktok, answer, error):
    tiktok.script(answer)
    with pytest.raises(error):
        connector.forward([event("Order Completed", ORDER)])


def test_test_connection_reads_who_the_token_is(connector, tiktok):
    assert connector.test_connection() == f"Access token of Acme Ads works (pixel {PIXEL})"
    assert [(r.method, r.path) for r in tiktok.requests] == [("GET", "/open_api/v1.3/user/info/")]


def test_config_defaults_use_the_2025_names():
    serializer = TikTokEventsConfig(data={"event_source_id": PIXEL})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {
        "event_source": "web",
        "event_source_id": PIXEL,
        "test_event_code": "",
        "event_map": DEFAULT_EVENT_MAP,
        "base_url": DEFAULT_BASE_URL,
        "batch_size": 50,
    }
    assert DEFAULT_EVENT_MAP["Order Completed"] == "Purchase"
    assert DEFAULT_EVENT_MAP["Checkout Started"] == "InitiateCheckout"
    refused = TikTokEventsConfig(
        data={"event_source_id": PIXEL, "event_source": "tv", "event_map": {"A": 1}}
    )
    assert not refused.is_valid()
    assert set(refused.errors) == {"event_source", "event_map"}


def test_the_declared_contract(connector):
    assert TikTokEventsConnector.capabilities == frozenset({"events"})
    assert TikTokEventsConnector.platform == "tiktok"
    assert connector.batch_size == 50
