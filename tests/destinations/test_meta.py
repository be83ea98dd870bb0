"""Meta Custom Audiences: the real facebook-business SDK against the Graph fake."""

import hashlib
import hmac
import socket
from urllib.parse import urlencode

import pytest

from destinations.connectors.base import (
    BatchRejected,
    DestinationBroken,
    Member,
    RerunNeeded,
    RetryLater,
    Session,
)
from destinations.connectors.meta import MetaConfig, MetaConnector
from destinations.identifiers import identifier_value, sha256_hex
from destinations.models import Destination
from masivo.tenancy.context import workspace_scope
from tests.fakes.base import Answer

pytest_plugins = ["tests.fakes.meta"]  # meta_server, meta_fake
pytestmark = pytest.mark.django_db

TOKEN = "EAAB-test-token"
SECRET = "app-secret-1"
ACCOUNT = "1234567890"

ANA_EMAIL = hashlib.sha256(b"ana@example.com").hexdigest()
ANA_PHONE = hashlib.sha256(b"525512345678").hexdigest()
BEN_EMAIL = hashlib.sha256(b"ben@example.com").hexdigest()
CAROL_EMAIL = hashlib.sha256(b"carol@example.com").hexdigest()
OLD_EMAIL = hashlib.sha256(b"old@example.com").hexdigest()


def meta_member(customer_id, email=None, phone=None):
    identifiers = {
        "email": identifier_value("meta", "email", email),
        "phone": identifier_value("meta", "phone", phone),
    }
    return Member(customer_id, {name: value for name, value in identifiers.items() if value})


ANA = meta_member(1, " Ana@Example.com ", "+52 55 1234 5678")
BEN = meta_member(2, "ben@example.com")
CAROL = meta_member(3, "carol@example.com")


@pytest.fixture
def connector(workspace, meta_fake):
    meta_fake.add_token(TOKEN, app_secret=SECRET)
    meta_fake.add_account(ACCOUNT, "Acme Ads")
    with workspace_scope(workspace.id):
        destination = Destination.objects.create(
            workspace=workspace,
            kind="meta",
            name="Meta",
            key="meta",
            config={"ad_account_id": f"act_{ACCOUNT}"},
            credentials={"access_token": TOKEN, "app_secret": SECRET},
        )
    return MetaConnector(destination)


@pytest.fixture
def audience(meta_fake):
    return meta_fake.add_audience(ACCOUNT, "VIPs", rows={(("EMAIL", OLD_EMAIL),)})


def session(batch_seq=1, session_id=77, total=3):
    return Session(session_id=session_id, batch_seq=batch_seq, estimated_total=total)


def test_identifiers_hash_the_normalized_strings():
    assert ANA.identifiers == {"email": ANA_EMAIL, "phone": ANA_PHONE}


def test_connection_reads_the_ad_account_with_token_and_proof(connector, meta_fake):
    assert connector.test_connection() == "Connected to ad account 'Acme Ads' (act_1234567890)."
    (request,) = meta_fake.requests
    assert (request.method, request.path) == ("GET", "/v26.0/act_1234567890")
    proof = hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    assert request.query == {
        "access_token": [TOKEN],
        "appsecret_proof": [proof],
        "fields": ["name"],
    }


def test_connection_with_a_bad_token_is_broken(connector, meta_fake):
    meta_fake.tokens.clear()
    with pytest.raises(DestinationBroken) as caught:
        connector.test_connection()
    assert caught.value.code == 190
    assert str(caught.value) == (
        "Meta error 190: Invalid OAuth access token - Cannot parse access token"
    )


def test_audience_create_makes_a_customer_list(connector, meta_fake):
    audience_id = connector.audience_create("VIP customers")
    created = meta_fake.audiences[audience_id]
    assert created.account_id == ACCOUNT
    assert {name: created.params[name] for name in ("name", "subtype", "customer_file_source")} == {
        "name": "VIP customers",
        "subtype": "CUSTOM",
        "customer_file_source": "USER_PROVIDED_ONLY",
    }
    assert meta_fake.requests[-1].path == "/v26.0/act_1234567890/customaudiences"


