"""The Braze connector against the local Braze fake: exact request bodies, what Braze then
holds, splitting at 75 objects and 50 deletions, error mapping and the cluster URL guard."""

import socket
import time
from datetime import UTC, datetime

import pytest

from destinations.connectors.base import (
    BatchRejected,
    ConnectorError,
    DestinationBroken,
    ErasedCustomer,
    ForwardItem,
    Member,
    RetryLater,
    Session,
)
from destinations.connectors.braze import (
    BrazeConfig,
    BrazeConnector,
    BrazeCredentials,
    audience_attribute,
    braze_external_id,
)
from destinations.models import Destination, DestinationKind
from masivo.tenancy.context import workspace_scope
from tests.fakes.base import Answer
from tests.fakes.braze import BLOCKED, NO_VALID_DATA, BrazeFake

API_KEY = "braze-rest-key-0001"
VIP = "masivo_audience_vip_customers"
AT = datetime(2026, 11, 30, 9, 15, 2, 250000, tzinfo=UTC)
AT_TEXT = "2026-11-30T09:15:02.250Z"
SESSION = Session(session_id=1, batch_seq=1, estimated_total=2)


@pytest.fixture(scope="module")
def braze_server():
    fake = BrazeFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def braze(braze_server):
    braze_server.reset()
    braze_server.add_key(API_KEY)
    return braze_server


def make_destination(workspace, braze, **config) -> Destination:
    validated = BrazeConfig(data={"cluster_url": braze.url, **config})
    assert validated.is_valid(), validated.errors
    with workspace_scope(workspace.id):
        destination = Destination.objects.create(
            workspace=workspace,
            kind=DestinationKind.BRAZE,
            name="Braze",
            key="braze",
            config=validated.validated_data,
            credentials={"api_key": API_KEY},
        )
        return Destination.objects.get(id=destination.id)


@pytest.fixture
def connector(workspace, braze):
    return BrazeConnector(make_destination(workspace, braze))


def event_item(dedupe_id, name, properties, customer_id=7):
    return ForwardItem(
        type="event",
        dedupe_id=dedupe_id,
        customer_id=customer_id,
        occurred_at=AT,
        customer={"email": "ana@example.com"},
        event={"name": name, "properties": properties, "occurred_at": AT},
    )


ORDER = {
    "order_id": "o-1001",
    "total": 59.5,
    "subtotal": 50.0,
    "tax": 9.5,
    "currency": "eur",
    "products": [
        {"product_id": "p-1", "sku": "SKU-1", "name": "Mug", "price": 20.0, "quantity": 2},
        {"product_id": "p-2", "name": "Tea", "price": 10.0},
    ],
}


# Identity and configuration -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "external_id", "expected"),
    [
        ("customer_id", None, "masivo-42"),
        ("customer_id", "user-9", "masivo-42"),
        ("external_id", " user-9 ", "user-9"),
        ("external_id", None, None),
        ("external_id", "  ", None),
    ],
)
def test_braze_external_id(source, external_id, expected):
    assert braze_external_id(42, external_id, source) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("VIP customers", "masivo_audience_vip_customers"),
        ("Clientes España: 2026!", "masivo_audience_clientes_espana_2026"),
    ],
)
def test_audience_attribute_names(name, expected):
    assert audience_attribute("masivo_audience_", name) == expected


def test_audience_attribute_without_letters_is_a_stable_hash():
    assert audience_attribute("p_", "🎉🎉") == "p_audience_9bbfb34258"


