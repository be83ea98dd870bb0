"""TikTok audiences: what the connector sends to the Marketing API (the local fake) and how it
reads TikTok's answers."""

import pytest

from destinations.connectors import connector_for
from destinations.connectors.base import (
    BatchRejected,
    BatchResult,
    ConnectorError,
    DestinationBroken,
    Member,
    RetryLater,
    Session,
)
from destinations.connectors.tiktok import DEFAULT_BASE_URL, TikTokConfig, TikTokConnector
from destinations.identifiers import identifier_value
from destinations.models import Destination, DestinationKind
from masivo.tenancy.context import workspace_scope
from tests.fakes.base import Answer
from tests.fakes.tiktok import TikTokFake

ANA_EMAIL = "8e43ca37701228e74983efdbd0cff5c16b3b1e5d4e29a7c05626d4d25a018e11"
ANA_PHONE = "91e296c972c986bfd3469ba3cb87a2c742b990be55289589c683d5ef0c0bc1c3"
USER_42 = "6d894aa3ee802549d7f340e7c1cf0d1c1cb14cd84f768d92ffaa6785337c4997"
BEA_EMAIL = "5da2db4a243c1cb21e2dffe9a212a4907febf087463693793dd593df7bcc2aaa"
TOKEN = "tt-access-token-123456"
SESSION = Session(session_id=1, batch_seq=1, estimated_total=3)


@pytest.fixture(scope="module")
def tiktok_server():
    fake = TikTokFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def tiktok(tiktok_server):
    tiktok_server.reset()
    tiktok_server.add_token(TOKEN, ["7001"])
    return tiktok_server


@pytest.fixture
def connector(workspace, tiktok) -> TikTokConnector:
    with workspace_scope(workspace.id):
        destination = Destination.objects.create(
            workspace=workspace,
            kind=DestinationKind.TIKTOK,
            name="TikTok",
            key="tiktok",
            config={"advertiser_id": "7001", "base_url": tiktok.base_url},
            credentials={"access_token": TOKEN},
        )
        return connector_for(Destination.objects.get(id=destination.id))


def tiktok_member(customer_id: int, **raw: str) -> Member:
    """A member as the sync engine builds it: identifiers for platform "tiktok"."""
    return Member(
        customer_id, {name: identifier_value("tiktok", name, value) for name, value in raw.items()}
    )


pytestmark = pytest.mark.django_db


def test_the_identifiers_are_hashed_as_tiktok_takes_them():
    member = tiktok_member(1, email=" Ana@Example.com ", phone="+52 55 1234 5678",
                           external_id=" User-42 ")  # fmt: skip
    assert member.identifiers == {"email": ANA_EMAIL, "phone": ANA_PHONE, "external_id": USER_42}


def test_audience_create_posts_the_segment_and_returns_its_id(connector, tiktok):
    assert connector.audience_create("VIP buyers") == "7000001"
    (request,) = tiktok.requests
    assert (request.method, request.path) == ("POST", "/open_api/v1.3/segment/audience/")
    assert request.header("Access-Token") == TOKEN
    assert request.json == {
        "advertiser_id": "7001",
        "custom_audience_name": "VIP buyers",
        "id_type": "EMAIL_SHA256",
        "action": "create",
    }


def test_members_add_sends_one_list_per_user_positional_with_empty_objects(connector, tiktok):
    members = [
        tiktok_member(1, email="ana@example.com", phone="+525512345678"),
        tiktok_member(2, email="bea@example.com"),
        tiktok_member(3, phone="+525512345678", external_id="user-42"),
    ]
    assert connector.members_add("7000009", members, session=SESSION) == BatchResult()
    (request,) = tiktok.mappings()
    audience = ["7000009"]
    assert request.json == {
        "advertiser_ids": ["7001"],
        "action": "add",
        "id_schema": ["EMAIL_SHA256", "PHONE_SHA256", "EXTERNAL_ID_SHA256"],
        "batch_data": [
            [{"id": ANA_EMAIL, "audience_ids": audience},
             {"id": ANA_PHONE, "audience_ids": audience}, {}],
            [{"id": BEA_EMAIL, "audience_ids": audience}, {}, {}],
            [{}, {"id": ANA_PHONE, "audience_ids": audience},
             {"id": USER_42, "audience_ids": audience}],
        ],
    }  # fmt: skip
    assert tiktok.members["7000009"] == {
        ("EMAIL_SHA256", ANA_EMAIL),
        ("PHONE_SHA256", ANA_PHONE),
        ("EMAIL_SHA256", BEA_EMAIL),
        ("EXTERNAL_ID_SHA256", USER_42),
    }


def test_members_remove_sends_delete_and_a_user_without_identifiers_fails(connector, tiktok):
    connector.members_add("7000009", [tiktok_member(1, email="ana@example.com")], session=SESSION)
    result = connector.members_remove(
        "7000009", [tiktok_member(1, email="ana@example.com"), Member(2, {})], session=SESSION
    )
    assert result == BatchResult(failed={2: "no identifier TikTok takes"})
    assert tiktok.mappings()[-1].json == {
        "advertiser_ids": ["7001"],
        "action": "delete",
        "id_schema": ["EMAIL_SHA256"],
        "batch_data": [[{"id": ANA_EMAIL, "audience_ids": ["7000009"]}]],
    }
    assert tiktok.members["7000009"] == set()