def test_members_add_sends_positional_rows_against_the_schema(connector, meta_fake, audience):
    result = connector.members_add(audience, [ANA, BEN], session=session(total=2))

    assert result.failed == {}
    assert meta_fake.uploads() == [
        (
            "POST",
            {"schema": ["EMAIL", "PHONE"], "data": [[ANA_EMAIL, ANA_PHONE], [BEN_EMAIL, ""]]},
            {"batch_seq": 1, "estimated_num_total": 2, "last_batch_flag": False, "session_id": 77},
        )
    ]
    assert meta_fake.rows(audience) == {
        (("EMAIL", OLD_EMAIL),),
        (("EMAIL", ANA_EMAIL), ("PHONE", ANA_PHONE)),
        (("EMAIL", BEN_EMAIL),),
    }


def test_members_remove_sends_a_delete(connector, meta_fake, audience):
    connector.members_add(audience, [ANA, BEN], session=session(1))
    connector.members_remove(audience, [BEN], session=session(2))

    method, payload, sent_session = meta_fake.uploads()[-1]
    assert (method, payload) == ("DELETE", {"schema": ["EMAIL"], "data": [[BEN_EMAIL]]})
    assert sent_session["batch_seq"] == 2
    assert meta_fake.values(audience, "EMAIL") == {OLD_EMAIL, ANA_EMAIL}
    assert meta_fake.duplicates == 0


def test_replace_across_batches_ends_with_exactly_the_sent_rows(connector, meta_fake, audience):
    connector.replace_batch(audience, [ANA], session=session(1), last=False)
    connector.replace_batch(audience, [BEN], session=session(2), last=False)
    assert meta_fake.values(audience, "EMAIL") == {OLD_EMAIL}  # until the last batch

    connector.replace_batch(audience, [CAROL], session=session(3), last=True)

    assert [(upload[0], upload[2]) for upload in meta_fake.uploads("usersreplace")] == [
        ("POST", {"session_id": 77, "batch_seq": seq, "last_batch_flag": seq == 3,
                  "estimated_num_total": 3})
        for seq in (1, 2, 3)
    ]  # fmt: skip
    assert meta_fake.values(audience, "EMAIL") == {ANA_EMAIL, BEN_EMAIL, CAROL_EMAIL}
    assert meta_fake.values(audience, "PHONE") == {ANA_PHONE}
    assert meta_fake.duplicates == 0


def test_a_batch_sent_again_is_applied_once(connector, meta_fake, audience):
    connector.replace_batch(audience, [ANA], session=session(1), last=False)
    connector.replace_batch(audience, [ANA], session=session(1), last=False)
    connector.replace_batch(audience, [BEN], session=session(2), last=True)

    assert meta_fake.duplicates == 1
    assert meta_fake.values(audience, "EMAIL") == {ANA_EMAIL, BEN_EMAIL}


def test_an_empty_last_batch_closes_the_session(connector, meta_fake, audience):
    connector.replace_batch(audience, [ANA], session=session(1), last=False)
    connector.replace_batch(audience, [], session=session(2), last=True)

    assert meta_fake.uploads("usersreplace")[-1][1] == {"schema": ["EMAIL"], "data": []}
    assert meta_fake.values(audience, "EMAIL") == {ANA_EMAIL}


@pytest.mark.parametrize("code", [80003, 17, 613, 4, 32])
def test_throttling_is_retried_later(connector, meta_fake, audience, code):
    meta_fake.script(meta_fake.throttled(code))
    with pytest.raises(RetryLater) as caught:
        connector.members_add(audience, [ANA], session=session())
    assert caught.value.code == code
    assert caught.value.retry_after is None
    assert meta_fake.values(audience, "EMAIL") == {OLD_EMAIL}


def test_throttling_passes_on_the_time_to_regain_access(connector, meta_fake, audience):
    meta_fake.script(meta_fake.throttled(80003, regain_minutes=3))
    with pytest.raises(RetryLater) as caught:
        connector.members_add(audience, [ANA], session=session())
    assert caught.value.retry_after == 180.0


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_later(connector, meta_fake, audience, status):
    meta_fake.script(meta_fake.server_error(status))
    with pytest.raises(RetryLater):
        connector.members_add(audience, [ANA], session=session())


def test_a_proxy_error_page_is_not_taken_for_success(connector, meta_fake, audience):
    meta_fake.script(Answer(502, "<html>Bad Gateway</html>"))
    with pytest.raises(RetryLater) as caught:
        connector.members_add(audience, [ANA], session=session())
    assert caught.value.code == 502


