"""Google Ads Customer Match through the `google-ads` SDK (API v26, gRPC, proto-plus).

An audience is a CRM-based user list (upload key CONTACT_INFO). A run is one offline user data
job: `run_begin` creates it with the list and job-level consent, each batch adds its operations
(`create` / `remove` UserData, `remove_all` first for a full replace), `run_finish` runs it once
and then polls its status, raising RetryLater while Google is still processing (jobs can take
hours). The job's resource name and progress live in `session.state`:

- `job`: the job's resource name;
- `remove_all`: "pending" (a full run whose remove-all is still to go first) or "sent";
- `operations`: operations Google accepted into the job (no operations: nothing to run).

See docs/destinations/google_ads.md.
"""

from __future__ import annotations

import re
from importlib import import_module
from typing import Any

import grpc
from django.conf import settings
from google.ads.googleads import util as ads_util
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.errors import GoogleAdsException
from google.ads.googleads.interceptors import ExceptionInterceptor, MetadataInterceptor
from google.ads.googleads.v26.common.types import consent as consent_types
from google.ads.googleads.v26.common.types import offline_user_data, user_lists
from google.ads.googleads.v26.enums.types import (
    consent_status,
    customer_match_upload_key_type,
    offline_user_data_job_type,
    user_list_crm_data_source_type,
)
from google.ads.googleads.v26.errors.types import errors as ads_errors
from google.ads.googleads.v26.resources.types import offline_user_data_job, user_list
from google.ads.googleads.v26.services.types import (
    offline_user_data_job_service,
    user_list_service,
)
from google.api_core import exceptions as core
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials
from google.protobuf.message import DecodeError
from rest_framework import serializers

from destinations.connectors.base import (
    AUDIENCES,
    REPLACE,
    BatchRejected,
    BatchResult,
    Connector,
    DestinationBroken,
    Member,
    RerunNeeded,
    RetryLater,
    Session,
    StillRunning,
)
from destinations.models import DestinationKind
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField

API_VERSION = "v26"
TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
SCOPES = ["https://www.googleapis.com/auth/adwords"]
MAX_OPERATIONS = 100_000  # a single AddOfflineUserDataJobOperations request
POLL_AFTER = 30  # seconds between job status polls
TIMEOUT = 120  # seconds a call may take
MEMBERSHIP_LIFE_SPAN = 540  # days, the most v26 allows
# Our identifiers and the UserIdentifier field each goes in (values hashed by
# destinations.identifiers: SHA-256 hex of the trimmed lower-case email, of the E.164 phone).
FIELDS = {"email": "hashed_email", "phone": "hashed_phone_number"}
INVALID_OPERATION_ORDER = "offline_user_data_job_error.INVALID_OPERATION_ORDER"
JOB_ALREADY_STARTED = "offline_user_data_job_error.JOB_ALREADY_STARTED"
# Errors no retry mends, only someone at the Google Ads account: the destination stops.
BROKEN_ERRORS = {
    "offline_user_data_job_error.CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS",
}
BROKEN_FIELDS = {"authentication_error", "authorization_error"}
RETRY_FIELDS = {"quota_error", "internal_error"}

Granted = consent_status.ConsentStatusEnum.ConsentStatus.GRANTED
JobType = offline_user_data_job_type.OfflineUserDataJobTypeEnum.OfflineUserDataJobType
UploadKey = customer_match_upload_key_type.CustomerMatchUploadKeyTypeEnum.CustomerMatchUploadKeyType
DataSource = user_list_crm_data_source_type.UserListCrmDataSourceTypeEnum.UserListCrmDataSourceType


def _customer_id(value: str) -> str:
    digits = value.replace("-", "").strip()
    if not re.fullmatch(r"\d{10}", digits):
        raise serializers.ValidationError("a 10-digit Google Ads customer id (123-456-7890)")
    return digits


class GoogleAdsConfig(RefusesUnknownFields):
    customer_id = StrictCharField(help_text="The account holding the lists (123-456-7890).")
    login_customer_id = StrictCharField(
        required=False,
        allow_blank=True,
        help_text="The manager account to log in through, when access comes from one.",
    )

    def validate_customer_id(self, value):
        return _customer_id(value)

    def validate_login_customer_id(self, value):
        return _customer_id(value) if value else ""


