"""Google Ads Customer Match: the real google-ads SDK (v26, gRPC) against the local gRPC fake."""

import hashlib
from datetime import timedelta

import grpc
import pytest

from audiences.models import Membership
from destinations import services
from destinations.connectors.base import (
    BatchRejected,
    DestinationBroken,
    Member,
    RerunNeeded,
    RetryLater,
    Session,
)
from destinations.connectors.google_ads import GoogleAdsConfig, GoogleAdsConnector
from destinations.identifiers import identifier_value
from destinations.models import Destination, SyncRun
from destinations.syncing import sync_run_execute
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from tests.factories import AudienceFactory, CustomerFactory

pytestmark = pytest.mark.django_db
pytest_plugins = ["tests.fakes.google_ads"]  # google_ads_server, google_ads_fake

CUSTOMER = "1234567890"
ANA_EMAIL = hashlib.sha256(b"ana@example.com").hexdigest()
ANA_PHONE = hashlib.sha256(b"+525512345678").hexdigest()
BEN_EMAIL = hashlib.sha256(b"ben@example.com").hexdigest()
OLD_EMAIL = hashlib.sha256(b"old@example.com").hexdigest()
JOBS = "OfflineUserDataJobService"


def google_member(customer_id, email=None, phone=None):
    identifiers = {
        "email": identifier_value("google", "email", email),
        "phone": identifier_value("google", "phone", phone),
    }
    return Member(customer_id, {name: value for name, value in identifiers.items() if value})


ANA = google_member(1, " Ana@Example.com ", "+52 55 1234 5678")
BEN = google_member(2, "ben@example.com")


def make_connector(workspace, credentials=None, config=None):
    with workspace_scope(workspace.id):
        destination = Destination.objects.create(
            workspace=workspace,
            kind="google_ads",
            name="Google Ads",
            key=f"google_ads_{Destination.objects.count()}",
            config=config or {"customer_id": "123-456-7890", "login_customer_id": "9876543210"},
            credentials=credentials or {"developer_token": "dev-token", "access_token": "fake"},
        )
    return GoogleAdsConnector(destination)


@pytest.fixture
def connector(workspace, google_ads_fake):
    return make_connector(workspace)


@pytest.fixture
def user_list(google_ads_fake):
    return google_ads_fake.add_user_list(CUSTOMER, "VIPs")


def session(batch_seq=1, total=2, state=None):
    return Session(
        session_id=77,
        batch_seq=batch_seq,
        estimated_total=total,
        state={} if state is None else state,
    )


def job_of(fake, state):
    return fake.jobs[state["job"]]


def added(fake):
    """Each AddOfflineUserDataJobOperations request as Google received it: per operation,
    its kind and its identifiers."""
    requests = []
    for call in fake.calls_to("AddOfflineUserDataJobOperations"):
        operations = []
        for operation in call.request.operations:
            if operation.remove_all:
                operations.append(("remove_all",))
                continue
            kind = "create" if "create" in operation else "remove"
            identifiers = [
                {name: getattr(identifier, name)}
                for identifier in getattr(operation, kind).user_identifiers
                for name in ("hashed_email", "hashed_phone_number")
                if name in identifier
            ]
            operations.append((kind, identifiers))
        requests.append(operations)
    return requests