@pytest.mark.django_db
def test_config_defaults(braze):
    config = BrazeConfig(data={"cluster_url": braze.url + "/"})
    assert config.is_valid(), config.errors
    assert config.validated_data == {
        "cluster_url": braze.url,
        "external_id_source": "customer_id",
        "attribute_prefix": "masivo_audience_",
        "purchase_style": "ecommerce.order_placed",
        "purchase_event_names": ["Order Completed"],
        "traits": [],
    }


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080", "the host 127.0.0.1 is a loopback address."),
        (
            "https://169.254.169.254",
            "the host 169.254.169.254 is the cloud metadata address (link-local).",
        ),
        ("https://10.1.2.3", "the host 10.1.2.3 is a private address."),
        (
            "https://metadata.google.internal",
            "metadata.google.internal is a cloud metadata service name.",
        ),
    ],
)
def test_cluster_url_refused_when_private(settings, url, reason):
    settings.MASIVO_OUTBOUND_ALLOWLIST = []
    config = BrazeConfig(data={"cluster_url": url})
    assert not config.is_valid()
    assert config.errors == {"cluster_url": [f"Refused {url!r}: {reason}"]}


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"cluster_url": "http://93.184.216.34"},
         {"cluster_url": ["must be an https URL (the API key goes with it)"]}),
        ({"cluster_url": "https://93.184.216.34/users/track"},
         {"cluster_url": ["must be the cluster's base URL only, like https://rest.iad-01.braze.com"]}),
        ({"cluster_url": "https://93.184.216.34", "attribute_prefix": "$aud_"},
         {"attribute_prefix": ["Braze attribute names may not start with $"]}),
        ({"cluster_url": "https://93.184.216.34", "purchase_style": "orders"},
         {"purchase_style": ['"orders" is not a valid choice.']}),
        ({"cluster_url": "https://93.184.216.34", "region": "us"}, {"region": ["unknown field"]}),
        ({"cluster_url": 5}, {"cluster_url": ["must be a string"]}),
    ],
)  # fmt: skip
def test_config_refusals(data, errors):
    config = BrazeConfig(data=data)
    assert not config.is_valid()
    assert config.errors == errors


def test_credentials():
    assert BrazeCredentials(data={"api_key": " k-1 "}).is_valid()
    refused = BrazeCredentials(data={})
    assert not refused.is_valid()
    assert refused.errors == {"api_key": ["This field is required."]}


def test_class_declarations():
    assert BrazeConnector.kind == "braze"
    assert BrazeConnector.platform == "plain"
    assert BrazeConnector.consent_purpose is None
    assert BrazeConnector.batch_size == 75
    assert BrazeConnector.capabilities == {
        "audiences", "events", "profiles", "memberships", "deletion",
    }  # fmt: skip


# Connection test ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_connection_is_a_no_op_track(connector, braze):
    assert connector.test_connection() == (
        f"Braze accepted the API key at {braze.url} (users.track)."
    )
    (request,) = braze.requests
    assert request.path == "/users/track"
    assert request.header("authorization") == f"Bearer {API_KEY}"
    assert request.json == {
        "attributes": [{"external_id": "masivo-connection-test", "_update_existing_only": True}]
    }
    assert braze.users == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("permissions", "message"),
    [
        (None, "401: Invalid API key: 0001"),
        (("users.delete",), "403: The API key does not have the users.track permission"),
    ],
)
def test_connection_refused_key(connector, braze, permissions, message):
    braze.keys.clear()
    if permissions:
        braze.add_key(API_KEY, permissions)
    with pytest.raises(ConnectorError) as raised:
        connector.test_connection()
    assert type(raised.value) is ConnectorError
    assert str(raised.value) == f"Braze /users/track answered {message}"


# Audiences ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_audience_create_calls_nothing(connector, braze):
    assert connector.audience_create("VIP customers") == VIP
    assert braze.requests == []


@pytest.mark.django_db
def test_members_add_and_remove(connector, braze):
    members = [
        Member(1, {"external_id": "u-1", "email": "ana@example.com", "phone": "+34600000001"}),
        Member(2, {"email": "bo@example.com"}),
    ]
    assert connector.members_add(VIP, members, session=SESSION).failed == {}
    assert connector.members_remove(VIP, [members[0]], session=SESSION).failed == {}

    add, remove = braze.tracks
    assert add.json == {
        "attributes": [
            {"external_id": "masivo-1", "email": "ana@example.com", "phone": "+34600000001",
             VIP: True},
            {"external_id": "masivo-2", "email": "bo@example.com", VIP: True},
        ]
    }  # fmt: skip
    assert remove.json == {
        "attributes": [{"external_id": "masivo-1", VIP: None, "_update_existing_only": True}]
    }
    assert braze.users == {
        "masivo-1": {"email": "ana@example.com", "phone": "+34600000001"},
        "masivo-2": {"email": "bo@example.com", VIP: True},
    }


