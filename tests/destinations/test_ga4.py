"""GA4 Measurement Protocol: requests as the fake receives them (one customer and at most 25
events each), names made valid, what is skipped and why, and the debug check."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from destinations.connectors import connector_for
from destinations.connectors.base import (
    BatchRejected,
    ConnectorError,
    DestinationBroken,
    ForwardItem,
    ForwardResult,
    RetryLater,
)
from destinations.connectors.ga4 import (
    DEFAULT_BASE_URL,
    DEFAULT_EVENT_NAMES,
    GA4Config,
    GA4Connector,
    event_name_refusal,
    ga4_name,
    ga4_params,
)
from destinations.models import Destination, DestinationKind
from masivo.tenancy.context import workspace_scope
from tests.fakes.base import Answer
from tests.fakes.ga4 import GA4Fake

NOW = datetime(2026, 12, 1, 13, 0, 0, tzinfo=UTC)
AT = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
AT_MICROS = 1796126400000000
SECRET = "ga4-api-secret-abcdef"
ANA = {
    "external_id": "user-42",
    "traits": {"ga_client_id": "1234567.7654321"},
    "consent": {"advertising": {"status": "granted", "at": "2026-11-01T00:00:00+00:00"}},
}
BEA = {"external_id": "user-43", "traits": {"ga_client_id": "555.666"}}

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def ga4_server():
    fake = GA4Fake().start()
    yield fake
    fake.stop()


@pytest.fixture
def ga4(ga4_server):
    ga4_server.reset()
    return ga4_server


@pytest.fixture
def connector(workspace, ga4) -> GA4Connector:
    config = GA4Config(data={"measurement_id": "G-ABC123XYZ", "base_url": ga4.url})
    assert config.is_valid(), config.errors
    with workspace_scope(workspace.id):
        destination = Destination.objects.create(
            workspace=workspace,
            kind=DestinationKind.GA4,
            name="GA4",
            key="ga4",
            config=config.validated_data,
            credentials={"api_secret": SECRET},
        )
        return connector_for(Destination.objects.get(id=destination.id))


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


def event(name, properties=None, *, dedupe_id="e1", customer=ANA, at=AT) -> ForwardItem:
    return ForwardItem(
        type="event",
        dedupe_id=dedupe_id,
        customer_id=1,
        occurred_at=at,
        customer=customer,
        event={"name": name, "properties": properties or {}, "occurred_at": at.isoformat()},
    )


def membership(kind, *, dedupe_id="m1", customer=ANA) -> ForwardItem:
    return ForwardItem(
        type="membership",
        dedupe_id=dedupe_id,
        customer_id=1,
        occurred_at=AT,
        customer=customer,
        kind=kind,
        audience={"id": 31, "name": "VIP buyers", "kind": "rules"},
    )


def test_an_order_goes_as_a_purchase_for_the_customers_browser(connector, ga4):
    properties = {"order_id": "ord-1", "revenue": 46.5, "currency": "MXN", "coupon": None,
                  "products": [{"product_id": "sku-1", "name": "Tenis", "price": 40,
                                "quantity": 1}],
                  "gift": True, "note": {"nested": 1}}  # fmt: skip
    assert connector.forward([event("Order Completed", properties)]) == ForwardResult(sent=1)
    (request,) = ga4.collects()
    assert request.method == "POST"
    assert request.query == {"measurement_id": ["G-ABC123XYZ"], "api_secret": [SECRET]}
    assert request.json == {
        "client_id": "1234567.7654321",
        "user_id": "user-42",
        "consent": {"ad_user_data": "GRANTED", "ad_personalization": "GRANTED"},
        "timestamp_micros": AT_MICROS,
        "events": [
            {
                "name": "purchase",
                "params": {
                    "transaction_id": "ord-1",
                    "value": 46.5,
                    "currency": "MXN",
                    "items": [{"item_id": "sku-1", "item_name": "Tenis", "price": 40,
                               "quantity": 1}],
                    "gift": "true",
                },
                "timestamp_micros": AT_MICROS,
            }
        ],
    }  # fmt: skip


def test_memberships_become_audience_events(connector, ga4):
    denied = {**BEA, "consent": {"advertising": "denied"}}
    result = connector.forward(
        [membership("entered"), membership("exit", dedupe_id="m2", customer=denied)]
    )
    assert result == ForwardResult(sent=2)
    bodies = [request.json for request in ga4.collects()]
    params = {"audience_name": "VIP buyers", "audience_id": "31"}
    assert bodies == [
        {"client_id": "1234567.7654321", "user_id": "user-42",
         "consent": {"ad_user_data": "GRANTED", "ad_personalization": "GRANTED"},
         "timestamp_micros": AT_MICROS,
         "events": [{"name": "audience_entered", "params": params,
                     "timestamp_micros": AT_MICROS}]},
        {"client_id": "555.666", "user_id": "user-43",
         "consent": {"ad_user_data": "DENIED", "ad_personalization": "DENIED"},
         "timestamp_micros": AT_MICROS,
         "events": [{"name": "audience_exited", "params": params,
                     "timestamp_micros": AT_MICROS}]},
    ]  # fmt: skip


def test_requests_hold_one_customer_and_at_most_25_events(connector, ga4):
    items = [
        event("Page Scrolled Deep", {"n": n}, dedupe_id=f"a{n}",
              customer=ANA if n % 2 else BEA, at=AT + timedelta(seconds=n))
        for n in range(60)
    ]  # fmt: skip
    assert connector.forward(items) == ForwardResult(sent=60)
    bodies = [request.json for request in ga4.collects()]
    assert [(body["client_id"], len(body["events"])) for body in bodies] == [
        ("555.666", 25),
        ("555.666", 5),
        ("1234567.7654321", 25),
        ("1234567.7654321", 5),
    ]
    assert [event["params"]["n"] for event in bodies[0]["events"]] == list(range(0, 50, 2))
    assert bodies[1]["timestamp_micros"] == AT_MICROS + 50_000_000
    assert {event["name"] for body in bodies for event in body["events"]} == {"page_scrolled_deep"}


def test_skipped_items_say_why(connector, ga4):
    no_client = {"external_id": "user-44", "traits": {}}
    items = [
        event("Order Completed", dedupe_id="old", at=NOW - timedelta(hours=72, seconds=1)),
        event("Order Completed", dedupe_id="anon", customer=no_client),
        event("Order Completed", dedupe_id="gone", customer=None),
        event("Page View", dedupe_id="reserved"),
        event("123", dedupe_id="digits"),
        ForwardItem(type="profile", dedupe_id="p1", customer_id=1, occurred_at=AT,
                    customer=ANA, kind="updated", changed=["email"]),
        event("Order Completed", dedupe_id="ok", at=NOW - timedelta(hours=71)),
    ]  # fmt: skip
    assert connector.forward(items) == ForwardResult(
        sent=1,
        skipped={
            "old": "older than 72 hours (GA4 takes events up to 72 hours back)",
            "anon": "no client id",
            "gone": "no client id",
            "reserved": "reserved event name page_view",
            "digits": "not a valid GA4 event name",
            "p1": "profile items are not sent to GA4",
        },
    )
    assert len(ga4.collects()) == 1


def test_the_client_id_trait_is_configurable(connector, ga4):
    connector.config["client_id_trait"] = "gtag_cid"
    customer = {"traits": {"gtag_cid": "42.43", "ga_client_id": "ignored"}}
    assert connector.forward([event("Signed Up", customer=customer)]) == ForwardResult(sent=1)
    assert ga4.collects()[0].json == {
        "client_id": "42.43",
        "timestamp_micros": AT_MICROS,
        "events": [{"name": "sign_up", "params": {}, "timestamp_micros": AT_MICROS}],
    }


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("Order Completed", "order_completed"),
        ("  Video  Played!! (HD) ", "video_played_hd"),
        ("9 lives", "lives"),
        ("_private", "private"),
        ("ñandú-visto", "and_visto"),
        ("a" * 50, "a" * 40),
        ("x" * 39 + " y", "x" * 39),
        ("***", ""),
    ],
)
def test_ga4_name(ours, theirs):
    assert ga4_name(ours) == theirs


@pytest.mark.parametrize(
    ("name", "refusal"),
    [
        ("purchase", None),
        ("audience_entered", None),
        ("page_view", "reserved event name page_view"),
        ("session_start", "reserved event name session_start"),
        ("firebase_thing", "reserved event name firebase_thing"),
        ("ga_custom", "reserved event name ga_custom"),
        ("has space", "not a valid GA4 event name"),
        ("1st", "not a valid GA4 event name"),
        ("a" * 41, "not a valid GA4 event name"),
        ("", "not a valid GA4 event name"),
    ],
)
def test_event_name_refusal(name, refusal):
    assert event_name_refusal(name) == refusal


def test_params_are_sanitised_capped_at_25_and_truncated():
    properties = {"session_id": "s", "_hidden": 1, "ga_x": 1, "Gclid": "g", "Long Text": "x" * 150,
                  **{f"p{n}": n for n in range(40)}}  # fmt: skip
    params = ga4_params(properties)
    assert list(params)[:1] == ["long_text"]
    assert params["long_text"] == "x" * 100
    assert len(params) == 25
    assert list(params)[1:] == [f"p{n}" for n in range(24)]


def test_test_connection_validates_a_sample_event(connector, ga4):
    assert connector.test_connection() == "GA4 accepted a sample event for G-ABC123XYZ"
    (request,) = ga4.requests
    assert request.path == "/debug/mp/collect"
    assert request.json == {
        "client_id": "masivo.connection-test",
        "events": [{"name": "masivo_connection_test", "params": {"source": "masivo"}}],
    }


def test_test_connection_fails_with_the_validation_messages(connector, ga4):
    messages = [
        {"fieldPath": "events", "description": "Measurement ID is not valid.",
         "validationCode": "VALUE_INVALID"},
        {"fieldPath": "client_id", "description": "client_id is required.",
         "validationCode": "VALUE_REQUIRED"},
    ]  # fmt: skip
    ga4.script(Answer(200, {"validationMessages": messages}))
    with pytest.raises(ConnectorError) as raised:
        connector.test_connection()
    assert str(raised.value) == (
        "GA4 refused the sample event: events: Measurement ID is not valid. (VALUE_INVALID); "
        "client_id: client_id is required. (VALUE_REQUIRED)"
    )


@pytest.mark.parametrize(
    ("answer", "error", "retry_after"),
    [
        (GA4Fake.rate_limited(7), RetryLater, 7.0),
        (GA4Fake.server_error(500), RetryLater, None),
        (GA4Fake.server_error(503), RetryLater, None),
        (Answer(404, "Not Found"), DestinationBroken, None),
        (Answer(413, "Payload Too Large"), BatchRejected, None),
    ],
)
def test_http_errors(connector, ga4, answer, error, retry_after):
    ga4.script(answer)
    with pytest.raises(error) as raised:
        connector.forward([event("Order Completed")])
    assert type(raised.value) is error
    assert getattr(raised.value, "retry_after", None) == retry_after


def test_config_defaults_and_refusals(settings):
    serializer = GA4Config(data={"measurement_id": "G-ABC123XYZ"})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {
        "measurement_id": "G-ABC123XYZ",
        "base_url": DEFAULT_BASE_URL,
        "client_id_trait": "ga_client_id",
        "event_names": DEFAULT_EVENT_NAMES,
    }
    refused = GA4Config(
        data={"measurement_id": "UA-1234-1",
              "event_names": {"Page Seen": "page_view", "Bad": "no spaces", "Fine": "fine"}}
    )  # fmt: skip
    assert not refused.is_valid()
    assert refused.errors["measurement_id"] == ["must look like G-XXXX"]
    assert refused.errors["event_names"] == [
        "Bad: not a valid GA4 event name",
        "Page Seen: reserved event name page_view",
    ]
    settings.MASIVO_OUTBOUND_ALLOWLIST = []
    refused = GA4Config(data={"measurement_id": "G-ABC123XYZ", "base_url": "http://10.0.0.8"})
    assert not refused.is_valid()
    assert "private address" in str(refused.errors["base_url"][0])


def test_the_declared_contract():
    assert GA4Connector.capabilities == frozenset({"events", "memberships"})
    assert GA4Connector.consent_purpose == "advertising"
    assert GA4Connector.platform == "plain"


def test_the_client_id_trait_is_a_required_trait():
    assert GA4Connector.required_traits({}) == ["ga_client_id"]
    assert GA4Connector.required_traits({"client_id_trait": "gtag_cid"}) == ["gtag_cid"]