def test_incremental_run_sends_hashed_identifiers_in_one_job_with_job_level_consent(
    connector, google_ads_fake, user_list
):
    google_ads_fake.user_lists[user_list].members.add(("hashed_email", OLD_EMAIL))
    state = {}
    connector.run_begin(user_list, mode="incremental", session=session(state=state))
    assert (
        connector.members_add(user_list, [ANA, BEN], session=session(1, state=state)).failed == {}
    )
    old = Member(3, {"email": OLD_EMAIL})
    assert connector.members_remove(user_list, [old], session=session(2, state=state)).failed == {}
    connector.run_finish(user_list, session=session(2, state=state))

    (create,) = google_ads_fake.calls_to("CreateOfflineUserDataJob")
    assert create.request.customer_id == CUSTOMER
    assert create.request.job.type_.name == "CUSTOMER_MATCH_USER_LIST"
    metadata = create.request.job.customer_match_user_list_metadata
    assert metadata.user_list == user_list
    assert metadata.consent.ad_user_data.name == "GRANTED"
    assert metadata.consent.ad_personalization.name == "GRANTED"
    assert create.metadata["developer-token"] == "dev-token"
    assert create.metadata["login-customer-id"] == "9876543210"
    assert create.metadata["authorization"] == "Bearer fake"
    assert added(google_ads_fake) == [
        [
            ("create", [{"hashed_email": ANA_EMAIL}, {"hashed_phone_number": ANA_PHONE}]),
            ("create", [{"hashed_email": BEN_EMAIL}]),
        ],
        [("remove", [{"hashed_email": OLD_EMAIL}])],
    ]
    for call in google_ads_fake.calls_to("AddOfflineUserDataJobOperations"):
        assert call.request.enable_partial_failure is True
        assert call.request.resource_name == state["job"]
        assert all("consent" not in getattr(op, "create", op) for op in call.request.operations)
    job = job_of(google_ads_fake, state)
    assert job.consent == {"ad_user_data": "GRANTED", "ad_personalization": "GRANTED"}
    assert (job.status, job.runs, job.applied) == ("SUCCESS", 1, 3)
    assert google_ads_fake.members(user_list) == {
        ("hashed_email", ANA_EMAIL),
        ("hashed_phone_number", ANA_PHONE),
        ("hashed_email", BEN_EMAIL),
    }
    assert state == {"job": job.resource_name, "remove_all": "sent", "operations": 3}


def test_identifiers_are_the_exact_hashes():
    """Email trimmed and lower-cased, phone E.164 with `+`, then SHA-256 hex."""
    assert ANA.identifiers == {
        "email": "8e43ca37701228e74983efdbd0cff5c16b3b1e5d4e29a7c05626d4d25a018e11",
        "phone": "91e296c972c986bfd3469ba3cb87a2c742b990be55289589c683d5ef0c0bc1c3",
    }


def test_full_replace_starts_the_job_with_remove_all(connector, google_ads_fake, user_list):
    google_ads_fake.user_lists[user_list].members.add(("hashed_email", OLD_EMAIL))
    state = {}
    connector.run_begin(user_list, mode="full", session=session(state=state))
    assert state["remove_all"] == "pending"
    connector.replace_batch(user_list, [ANA], session=session(1, state=state), last=False)
    connector.replace_batch(user_list, [BEN], session=session(2, state=state), last=True)
    connector.run_finish(user_list, session=session(2, state=state))

    assert added(google_ads_fake) == [
        [
            ("remove_all",),
            ("create", [{"hashed_email": ANA_EMAIL}, {"hashed_phone_number": ANA_PHONE}]),
        ],
        [("create", [{"hashed_email": BEN_EMAIL}])],
    ]
    assert google_ads_fake.members(user_list) == {
        ("hashed_email", ANA_EMAIL),
        ("hashed_phone_number", ANA_PHONE),
        ("hashed_email", BEN_EMAIL),
    }


def test_full_replace_of_an_empty_audience_still_empties_the_list(
    connector, google_ads_fake, user_list
):
    google_ads_fake.user_lists[user_list].members.add(("hashed_email", OLD_EMAIL))
    state = {}
    connector.run_begin(user_list, mode="full", session=session(total=0, state=state))
    connector.replace_batch(user_list, [], session=session(1, state=state), last=True)
    connector.run_finish(user_list, session=session(1, state=state))

    assert added(google_ads_fake) == [[("remove_all",)]]
    assert google_ads_fake.members(user_list) == set()


def test_a_first_batch_sent_again_is_applied_once(connector, google_ads_fake, user_list):
    """The answer to the first batch was lost (crash before its state was kept): the same
    request again would put remove-all second, which Google refuses; the connector sends the
    rest without it and the job holds every operation once."""
    state = {}
    connector.run_begin(user_list, mode="full", session=session(state=state))
    kept = dict(state)
    connector.replace_batch(user_list, [ANA, BEN], session=session(1, state=state), last=True)
    retry = session(1, state=kept)
    assert connector.replace_batch(user_list, [ANA, BEN], session=retry, last=True).failed == {}
    connector.run_finish(user_list, session=retry)

    first = [
        ("remove_all",),
        ("create", [{"hashed_email": ANA_EMAIL}, {"hashed_phone_number": ANA_PHONE}]),
        ("create", [{"hashed_email": BEN_EMAIL}]),
    ]
    assert added(google_ads_fake) == [first, first, first[1:]]
    job = job_of(google_ads_fake, kept)
    assert (job.add_requests, job.received, len(job.operations)) == (2, 5, 3)
    assert (job.runs, job.applied) == (1, 3)
    assert kept["remove_all"] == "sent"