class GoogleAdsCredentials(RefusesUnknownFields):
    developer_token = StrictCharField()
    client_id = StrictCharField(help_text="OAuth client (installed-app flow).")
    client_secret = StrictCharField()
    refresh_token = StrictCharField(help_text="With the adwords scope.")


class GoogleAdsConnector(Connector):
    kind = DestinationKind.GOOGLE_ADS
    label = "Google Ads Customer Match"
    summary = "Keeps Google Ads Customer Match lists of hashed emails and phone numbers."
    docs_anchor = "google-ads"
    capabilities = frozenset({AUDIENCES, REPLACE})
    platform = "google"
    default_identifiers = ("email", "phone")
    offered_identifiers = ("email", "phone")
    batch_size = 10_000
    config_serializer = GoogleAdsConfig
    credentials_serializer = GoogleAdsCredentials

    def __init__(self, destination):
        super().__init__(destination)
        self._client: GoogleAdsClient | None = None
        self._services: dict[str, Any] = {}

    @property
    def customer_id(self) -> str:
        return _customer_id(str(self.config.get("customer_id", "")))

    # Every connector -------------------------------------------------------------------------

    def test_connection(self) -> str:
        query = "SELECT customer.id, customer.descriptive_name FROM customer LIMIT 1"
        with _errors("test connection"):
            rows = list(
                self._service("GoogleAdsService").search(
                    customer_id=self.customer_id, query=query, timeout=TIMEOUT
                )
            )
        if not rows:
            raise DestinationBroken(f"customer {self.customer_id} is not accessible")
        customer = rows[0].customer
        return f"Connected to customer {customer.id} ({customer.descriptive_name})."

    # Audiences -------------------------------------------------------------------------------

    def audience_create(self, name: str) -> str:
        """Creates a CRM-based list (CONTACT_INFO, first party); returns its resource name
        (`customers/<id>/userLists/<id>`). A list of that name already there (a create whose
        answer was lost) is found and returned instead."""
        operation = user_list_service.UserListOperation(
            create=user_list.UserList(
                name=name,
                description="Kept by Masivo.",
                membership_life_span=MEMBERSHIP_LIFE_SPAN,
                crm_based_user_list=user_lists.CrmBasedUserListInfo(
                    upload_key_type=UploadKey.CONTACT_INFO,
                    data_source_type=DataSource.FIRST_PARTY,
                ),
            )
        )
        try:
            with _errors("create user list"):
                response = self._service("UserListService").mutate_user_lists(
                    customer_id=self.customer_id, operations=[operation], timeout=TIMEOUT
                )
        except BatchRejected as error:
            existing = error.code == "user_list_error.NAME_ALREADY_USED" and self._list_named(name)
            if existing:
                return existing
            raise
        return response.results[0].resource_name

    def run_begin(self, remote_id: str, *, mode: str, session: Session) -> None:
        """Creates the run's job, unless there is one already (a run resumed after a crash) or
        nothing to send (an incremental run without changes: no empty job every minute for a
        streaming sync). A full run always gets one: its remove-all empties the list even when
        the audience is now empty."""
        if session.state.get("job") or (mode != "full" and not session.estimated_total):
            return
        self._create_job(remote_id, session, full=mode == "full")

    def members_add(
        self, remote_id: str, members: list[Member], *, session: Session
    ) -> BatchResult:
        return self._send(remote_id, "create", members, session)

    def members_remove(
        self, remote_id: str, members: list[Member], *, session: Session
    ) -> BatchResult:
        return self._send(remote_id, "remove", members, session)

    def replace_batch(
        self, remote_id: str, members: list[Member], *, session: Session, last: bool
    ) -> BatchResult:
        if not session.state.get("job"):
            if session.batch_seq != 1:
                raise RerunNeeded("the replace's Google Ads job is not known any more")
            self._create_job(remote_id, session, full=True)
        return self._send(remote_id, "create", members, session)

    def run_finish(self, remote_id: str, *, session: Session) -> None:
        """Runs the job unless Google shows it ran (its status is no longer PENDING: this does
        not rely on the state being saved between polls), then polls it."""
        state = session.state
        job = state.get("job")
        if not job:
            return
        if state.get("remove_all") == "pending":
            self._send(remote_id, "create", [], session)
        if not state.get("operations"):
            return
        if self._status(job)[0] == "PENDING":
            try:
                with _errors("run job", job=True):
                    self._jobs().run_offline_user_data_job(resource_name=job, timeout=TIMEOUT)
            except BatchRejected as error:
                if error.code != JOB_ALREADY_STARTED:
                    raise
        status, reason = self._status(job)
        if status == "SUCCESS":
            return
        if status == "FAILED":
            raise BatchRejected(f"Google Ads job {job} failed: {reason}", code=reason)
        raise StillRunning(f"Google Ads job {job} is {status}", retry_after=POLL_AFTER,
                           code=status)  # fmt: skip

    # Internals -------------------------------------------------------------------------------

    def _create_job(self, remote_id: str, session: Session, *, full: bool) -> None:
        """Job-level consent GRANTED for both fields: the engine sends only customers whose
        consent allows advertising (and this destination's vendor), so every member of the job
        consented. Never per operation (OPERATION_LEVEL_CONSENT_PROVIDED: ignored)."""
        metadata = offline_user_data.CustomerMatchUserListMetadata(
            user_list=self._list_name(remote_id),
            consent=consent_types.Consent(ad_user_data=Granted, ad_personalization=Granted),
        )
        job = offline_user_data_job.OfflineUserDataJob(
            type_=JobType.CUSTOMER_MATCH_USER_LIST, customer_match_user_list_metadata=metadata
        )
        with _errors("create job"):
            response = self._jobs().create_offline_user_data_job(
                customer_id=self.customer_id, job=job, timeout=TIMEOUT
            )
        session.state.update(
            job=response.resource_name, remove_all="pending" if full else "sent", operations=0
        )

    def _send(
        self, remote_id: str, kind: str, members: list[Member], session: Session
    ) -> BatchResult:
        """Adds one operation per member to the run's job, after a remove-all if the job still
        needs one; refused operations come back as the members' failures."""
        state = session.state
        if not state.get("job"):
            self._create_job(remote_id, session, full=False)
        result = BatchResult()
        operations: list[tuple[Member | None, Any]] = []
        for member in members:
            user_data = _user_data(member)
            if user_data is None:
                result.failed[member.customer_id] = "no email or phone to match"
            else:
                operations.append(
                    (
                        member,
                        offline_user_data_job_service.OfflineUserDataJobOperation(
                            **{kind: user_data}
                        ),
                    )
                )
        if state.get("remove_all") == "pending":
            remove_all = offline_user_data_job_service.OfflineUserDataJobOperation(remove_all=True)
            operations.insert(0, (None, remove_all))
        for start in range(0, len(operations), MAX_OPERATIONS):
            chunk = operations[start : start + MAX_OPERATIONS]
            result.failed.update(self._add(state, chunk))
        return result

    def _add(self, state: dict, chunk: list[tuple[Member | None, Any]]) -> dict[int, str]:
        try:
            with _errors("add operations", job=True):
                request = offline_user_data_job_service.AddOfflineUserDataJobOperationsRequest(
                    resource_name=state["job"],
                    operations=[operation for _, operation in chunk],
                    enable_partial_failure=True,
                )
                response = self._jobs().add_offline_user_data_job_operations(
                    request=request, timeout=TIMEOUT
                )
        except BatchRejected as error:
            if error.code != INVALID_OPERATION_ORDER or chunk[0][0] is not None:
                raise
            # The same first batch sent again after its answer was lost: the job already starts
            # with our remove-all, so the rest goes without it.
            state["remove_all"] = "sent"
            return self._add(state, chunk[1:]) if chunk[1:] else {}
        if chunk[0][0] is None:
            state["remove_all"] = "sent"
        failed = _partial_failures(response, [member for member, _ in chunk])
        state["operations"] = state.get("operations", 0) + len(chunk) - len(failed)
        return failed

    def _status(self, job: str) -> tuple[str, str]:
        """The job's status and failure reason names; a job Google no longer knows is gone."""
        query = (
            "SELECT offline_user_data_job.resource_name, offline_user_data_job.status, "  # noqa: S608 (GAQL, quoted by _gaql_string)
            "offline_user_data_job.failure_reason FROM offline_user_data_job "
            f"WHERE offline_user_data_job.resource_name = {_gaql_string(job)}"
        )
        with _errors("job status", job=True):
            rows = list(
                self._service("GoogleAdsService").search(
                    customer_id=self.customer_id, query=query, timeout=TIMEOUT
                )
            )
        if not rows:
            raise RerunNeeded(f"Google Ads job {job} is gone", code="NOT_FOUND")
        found = rows[0].offline_user_data_job
        return found.status.name, found.failure_reason.name

    def _list_named(self, name: str) -> str | None:
        query = (
            "SELECT user_list.resource_name, user_list.name FROM user_list "  # noqa: S608 (GAQL, quoted)
            f"WHERE user_list.name = {_gaql_string(name)}"
        )
        with _errors("find user list"):
            rows = list(
                self._service("GoogleAdsService").search(
                    customer_id=self.customer_id, query=query, timeout=TIMEOUT
                )
            )
        return rows[0].user_list.resource_name if rows else None

    def _list_name(self, remote_id: str) -> str:
        """Resource names as `audience_create` returns them; a bare list id works too."""
        if remote_id.isdigit():
            return f"customers/{self.customer_id}/userLists/{remote_id}"
        return remote_id

    # The SDK ---------------------------------------------------------------------------------

    def _jobs(self):
        return self._service("OfflineUserDataJobService")

    def _service(self, name: str):
        if name not in self._services:
            client = self._ads_client()
            if getattr(settings, "MASIVO_GOOGLE_ADS_INSECURE", False):
                self._services[name] = _loopback_service(client, name)
            else:
                self._services[name] = client.get_service(name, version=API_VERSION)
        return self._services[name]

    def _ads_client(self) -> GoogleAdsClient:
        if self._client is None:
            credentials = self.credentials
            login = self.config.get("login_customer_id") or None
            self._client = GoogleAdsClient(
                credentials=self._oauth(),
                developer_token=credentials.get("developer_token"),
                endpoint=getattr(settings, "MASIVO_GOOGLE_ADS_ENDPOINT", None) or None,
                login_customer_id=_customer_id(login) if login else None,
                version=API_VERSION,
                use_proto_plus=True,
            )
        return self._client

    def _oauth(self) -> Credentials:
        """A fixed `access_token` (tests, short-lived tooling) is used as is; otherwise the
        refresh token is exchanged now, so a revoked one stops the destination here rather
        than failing inside gRPC's metadata plugin as UNAVAILABLE."""
        credentials = self.credentials
        if credentials.get("access_token"):
            return Credentials(token=credentials["access_token"])
        oauth = Credentials(
            token=None,
            refresh_token=credentials.get("refresh_token"),
            client_id=credentials.get("client_id"),
            client_secret=credentials.get("client_secret"),
            token_uri=getattr(settings, "MASIVO_GOOGLE_TOKEN_URL", None) or TOKEN_URI,
            scopes=SCOPES,
        )
        try:
            oauth.refresh(Request())
        except auth_exceptions.RefreshError as error:
            if getattr(error, "retryable", False):
                raise RetryLater(f"Google OAuth: {error}") from error
            raise DestinationBroken(f"Google OAuth refused the refresh token: {error}") from error
        except auth_exceptions.TransportError as error:
            raise RetryLater(f"Google OAuth unreachable: {error}") from error
        return oauth