@pytest.mark.django_db
def test_members_remove_creates_no_profile(connector, braze):
    connector.members_remove(VIP, [Member(3, {})], session=SESSION)
    assert len(braze.tracks) == 1
    assert braze.users == {}


@pytest.mark.django_db
def test_members_by_their_own_external_id(workspace, braze):
    connector = BrazeConnector(make_destination(workspace, braze, external_id_source="external_id"))
    members = [Member(1, {"external_id": "u-1"}), Member(2, {"email": "bo@example.com"})]
    result = connector.members_add(VIP, members, session=SESSION)
    assert result.failed == {2: "no external_id to identify them in Braze"}
    assert braze.tracks[0].json == {"attributes": [{"external_id": "u-1", VIP: True}]}


@pytest.mark.django_db
def test_members_refused_by_braze_fail_alone(connector, braze):
    braze.block("masivo-2")
    members = [Member(1, {}), Member(2, {}), Member(3, {})]
    result = connector.members_add(VIP, members, session=SESSION)
    assert result.failed == {2: BLOCKED}
    assert braze.users == {"masivo-1": {VIP: True}, "masivo-3": {VIP: True}}


@pytest.mark.django_db
def test_members_all_refused_is_a_400_mapped_per_member(connector, braze):
    braze.block("masivo-1")
    result = connector.members_add(VIP, [Member(1, {})], session=SESSION)
    assert result.failed == {1: BLOCKED}


@pytest.mark.django_db
def test_members_split_at_75(connector, braze):
    members = [Member(number, {}) for number in range(1, 81)]
    connector.members_add(VIP, members, session=SESSION)
    assert [len(request.json["attributes"]) for request in braze.tracks] == [75, 5]
    assert len(braze.users) == 80


# Forwarding -----------------------------------------------------------------------------------


def profile_item(dedupe_id, kind, customer, changed=()):
    return ForwardItem(
        type="profile",
        dedupe_id=dedupe_id,
        customer_id=7,
        occurred_at=AT,
        customer=customer,
        kind=kind,
        changed=list(changed),
    )


CUSTOMER = {
    "external_id": "u-7",
    "email": "ana@example.com",
    "phone": "+34600000007",
    "first_name": "Ana",
    "last_name": "",
    "country": "ES",
    "traits": {"plan": "gold", "ssn": "123"},
}


@pytest.mark.django_db
def test_forward_profiles(workspace, braze):
    connector = BrazeConnector(make_destination(workspace, braze, traits=["plan", "tier"]))
    updated = {**CUSTOMER, "email": "ana@new.example.com", "traits": {"ssn": "123"}}
    result = connector.forward(
        [
            profile_item("p-1", "created", CUSTOMER),
            profile_item("p-2", "updated", updated, changed=["email", "traits.plan", "ssn"]),
            profile_item("p-3", "updated", updated, changed=["city"]),
            profile_item("p-4", "erased", None),
        ]
    )
    assert result.sent == 2
    assert result.skipped == {
        "p-3": "no attribute Braze takes changed",
        "p-4": "profile erased: not sent (erasure is /users/delete)",
    }
    (request,) = braze.tracks
    assert request.json == {
        "attributes": [
            {"external_id": "masivo-7", "email": "ana@example.com", "phone": "+34600000007",
             "first_name": "Ana", "country": "ES", "plan": "gold"},
            {"external_id": "masivo-7", "email": "ana@new.example.com", "plan": None},
        ]
    }  # fmt: skip
    assert braze.users == {
        "masivo-7": {
            "email": "ana@new.example.com",
            "phone": "+34600000007",
            "first_name": "Ana",
            "country": "ES",
        }
    }


@pytest.mark.django_db
def test_forward_memberships(connector, braze):
    audience = {"id": 5, "name": "VIP customers", "kind": "rules"}
    items = [
        ForwardItem("membership", "m-1", 7, AT, customer={}, kind="entered", audience=audience),
        ForwardItem("membership", "m-2", 8, AT, customer={}, kind="entered", audience=audience),
        ForwardItem("membership", "m-3", 7, AT, customer={}, kind="exited", audience=audience),
    ]
    assert connector.forward(items).sent == 3
    assert braze.tracks[0].json == {
        "attributes": [
            {"external_id": "masivo-7", VIP: True},
            {"external_id": "masivo-8", VIP: True},
            {"external_id": "masivo-7", VIP: None, "_update_existing_only": True},
        ]
    }
    assert braze.users == {"masivo-7": {}, "masivo-8": {VIP: True}}