def test_an_incremental_batch_sent_again_is_held_once(connector, google_ads_fake, user_list):
    state = {}
    connector.run_begin(user_list, mode="incremental", session=session(state=state))
    connector.members_add(user_list, [ANA], session=session(1, state=state))
    connector.members_add(user_list, [ANA], session=session(1, state=state))
    connector.run_finish(user_list, session=session(1, state=state))

    job = job_of(google_ads_fake, state)
    assert (job.add_requests, job.received, job.applied) == (2, 2, 1)
    assert google_ads_fake.members(user_list) == {
        ("hashed_email", ANA_EMAIL),
        ("hashed_phone_number", ANA_PHONE),
    }


def test_run_begin_again_keeps_the_job(connector, google_ads_fake, user_list):
    state = {}
    connector.run_begin(user_list, mode="full", session=session(state=state))
    connector.run_begin(user_list, mode="full", session=session(state=state))
    assert len(google_ads_fake.calls_to("CreateOfflineUserDataJob")) == 1


def test_an_incremental_run_without_changes_creates_no_job(connector, google_ads_fake, user_list):
    state = {}
    connector.run_begin(user_list, mode="incremental", session=session(total=0, state=state))
    connector.run_finish(user_list, session=session(0, total=0, state=state))
    assert google_ads_fake.calls == []
    assert state == {}


def test_partial_failure_maps_refused_operations_to_customers(
    connector, google_ads_fake, user_list
):
    state = {}
    connector.run_begin(user_list, mode="full", session=session(state=state))
    bad = Member(5, {"email": "not-a-hash"})
    nothing = Member(6, {})
    result = connector.replace_batch(
        user_list, [ANA, bad, nothing, BEN], session=session(1, state=state), last=True
    )

    assert result.failed == {
        5: "offline_user_data_job_error.INVALID_SHA256_FORMAT: The SHA256 encoded value is "
        "malformed.",
        6: "no email or phone to match",
    }
    # operations[0] is the remove-all: the bad member was operations[2]
    assert added(google_ads_fake)[0][2] == ("create", [{"hashed_email": "not-a-hash"}])
    assert state["operations"] == 3


def test_run_finish_polls_through_retry_later(connector, google_ads_fake, user_list):
    google_ads_fake.job_polls = 3  # status answers seeing RUNNING: two run_finish calls
    state = {}
    connector.run_begin(user_list, mode="incremental", session=session(state=state))
    connector.members_add(user_list, [BEN], session=session(1, state=state))
    for _ in range(2):
        with pytest.raises(RetryLater) as raised:
            connector.run_finish(user_list, session=session(1, state=state))
        assert raised.value.retry_after == 30
        assert raised.value.code == "RUNNING"
    connector.run_finish(user_list, session=session(1, state=state))

    assert len(google_ads_fake.calls_to("RunOfflineUserDataJob")) == 1
    (query, *_) = [call.request.query for call in google_ads_fake.calls_to("Search")]
    assert query == (
        "SELECT offline_user_data_job.resource_name, offline_user_data_job.status, "  # noqa: S608
        "offline_user_data_job.failure_reason FROM offline_user_data_job "
        f"WHERE offline_user_data_job.resource_name = '{state['job']}'"
    )
    assert google_ads_fake.members(user_list) == {("hashed_email", BEN_EMAIL)}


def test_a_job_google_shows_running_is_not_run_again(connector, google_ads_fake, user_list):
    """The engine keeps no state from a run_finish that asked to be called later; the job's
    own status says whether it ran."""
    google_ads_fake.job_polls = 2
    state = {}
    connector.run_begin(user_list, mode="incremental", session=session(state=state))
    connector.members_add(user_list, [BEN], session=session(1, state=state))
    kept = dict(state)
    with pytest.raises(RetryLater):
        connector.run_finish(user_list, session=session(1, state=state))
    connector.run_finish(user_list, session=session(1, state=kept))

    assert len(google_ads_fake.calls_to("RunOfflineUserDataJob")) == 1
    assert job_of(google_ads_fake, kept).status == "SUCCESS"