def _loopback_service(client: GoogleAdsClient, name: str):
    """The SDK's service client over a plaintext channel, for a local fake or emulator
    (MASIVO_GOOGLE_ADS_INSECURE). gRPC local credentials carry the OAuth token and only
    connect to a loopback address, so the token never crosses a network in clear. The same
    SDK interceptors as `get_service` (developer token, login customer, GoogleAdsException)."""
    module = import_module(
        f"google.ads.googleads.{API_VERSION}.services.services."
        f"{ads_util.convert_upper_case_to_snake_case(name)}"
    )
    client_class = getattr(module, f"{name}Client")
    transport_class = client_class.get_transport_class()
    channel = transport_class.create_channel(
        host=client.endpoint,
        credentials=client.credentials,
        ssl_credentials=grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
    )
    channel = grpc.intercept_channel(
        channel,
        MetadataInterceptor(client.developer_token, client.login_customer_id),
        ExceptionInterceptor(API_VERSION, use_proto_plus=True),
    )
    return client_class(transport=transport_class(channel=channel))


def _gaql_string(value: str) -> str:
    """A GAQL string literal: single-quoted, backslash and quote escaped."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _user_data(member: Member):
    identifiers = [
        offline_user_data.UserIdentifier(**{field: member.identifiers[name]})
        for name, field in FIELDS.items()
        if member.identifiers.get(name)
    ]
    return offline_user_data.UserData(user_identifiers=identifiers) if identifiers else None


def _partial_failures(response, members: list[Member | None]) -> dict[int, str]:
    """Refused operations by the member they were for: each error's location starts with
    `operations[i]`, the index in the request."""
    failed: dict[int, str] = {}
    for detail in response.partial_failure_error.details:
        failure = ads_errors.GoogleAdsFailure.deserialize(detail.value)
        for error in failure.errors:
            index = next(
                (
                    element.index
                    for element in error.location.field_path_elements
                    if element.field_name == "operations"
                ),
                None,
            )
            member = members[index] if index is not None and index < len(members) else None
            if member is not None:
                failed.setdefault(member.customer_id, f"{_code(error)}: {error.message}")
    return failed


def _code(error) -> str:
    """`<ErrorCode field>.<enum name>`: `offline_user_data_job_error.INVALID_SHA256_FORMAT`."""
    field = type(error.error_code).pb(error.error_code).WhichOneof("error_code")
    return f"{field}.{getattr(error.error_code, field).name}" if field else "UNKNOWN"


def _retry_delay(error: core.GoogleAPICallError) -> float | None:
    """The wait Google asks for with RESOURCE_EXHAUSTED: the SDK leaves the GoogleAdsFailure
    in the call's trailing metadata instead of raising GoogleAdsException."""
    call = error.response
    metadata = call.trailing_metadata() if isinstance(call, grpc.Call) else None
    key = f"google.ads.googleads.{API_VERSION}.errors.googleadsfailure-bin"
    for name, value in metadata or ():
        if name == key:
            try:
                return _failure_delay(ads_errors.GoogleAdsFailure.deserialize(value))
            except DecodeError:
                return None
    return None