@pytest.mark.django_db
def test_forward_events_and_an_ecommerce_order(connector, braze):
    items = [
        event_item("e-1", "Viewed Product", {"sku": "SKU-1", "$internal": 1, "price": 20}),
        event_item("e-2", "Order Completed", ORDER),
        event_item("e-3", "Order Completed", {**ORDER, "status": "Cancelled"}),
    ]
    result = connector.forward(items)
    assert result.sent == 2
    assert result.skipped == {"e-3": "order not fulfilled (status cancelled): not sent"}
    (request,) = braze.tracks
    assert request.json == {
        "events": [
            {"external_id": "masivo-7", "name": "Viewed Product", "time": AT_TEXT,
             "properties": {"sku": "SKU-1", "price": 20, "masivo_dedupe_id": "e-1"}},
            {"external_id": "masivo-7", "name": "ecommerce.order_placed", "time": AT_TEXT,
             "properties": {
                 "order_id": "o-1001", "total_value": 59.5, "currency": "EUR",
                 "products": [
                     {"product_id": "p-1", "product_name": "Mug", "variant_id": "SKU-1",
                      "quantity": 2, "price": 20.0},
                     {"product_id": "p-2", "product_name": "Tea", "variant_id": "p-2",
                      "quantity": 1, "price": 10.0},
                 ],
                 "source": "masivo", "subtotal_value": 50.0, "tax": 9.5,
                 "metadata": {"masivo_dedupe_id": "e-2"},
             }},
        ]
    }  # fmt: skip
    assert braze.event_counts == {
        ("masivo-7", "Viewed Product", "e-1"): 1,
        ("masivo-7", "ecommerce.order_placed", "e-2"): 1,
    }


@pytest.mark.django_db
def test_forward_legacy_purchases(workspace, braze):
    connector = BrazeConnector(
        make_destination(
            workspace, braze, purchase_style="purchases", purchase_event_names=["Checkout Paid"]
        )
    )
    items = [
        event_item("e-1", "Checkout Paid", ORDER),
        event_item("e-2", "Checkout Paid", {"order_id": "o-2", "revenue": "12.5"}),
        event_item("e-3", "Checkout Paid", {**ORDER, "financial_status": "pending"}),
        event_item("e-4", "Order Completed", {"order_id": "o-3"}),
    ]
    result = connector.forward(items)
    assert result.sent == 3
    assert result.skipped == {"e-3": "order not fulfilled (financial_status pending): not sent"}
    (request,) = braze.tracks
    assert request.json == {
        "events": [
            {"external_id": "masivo-7", "name": "Order Completed", "time": AT_TEXT,
             "properties": {"order_id": "o-3", "masivo_dedupe_id": "e-4"}},
        ],
        "purchases": [
            {"external_id": "masivo-7", "product_id": "Mug", "currency": "EUR", "price": 20.0,
             "quantity": 2, "time": AT_TEXT,
             "properties": {"masivo_dedupe_id": "e-1", "order_id": "o-1001", "sku": "SKU-1"}},
            {"external_id": "masivo-7", "product_id": "Tea", "currency": "EUR", "price": 10.0,
             "quantity": 1, "time": AT_TEXT,
             "properties": {"masivo_dedupe_id": "e-1", "order_id": "o-1001"}},
            {"external_id": "masivo-7", "product_id": "Checkout Paid", "currency": "USD",
             "price": 12.5, "quantity": 1, "time": AT_TEXT,
             "properties": {"masivo_dedupe_id": "e-2", "order_id": "o-2"}},
        ],
    }  # fmt: skip
    assert braze.purchase_counts == {
        ("masivo-7", "Mug", "e-1"): 1,
        ("masivo-7", "Tea", "e-1"): 1,
        ("masivo-7", "Checkout Paid", "e-2"): 1,
    }