def test_a_failed_job_rejects(connector, google_ads_fake, user_list):
    google_ads_fake.job_failure = "UNKNOWN"
    state = {}
    connector.run_begin(user_list, mode="incremental", session=session(state=state))
    connector.members_add(user_list, [BEN], session=session(1, state=state))
    with pytest.raises(BatchRejected) as raised:
        connector.run_finish(user_list, session=session(1, state=state))
    assert str(raised.value) == f"Google Ads job {state['job']} failed: UNKNOWN"


def test_a_job_that_is_gone_needs_a_rerun(connector, google_ads_fake, user_list):
    state = {}
    connector.run_begin(user_list, mode="incremental", session=session(state=state))
    google_ads_fake.forget_job(state["job"])
    with pytest.raises(RerunNeeded) as raised:
        connector.members_add(user_list, [BEN], session=session(1, state=state))
    assert raised.value.code == "mutate_error.RESOURCE_NOT_FOUND"


def test_a_replace_that_lost_its_job_mid_way_needs_a_rerun(connector, google_ads_fake, user_list):
    with pytest.raises(RerunNeeded):
        connector.replace_batch(user_list, [BEN], session=session(2), last=True)
    assert google_ads_fake.calls == []


def test_a_job_gone_while_running_needs_a_rerun(connector, google_ads_fake, user_list):
    google_ads_fake.job_polls = 5
    state = {}
    connector.run_begin(user_list, mode="incremental", session=session(state=state))
    connector.members_add(user_list, [BEN], session=session(1, state=state))
    with pytest.raises(RetryLater):
        connector.run_finish(user_list, session=session(1, state=state))
    google_ads_fake.forget_job(state["job"])
    with pytest.raises(RerunNeeded):
        connector.run_finish(user_list, session=session(1, state=state))


@pytest.mark.parametrize(
    ("code", "errors"),
    [
        (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            [("quota_error", "RESOURCE_EXHAUSTED", "Too many requests.")],
        ),
        (grpc.StatusCode.UNAVAILABLE, []),
        (grpc.StatusCode.DEADLINE_EXCEEDED, []),
        (grpc.StatusCode.INTERNAL, [("internal_error", "INTERNAL_ERROR", "Internal error.")]),
    ],
)
def test_throttling_and_server_errors_retry_later(
    connector, google_ads_fake, user_list, code, errors
):
    state = {}
    connector.run_begin(user_list, mode="incremental", session=session(state=state))
    google_ads_fake.fail_next("AddOfflineUserDataJobOperations", code, errors)
    with pytest.raises(RetryLater):
        connector.members_add(user_list, [BEN], session=session(1, state=state))
    assert connector.members_add(user_list, [BEN], session=session(1, state=state)).failed == {}
    assert job_of(google_ads_fake, state).received == 1


def test_throttling_waits_as_long_as_google_asks(connector, google_ads_fake, user_list):
    state = {}
    connector.run_begin(user_list, mode="incremental", session=session(state=state))
    google_ads_fake.fail_next(
        "AddOfflineUserDataJobOperations",
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        [("quota_error", "RESOURCE_TEMPORARILY_EXHAUSTED", "Too many requests.")],
        retry_delay=17,
    )
    with pytest.raises(RetryLater) as raised:
        connector.members_add(user_list, [BEN], session=session(1, state=state))
    assert raised.value.retry_after == 17
    assert raised.value.code == "RESOURCE_EXHAUSTED"


def test_an_invalid_request_is_rejected_with_googles_message(connector, google_ads_fake, user_list):
    state = {}
    connector.run_begin(user_list, mode="incremental", session=session(state=state))
    google_ads_fake.fail_next(
        "AddOfflineUserDataJobOperations",
        grpc.StatusCode.INVALID_ARGUMENT,
        [("offline_user_data_job_error", "INCOMPATIBLE_UPLOAD_KEY_TYPE", "Wrong upload key.")],
    )
    with pytest.raises(BatchRejected) as raised:
        connector.members_add(user_list, [BEN], session=session(1, state=state))
    assert str(raised.value) == (
        "Google Ads add operations: offline_user_data_job_error.INCOMPATIBLE_UPLOAD_KEY_TYPE: "
        "Wrong upload key. (request fake-request)"
    )
    assert raised.value.code == "offline_user_data_job_error.INCOMPATIBLE_UPLOAD_KEY_TYPE"