def test_an_unreachable_graph_is_retried_later(connector, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.MASIVO_META_GRAPH_URL = f"http://127.0.0.1:{port}"
    with pytest.raises(RetryLater) as caught:
        connector.test_connection()
    assert str(caught.value) == "Meta could not be reached: ConnectionError"


def test_adding_during_a_replace_session_waits(connector, meta_fake, audience):
    connector.replace_batch(audience, [ANA], session=session(1, session_id=90), last=False)
    with pytest.raises(RetryLater) as caught:
        connector.members_add(audience, [BEN], session=session(1, session_id=91))
    assert caught.value.code == "2650/1870145"


def test_a_timed_out_replace_session_reruns(connector, meta_fake, audience):
    connector.replace_batch(audience, [ANA], session=session(1), last=False)
    meta_fake.expire_replace_session(audience)
    with pytest.raises(RerunNeeded) as caught:
        connector.replace_batch(audience, [BEN], session=session(2), last=True)
    assert caught.value.code == "2650/1870158"
    assert meta_fake.values(audience, "EMAIL") == {OLD_EMAIL}


@pytest.mark.parametrize(
    ("code", "message"),
    [(190, "Error validating access token"), (200, "Permissions error"), (10, "No permission")],
)
def test_oauth_and_permission_errors_break_the_destination(
    connector, meta_fake, audience, code, message
):
    meta_fake.script(meta_fake.graph_error(code, message))
    with pytest.raises(DestinationBroken) as caught:
        connector.members_add(audience, [ANA], session=session())
    assert str(caught.value) == f"Meta error {code}: {message}"


def test_other_refusals_reject_the_batch(connector, meta_fake):
    with pytest.raises(BatchRejected) as caught:
        connector.members_add("999", [ANA], session=session())
    assert caught.value.code == 100


def test_invalid_entries_come_back_as_failed_members(connector, meta_fake, audience):
    bad = Member(4, {"email": "not-a-hash"})
    result = connector.members_add(audience, [ANA, bad], session=session())
    assert result.failed == {4: "Meta: Invalid hash: expected SHA-256 (64 hex)"}
    assert meta_fake.values(audience, "EMAIL") == {OLD_EMAIL, ANA_EMAIL}


def test_members_without_identifiers_are_failed_and_not_sent(connector, meta_fake, audience):
    result = connector.members_add(audience, [Member(5, {})], session=session())
    assert result.failed == {5: "no identifiers Meta takes"}
    assert meta_fake.uploads() == []


def test_every_identifier_maps_to_its_schema_column(connector, meta_fake, audience):
    member = Member(
        6,
        {
            "madid": "6d92078a-8246-4ba4-ae5b-76104861e7dc",
            "external_id": "cust-6",
            "country": hashlib.sha256(b"mx").hexdigest(),
            "last_name": hashlib.sha256(b"lopez").hexdigest(),
            "first_name": hashlib.sha256(b"ana").hexdigest(),
            "email": ANA_EMAIL,
        },
    )
    connector.members_add(audience, [member], session=session())
    payload = meta_fake.uploads()[-1][1]
    assert payload == {
        "schema": ["EMAIL", "FN", "LN", "COUNTRY", "EXTERN_ID", "MADID"],
        "data": [
            [
                ANA_EMAIL,
                hashlib.sha256(b"ana").hexdigest(),
                hashlib.sha256(b"lopez").hexdigest(),
                hashlib.sha256(b"mx").hexdigest(),
                "cust-6",
                "6d92078a-8246-4ba4-ae5b-76104861e7dc",
            ]
        ],
    }


@pytest.mark.parametrize(
    ("given", "stored"), [("act_1234", "1234"), ("1234", "1234"), (" act_77 ", "77")]
)
def test_config_takes_the_account_with_or_without_act(given, stored):
    serializer = MetaConfig(data={"ad_account_id": given})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"ad_account_id": stored, "api_version": "v26.0"}


@pytest.mark.parametrize(
    "config",
    [{"ad_account_id": "acme"}, {"ad_account_id": 1234}, {"ad_account_id": "1", "x": "y"},
     {"ad_account_id": "1", "api_version": "26"}],
)  # fmt: skip
def test_config_refuses_bad_values(config):
    assert not MetaConfig(data=config).is_valid()


def test_a_removal_batch_fits_in_a_url(connector, meta_fake, audience):
    members = [
        Member(index, {"email": sha256_hex(f"user{index}@example.com"), "phone": ANA_PHONE})
        for index in range(connector.remove_batch_size)
    ]
    connector.members_remove(audience, members, session=session())

    (request,) = meta_fake.requests_to("/users", method="DELETE")
    query = urlencode({name: values[0] for name, values in request.query.items()})
    assert request.body == b""
    assert len(query) < 16_000