@pytest.mark.django_db
def test_purchase_names_fold_case_and_an_empty_list_maps_none(workspace, braze):
    folded = BrazeConnector(make_destination(workspace, braze))
    folded.forward([event_item("e-1", " order completed", ORDER)])
    assert braze.tracks[0].json["events"][0]["name"] == "ecommerce.order_placed"
    with workspace_scope(workspace.id):
        Destination.objects.all().delete()
    plain = BrazeConnector(make_destination(workspace, braze, purchase_event_names=[]))
    plain.forward([event_item("e-2", "Order Completed", {"order_id": "o-1"})])
    assert braze.tracks[1].json == {
        "events": [
            {"external_id": "masivo-7", "name": "Order Completed", "time": AT_TEXT,
             "properties": {"order_id": "o-1", "masivo_dedupe_id": "e-2"}},
        ]
    }  # fmt: skip


@pytest.mark.django_db
def test_forward_splits_at_75_objects_in_order(workspace, braze):
    connector = BrazeConnector(make_destination(workspace, braze, purchase_style="purchases"))
    lines = [{"name": f"Item {n}", "price": 1.0} for n in range(70)]
    items = [
        event_item("order", "Order Completed", {"order_id": "o-9", "products": lines}),
        *[event_item(f"e-{n}", "Clicked", {"n": n}) for n in range(10)],
    ]
    result = connector.forward(items)
    assert result.sent == 11
    first, second = braze.tracks
    assert (len(first.json["purchases"]), len(first.json["events"])) == (70, 5)
    assert list(second.json) == ["events"]
    assert [event["properties"]["n"] for event in second.json["events"]] == [5, 6, 7, 8, 9]
    assert sum(braze.event_counts.values()) == 10
    assert set(braze.event_counts.values()) == {1}


@pytest.mark.django_db
def test_forward_objects_braze_refuses_are_skipped(connector, braze):
    braze.block("masivo-8")
    items = [
        event_item("e-1", "Clicked", {}),
        event_item("e-2", "Clicked", {}, customer_id=8),
        ForwardItem("membership", "m-1", 8, AT, customer={}, kind="entered",
                    audience={"id": 5, "name": "VIP customers", "kind": "rules"}),
    ]  # fmt: skip
    result = connector.forward(items)
    assert result.sent == 1
    assert result.skipped == {"e-2": BLOCKED, "m-1": BLOCKED}
    assert braze.event_counts == {("masivo-7", "Clicked", "e-1"): 1}


@pytest.mark.django_db
def test_forward_retry_after_a_failure_applies_once(connector, braze):
    items = [event_item(f"e-{n}", "Clicked", {"n": n}) for n in range(3)]
    braze.script(BrazeFake.server_error(503))
    with pytest.raises(RetryLater):
        connector.forward(items)
    assert connector.forward(items).sent == 3
    assert braze.event_counts == {("masivo-7", "Clicked", f"e-{n}"): 1 for n in range(3)}


@pytest.mark.django_db
def test_forward_without_external_id_is_skipped(workspace, braze):
    connector = BrazeConnector(make_destination(workspace, braze, external_id_source="external_id"))
    items = [
        event_item("e-1", "Clicked", {}),
        profile_item("p-1", "created", CUSTOMER),
        profile_item("p-2", "erased", None),
    ]
    result = connector.forward(items)
    assert result.skipped == {
        "e-1": "no external_id to identify them in Braze",
        "p-2": "profile erased: not sent (erasure is /users/delete)",
    }
    assert braze.tracks[0].json["attributes"][0]["external_id"] == "u-7"


# Errors ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rate_limited_waits_until_the_reset(connector, braze):
    braze.script(BrazeFake.rate_limited(reset_in=30))
    with pytest.raises(RetryLater) as raised:
        connector.forward([event_item("e-1", "Clicked", {})])
    assert 28 <= raised.value.retry_after <= 30
    assert raised.value.code == 429
    assert braze.event_counts == {}