def test_customer_data_terms_not_accepted_break_the_destination(
    connector, google_ads_fake, user_list
):
    google_ads_fake.fail_next(
        "CreateOfflineUserDataJob",
        grpc.StatusCode.INVALID_ARGUMENT,
        [("offline_user_data_job_error", "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS", "Terms.")],
    )
    with pytest.raises(DestinationBroken):
        connector.run_begin(user_list, mode="full", session=session())


def test_a_revoked_token_breaks_the_destination(workspace, google_ads_fake, user_list):
    connector = make_connector(
        workspace, credentials={"developer_token": "dev-token", "access_token": "revoked"}
    )
    with pytest.raises(DestinationBroken) as raised:
        connector.run_begin(user_list, mode="full", session=session())
    assert raised.value.code == "authentication_error.OAUTH_TOKEN_INVALID"
    assert "OAuth token is invalid." in str(raised.value)


def test_the_refresh_token_is_exchanged_for_an_access_token(
    workspace, google_ads_fake, google_oauth_fake
):
    google_oauth_fake.refresh_tokens["refresh-1"] = "fake"
    client_id, client_secret = google_oauth_fake.client
    credentials = {
        "developer_token": "dev-token",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": "refresh-1",
    }
    connector = make_connector(workspace, credentials=credentials)

    assert connector.test_connection() == "Connected to customer 1234567890 (Acme México)."
    (token_request,) = google_oauth_fake.requests_to("/token")
    assert token_request.form == {
        "grant_type": ["refresh_token"],
        "client_id": [client_id],
        "client_secret": [client_secret],
        "refresh_token": ["refresh-1"],
        "scope": ["https://www.googleapis.com/auth/adwords"],
    }
    (call,) = google_ads_fake.calls_to("Search")
    assert call.metadata["authorization"] == "Bearer fake"


def test_a_revoked_refresh_token_breaks_the_destination(
    workspace, google_ads_fake, google_oauth_fake
):
    client_id, client_secret = google_oauth_fake.client
    credentials = {
        "developer_token": "dev-token",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": "revoked",
    }
    connector = make_connector(workspace, credentials=credentials)
    with pytest.raises(DestinationBroken) as raised:
        connector.test_connection()
    assert "invalid_grant" in str(raised.value)
    assert google_ads_fake.calls == []


def test_an_account_without_access_breaks_the_destination(workspace, google_ads_fake, user_list):
    connector = make_connector(workspace, config={"customer_id": "1112223333"})
    with pytest.raises(DestinationBroken) as raised:
        connector.test_connection()
    assert raised.value.code == "authorization_error.USER_PERMISSION_DENIED"


def test_audience_create_makes_a_crm_list(connector, google_ads_fake):
    remote_id = connector.audience_create("VIP customers")

    assert remote_id.startswith(f"customers/{CUSTOMER}/userLists/")
    created = google_ads_fake.user_lists[remote_id]
    assert (created.name, created.upload_key_type, created.data_source_type) == (
        "VIP customers",
        "CONTACT_INFO",
        "FIRST_PARTY",
    )
    assert created.membership_life_span == 540
    (call,) = google_ads_fake.calls_to("MutateUserLists")
    assert call.request.customer_id == CUSTOMER


def test_audience_create_again_finds_the_list_of_that_name(connector, google_ads_fake):
    first = connector.audience_create("Ana's list")
    assert connector.audience_create("Ana's list") == first
    query = google_ads_fake.calls_to("Search")[0].request.query
    assert query.endswith("WHERE user_list.name = 'Ana\\'s list'")


def test_a_bare_list_id_names_the_list(connector, google_ads_fake, user_list):
    state = {}
    connector.run_begin(user_list.rsplit("/", 1)[1], mode="full", session=session(state=state))
    (create,) = google_ads_fake.calls_to("CreateOfflineUserDataJob")
    assert create.request.job.customer_match_user_list_metadata.user_list == user_list