def test_a_batch_of_users_without_identifiers_sends_nothing(connector, tiktok):
    result = connector.members_add("7000009", [Member(5, {})], session=SESSION)
    assert result == BatchResult(failed={5: "no identifier TikTok takes"})
    assert tiktok.requests == []


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        (TikTokFake.rate_limited(), RetryLater, 40100),
        (TikTokFake.error(50002, "Service temporarily unavailable"), RetryLater, 50002),
        (TikTokFake.server_error(500), RetryLater, 500),
        (TikTokFake.server_error(503), RetryLater, 503),
        (Answer(429, {"code": 40100, "message": "Too many requests"}), RetryLater, 429),
        (TikTokFake.invalid_token(), DestinationBroken, 40105),
        (TikTokFake.error(40001, "No permission to operate advertiser"), DestinationBroken, 40001),
        (TikTokFake.error(40002, "batch_data: invalid"), DestinationBroken, 40002),
        (TikTokFake.error(40700, "Audience 7000009 does not exist"), BatchRejected, 40700),
        (Answer(400, "Bad Request"), BatchRejected, 400),
    ],
)
def test_tiktok_answers_map_to_our_errors(connector, tiktok, answer, error, code):
    tiktok.script(answer)
    with pytest.raises(error) as raised:
        connector.members_add("7000009", [tiktok_member(1, email="ana@example.com")],
                              session=SESSION)  # fmt: skip
    assert type(raised.value) is error
    assert raised.value.code == code


def test_the_messages_name_tiktoks_code(connector, tiktok):
    tiktok.script(TikTokFake.error(40700, "Audience 7000009 does not exist"))
    with pytest.raises(BatchRejected, match=r"^TikTok 40700: Audience 7000009 does not exist$"):
        connector.members_add("7000009", [tiktok_member(1, email="a@b.co")], session=SESSION)


def test_rate_limit_codes_are_a_class_constant(connector, tiktok, monkeypatch):
    monkeypatch.setattr(TikTokConnector, "RATE_LIMIT_CODES", frozenset({40100, 40133}))
    tiktok.script(TikTokFake.error(40133, "QPS limit"))
    with pytest.raises(RetryLater):
        connector.members_add("7000009", [tiktok_member(1, email="a@b.co")], session=SESSION)


def test_an_unknown_token_breaks_the_destination(connector, tiktok):
    tiktok.tokens.clear()
    with pytest.raises(DestinationBroken, match="40105"):
        connector.audience_create("VIP")


def test_unreachable_tiktok_is_retried_later(connector, tiktok):
    connector.config["base_url"] = "http://127.0.0.1:9/open_api/v1.3"
    with pytest.raises(RetryLater, match="TikTok unreachable"):
        connector.audience_create("VIP")


def test_test_connection_reads_the_advertiser(connector, tiktok):
    assert connector.test_connection() == "Advertiser Advertiser 7001 (7001) reachable"
    (request,) = tiktok.requests
    assert (request.method, request.path) == ("GET", "/open_api/v1.3/advertiser/info/")
    assert request.query == {"advertiser_ids": ['["7001"]']}


def test_test_connection_fails_for_an_advertiser_the_token_cannot_reach(connector, tiktok):
    tiktok.add_token(TOKEN, ["8002"])
    with pytest.raises(ConnectorError, match="40001"):
        connector.test_connection()


def test_batch_size_comes_from_config(connector):
    assert connector.batch_size == 10_000
    connector.destination.config["batch_size"] = 500
    assert connector_for(connector.destination).batch_size == 500


def test_the_declared_contract():
    assert TikTokConnector.capabilities == frozenset({"audiences"})
    assert TikTokConnector.platform == "tiktok"
    assert TikTokConnector.default_identifiers == ("email", "phone")


def test_config_defaults_and_refusals(settings):
    serializer = TikTokConfig(data={"advertiser_id": "7001"})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {
        "advertiser_id": "7001",
        "base_url": DEFAULT_BASE_URL,
        "id_type": "EMAIL_SHA256",
        "batch_size": 10_000,
    }
    refused = TikTokConfig(data={"advertiser_id": 7001, "id_type": "MD5", "region": "eu"})
    assert not refused.is_valid()
    assert set(refused.errors) == {"region"}
    refused = TikTokConfig(data={"advertiser_id": 7001, "id_type": "MD5"})
    assert not refused.is_valid()
    assert set(refused.errors) == {"advertiser_id", "id_type"}


def test_a_base_url_override_passes_the_outbound_guard_at_save_time(settings):
    allowed = TikTokConfig(data={"advertiser_id": "1", "base_url": "http://127.0.0.1:8080/v1.3/"})
    assert allowed.is_valid(), allowed.errors
    assert allowed.validated_data["base_url"] == "http://127.0.0.1:8080/v1.3"
    settings.MASIVO_OUTBOUND_ALLOWLIST = ["127.0.0.1", "93.184.215.14"]
    plain = TikTokConfig(data={"advertiser_id": "1", "base_url": "http://93.184.215.14/v1.3"})
    assert plain.is_valid(), plain.errors
    settings.MASIVO_OUTBOUND_ALLOWLIST = []
    plain = TikTokConfig(data={"advertiser_id": "1", "base_url": "http://93.184.215.14/v1.3"})
    assert not plain.is_valid()
    assert plain.errors["base_url"] == ["must be an https URL (credentials go with it)"]
    secure = TikTokConfig(data={"advertiser_id": "1", "base_url": "https://93.184.215.14/v1"})
    assert secure.is_valid(), secure.errors
    for url in ("http://127.0.0.1:8080/v1.3", "http://169.254.169.254/latest", "file:///etc"):
        refused = TikTokConfig(data={"advertiser_id": "1", "base_url": url})
        assert not refused.is_valid()
        assert str(refused.errors["base_url"][0]).startswith(f"Refused {url!r}")