@pytest.mark.django_db
def test_rate_limited_with_seconds_to_wait(connector, braze):
    braze.script(Answer(429, {"message": "rate limited"}, {"X-Ratelimit-Retry-After": "12"}))
    with pytest.raises(RetryLater) as raised:
        connector.members_add(VIP, [Member(1, {})], session=SESSION)
    assert raised.value.retry_after == 12


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (BrazeFake.server_error(500), RetryLater, "500: Internal Server Error"),
        (BrazeFake.server_error(502), RetryLater, "502: Internal Server Error"),
        (Answer(401, {"message": "Invalid API key"}), DestinationBroken, "401: Invalid API key"),
        (Answer(403, {"message": "Access Denied"}), DestinationBroken, "403: Access Denied"),
        (Answer(404, None), DestinationBroken, "404: Not Found"),
        (Answer(301, None, {"Location": "/"}), DestinationBroken, "301: Moved Permanently"),
        (Answer(400, {"message": "Bad syntax"}), BatchRejected, "400: Bad syntax"),
        (Answer(413, {"message": "Too large"}), BatchRejected, "413: Too large"),
    ],
)  # fmt: skip
def test_error_mapping(connector, braze, answer, error, message):
    braze.script(answer)
    with pytest.raises(ConnectorError) as raised:
        connector.forward([event_item("e-1", "Clicked", {})])
    assert type(raised.value) is error
    assert str(raised.value) == f"Braze /users/track answered {message}"
    assert raised.value.code == answer.status


@pytest.mark.django_db
def test_too_many_objects_is_refused_by_the_fake(braze):
    import requests

    body = {"events": [{"external_id": "x", "name": "a", "time": AT_TEXT}] * 76}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    answer = requests.post(braze.url + "/users/track", json=body, headers=headers, timeout=5)
    assert answer.status_code == 400
    assert answer.json() == {"message": "Too many objects: 76, at most 75 a request"}
    invalid = requests.post(
        braze.url + "/users/track",
        json={"events": [{"name": "a"}]},
        headers=headers,
        timeout=5,
    )
    assert invalid.status_code == 400
    assert invalid.json()["message"] == NO_VALID_DATA


@pytest.mark.django_db
def test_network_error_retries(workspace, braze):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    destination = make_destination(workspace, braze)
    destination.config["cluster_url"] = f"http://127.0.0.1:{port}"
    with pytest.raises(RetryLater) as raised:
        BrazeConnector(destination).forward([event_item("e-1", "Clicked", {})])
    assert str(raised.value).startswith("Braze unreachable: ConnectionError:")


@pytest.mark.django_db
def test_private_cluster_refused_at_send_time(connector, braze, settings):
    settings.MASIVO_OUTBOUND_ALLOWLIST = []
    with pytest.raises(DestinationBroken) as raised:
        connector.forward([event_item("e-1", "Clicked", {})])
    assert str(raised.value) == (
        f"Braze cluster URL refused: Refused '{braze.url}/users/track': the host 127.0.0.1 is "
        "a loopback address."
    )
    assert braze.requests == []


# Erasure --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_customers_erased_in_chunks_of_50(connector, braze):
    connector.members_add(VIP, [Member(n, {}) for n in range(1, 4)], session=SESSION)
    erased = [ErasedCustomer(n, braze_external_id(n, None)) for n in range(1, 121)]
    connector.customers_erased(erased)
    first, second, third = braze.deletes
    assert first.json == {"external_ids": [f"masivo-{n}" for n in range(1, 51)]}
    assert second.json == {"external_ids": [f"masivo-{n}" for n in range(51, 101)]}
    assert third.json == {"external_ids": [f"masivo-{n}" for n in range(101, 121)]}
    assert first.header("authorization") == f"Bearer {API_KEY}"
    assert braze.users == {}


@pytest.mark.django_db
def test_customers_erased_throttled(connector, braze):
    braze.script(BrazeFake.rate_limited(reset_in=10), when=lambda r: r.path == "/users/delete")
    with pytest.raises(RetryLater) as raised:
        connector.customers_erased([ErasedCustomer(1, "masivo-1")])
    assert 8 <= raised.value.retry_after <= 10


def test_reset_header_in_the_past_means_now():
    from destinations.connectors.braze import _retry_after

    class Response:
        headers = {"X-RateLimit-Reset": str(int(time.time()) - 5)}

    assert _retry_after(Response()) == 0.0