def _failure_delay(failure) -> float | None:
    """The longest `quota_error_details.retry_delay` of a failure's errors, in seconds."""
    delays = [
        item.details.quota_error_details.retry_delay.total_seconds()
        for item in failure.errors
        if "retry_delay" in item.details.quota_error_details
    ]
    return max(delays) if delays else None


class _errors:
    """Maps what the SDK raises to the connector errors. `job`: the call names the run's job,
    so its absence (NOT_FOUND) means the run starts over."""

    def __init__(self, what: str, *, job: bool = False):
        self.what = what
        self.job = job

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None:
            return False
        mapped = self._map(error)
        if mapped is None:
            return False
        raise mapped from error

    def _map(self, error):
        if isinstance(error, GoogleAdsException):
            return self._ads(error)
        if isinstance(error, core.TooManyRequests | core.ServerError | core.Aborted):
            return RetryLater(
                f"Google Ads {self.what}: {error.message}",
                retry_after=_retry_delay(error),
                code=error.grpc_status_code.name if error.grpc_status_code else None,
            )
        if isinstance(error, core.Unauthenticated | core.PermissionDenied):
            return DestinationBroken(f"Google Ads {self.what}: {error.message}")
        if isinstance(error, core.NotFound) and self.job:
            return RerunNeeded(f"Google Ads {self.what}: {error.message}", code="NOT_FOUND")
        if isinstance(error, core.GoogleAPICallError):
            return BatchRejected(f"Google Ads {self.what}: {error.message}")
        return None

    def _ads(self, error: GoogleAdsException):
        codes = [_code(item) for item in error.failure.errors]
        fields = {code.split(".")[0] for code in codes}
        message = "; ".join(
            f"{code}: {item.message}"
            for code, item in zip(codes, error.failure.errors, strict=True)
        )
        message = f"Google Ads {self.what}: {message} (request {error.request_id})"
        first = codes[0] if codes else None
        status = error.error.code() if hasattr(error.error, "code") else None
        if fields & BROKEN_FIELDS or BROKEN_ERRORS.intersection(codes):
            return DestinationBroken(message, code=first)
        if self.job and (
            status == grpc.StatusCode.NOT_FOUND or "mutate_error.RESOURCE_NOT_FOUND" in codes
        ):
            return RerunNeeded(message, code=first)
        if fields & RETRY_FIELDS:
            return RetryLater(message, retry_after=_failure_delay(error.failure), code=first)
        return BatchRejected(message, code=first)