def test_test_connection(connector, google_ads_fake):
    assert connector.test_connection() == "Connected to customer 1234567890 (Acme México)."
    (call,) = google_ads_fake.calls_to("Search")
    assert call.request.customer_id == CUSTOMER


def test_config_takes_customer_ids_with_dashes():
    serializer = GoogleAdsConfig(data={"customer_id": "123-456-7890"})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"customer_id": "1234567890"}
    short = GoogleAdsConfig(data={"customer_id": "12345"})
    assert not short.is_valid()
    assert short.errors["customer_id"] == ["a 10-digit Google Ads customer id (123-456-7890)"]
    unknown = GoogleAdsConfig(data={"customer_id": "1234567890", "extra": "1"})
    assert not unknown.is_valid()
    assert set(unknown.errors) == {"extra"}


def test_without_the_insecure_setting_the_sdk_builds_its_tls_channel(workspace, settings):
    """No call is made (gRPC connects lazily): only that production builds its clients with
    GoogleAdsClient.get_service, for API v26, at Google's endpoint."""
    settings.MASIVO_GOOGLE_ADS_INSECURE = False
    settings.MASIVO_GOOGLE_ADS_ENDPOINT = None
    connector = make_connector(workspace)
    service = connector._service("OfflineUserDataJobService")
    assert type(service).__module__ == (
        "google.ads.googleads.v26.services.services.offline_user_data_job_service.client"
    )
    assert connector._ads_client().endpoint is None
    assert connector._ads_client().login_customer_id == "9876543210"


def test_a_full_sync_through_the_engine_waits_for_the_job(
    workspace, google_ads_fake, google_oauth_fake
):
    """The sync engine with this connector: only the consented customer goes, hashed from the
    customer row in SQL, the list is replaced, and a job still running puts the run back in
    the queue until Google has finished."""
    google_oauth_fake.refresh_tokens["refresh-1"] = "fake"
    client_id, client_secret = google_oauth_fake.client
    admin = Actor(role=Role.ADMIN)
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace)
        ana = CustomerFactory(
            workspace=workspace,
            email="ana@example.com",
            phone="+525512345678",
            consent={"advertising": {"status": "granted"}},
        )
        denied = CustomerFactory(
            workspace=workspace,
            email="ben@example.com",
            consent={"advertising": {"status": "denied"}},
        )
        for customer in (ana, denied):
            Membership.objects.create(
                workspace=workspace, audience=audience, customer=customer, source="list"
            )
        destination = services.destination_create(
            workspace=workspace,
            kind="google_ads",
            name="Google Ads",
            actor=admin,
            config={"customer_id": "123-456-7890"},
            credentials={
                "developer_token": "dev-token",
                "client_id": client_id,
                "client_secret": client_secret,
                "refresh_token": "refresh-1",
            },
        )
        sync = services.sync_create(
            destination=destination,
            audience=audience,
            actor=admin,
            mode="full",
            remote_audience_name="VIPs",
        )
        google_ads_fake.user_lists[sync.remote_audience_id].members.add(("hashed_email", OLD_EMAIL))
        google_ads_fake.job_polls = 1
        run = SyncRun.objects.get(sync=sync)
        run = sync_run_execute(run_id=run.id)
        assert run.status == "queued"
        # Still running: queued again without spending the retry budget.
        assert (run.error, run.attempts) == (
            f"Google Ads job {run.remote_state['job']} is RUNNING", 0)  # fmt: skip
        run = sync_run_execute(run_id=run.id, now=run.retry_at + timedelta(seconds=1))

    assert run.status == "succeeded", run.error
    assert added(google_ads_fake) == [
        [
            ("remove_all",),
            ("create", [{"hashed_email": ANA_EMAIL}, {"hashed_phone_number": ANA_PHONE}]),
        ]
    ]
    assert google_ads_fake.members(sync.remote_audience_id) == {
        ("hashed_email", ANA_EMAIL),
        ("hashed_phone_number", ANA_PHONE),
    }
    assert len(google_ads_fake.calls_to("RunOfflineUserDataJob")) == 1
