"""Google Ads API (v26) fake: a local `grpc.server` serving what the Customer Match connector
calls through the real `google-ads` SDK.

Services (generic handlers, proto-plus (de)serializers from the SDK itself):
- `OfflineUserDataJobService`: CreateOfflineUserDataJob, AddOfflineUserDataJobOperations
  (with partial failure), RunOfflineUserDataJob (answers a long-running Operation, not done);
- `GoogleAdsService.Search`: the two GAQL queries the connector sends, `... FROM customer`
  (test_connection) and `... FROM offline_user_data_job WHERE offline_user_data_job.resource_name
  = '<name>'` (polling the job status: the SDK has no poller of its own for this, Google's
  examples query the job like this), plus `... FROM user_list WHERE user_list.name = '<name>'`;
- `UserListService.MutateUserLists`: creating CRM-based lists.

The port uses gRPC local credentials (LOCAL_TCP: plaintext, loopback only, call credentials
allowed), so the bearer token reaches the fake: tokens not in `fake.tokens` are refused with
UNAUTHENTICATED + `authentication_error.OAUTH_TOKEN_INVALID`, customers not in
`fake.customers` with PERMISSION_DENIED + `authorization_error.USER_PERMISSION_DENIED`, as Google
does (a GoogleAdsFailure in the `...googleadsfailure-bin` trailing metadata).

A user list is a set of hashed identifiers, `(field, value)` pairs such as
`("hashed_email", "<sha256 hex>")`. A job keeps its job-level consent and its operations in
order; they are applied to the list when the job finishes: after the run, `job_polls` status
queries see it RUNNING, the next one finishes it (`job_failure`: FAILED with that reason).
Running a job that is not PENDING is refused (JOB_ALREADY_STARTED: the fake's choice; Google
documents that code for adding operations to a started job). A remove-all operation
anywhere but first in the job is INVALID_OPERATION_ORDER (the whole request refused).

Re-sent requests: an operation is keyed by its kind and its set of identifiers (a remove-all by
its kind alone). An operation whose key the job already holds is counted in `job.received` but
not kept again, so `job.operations` (and `job.applied` once run) count each operation once, as
the real API treats adding the same user twice as one membership.

`fake.fail_next(method, code, errors=...)` answers the next call of `method` with a gRPC error:
with `errors` ([(error_code_field, enum_name, message)]) a GoogleAdsFailure rides along, which
the SDK raises as GoogleAdsException (except for RESOURCE_EXHAUSTED and INTERNAL, which it
leaves to google.api_core: ResourceExhausted, InternalServerError); `retry_delay` adds
`quota_error_details.retry_delay` as Google does with quota errors.

`GoogleOAuthFake` (HTTP, tests.fakes.base) is Google's OAuth token endpoint for the refresh
token flow (`MASIVO_GOOGLE_TOKEN_URL`).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import deque
from concurrent import futures
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.ads.googleads.v26.enums.types import (
    offline_user_data_job_failure_reason,
    offline_user_data_job_status,
)
from google.ads.googleads.v26.errors.types import errors as ads_errors
from google.ads.googleads.v26.resources.types import offline_user_data_job
from google.ads.googleads.v26.services.types import (
    google_ads_service,
    offline_user_data_job_service,
    user_list_service,
)
from google.longrunning import operations_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from tests.fakes.base import Answer, FakeServer, RecordedRequest

SERVICES = "google.ads.googleads.v26.services"
FAILURE_KEY = "google.ads.googleads.v26.errors.googleadsfailure-bin"
MAX_OPERATIONS = 100_000
MAX_IDENTIFIERS = 20
SHA256 = re.compile(r"^[0-9a-f]{64}$")
HASHED_FIELDS = ("hashed_email", "hashed_phone_number")
JOB_QUERY = re.compile(
    r"FROM offline_user_data_job WHERE offline_user_data_job\.resource_name = '([^']+)'"
)
LIST_QUERY = re.compile(r"FROM user_list WHERE user_list\.name = '((?:[^'\\]|\\.)*)'")

Status = offline_user_data_job_status.OfflineUserDataJobStatusEnum.OfflineUserDataJobStatus
FailureReason = offline_user_data_job_failure_reason.OfflineUserDataJobFailureReasonEnum
FailureReason = FailureReason.OfflineUserDataJobFailureReason
ErrorSpec = tuple[str, str, str]  # (ErrorCode field, enum value name, message)


class Refused(Exception):
    """An answer that is a gRPC error, optionally carrying a GoogleAdsFailure."""

    def __init__(
        self, code: grpc.StatusCode, errors: list[ErrorSpec] = (), *, at=None, retry_delay=None
    ):
        super().__init__(errors[0][2] if errors else code.name)
        self.code = code
        self.errors = list(errors)
        self.at = at  # operation index for the errors' location
        self.retry_delay = retry_delay  # seconds, as quota_error_details.retry_delay


@dataclass
class Call:
    method: str
    request: Any  # proto-plus request message
    metadata: dict[str, str]


@dataclass
class FakeJob:
    resource_name: str
    user_list: str
    consent: dict[str, str]  # {"ad_user_data": "GRANTED", "ad_personalization": "GRANTED"}
    status: str = "PENDING"
    failure_reason: str = "UNSPECIFIED"
    operations: dict[tuple, tuple] = field(default_factory=dict)  # key -> op, in order
    received: int = 0
    add_requests: int = 0
    runs: int = 0
    polls_left: int = 0
    applied: int = 0


@dataclass
class FakeList:
    resource_name: str
    name: str
    upload_key_type: str
    data_source_type: str
    membership_life_span: int
    members: set[tuple[str, str]] = field(default_factory=set)


class GoogleAdsFake:
    developer_token = "dev-token"

    def __init__(self):
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self._port = 0
        self._ids = itertools.count(1001)
        self.reset()

    # Lifecycle ---------------------------------------------------------------------------------

    def start(self) -> GoogleAdsFake:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers(self._handlers())
        credentials = grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        self._port = self._server.add_secure_port("127.0.0.1:0", credentials)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.stop(grace=None)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._port}"

    def reset(self) -> None:
        with self._lock:
            self.calls: list[Call] = []
            self.tokens = {"fake"}
            self.customers = {"1234567890": "Acme México"}
            self.user_lists: dict[str, FakeList] = {}
            self.jobs: dict[str, FakeJob] = {}
            self.job_polls = 0
            self.job_failure: str | None = None
            self._failures: deque[tuple[str, Refused]] = deque()

    # Knobs -------------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        code: grpc.StatusCode,
        errors: list[ErrorSpec] = (),
        *,
        retry_delay: int | None = None,
    ) -> None:
        with self._lock:
            self._failures.append((method, Refused(code, errors, retry_delay=retry_delay)))

    def add_user_list(self, customer_id: str, name: str) -> str:
        with self._lock:
            return self._new_list(customer_id, name, "CONTACT_INFO", "FIRST_PARTY", 540)

    def forget_job(self, resource_name: str) -> None:
        """The job is gone (expired or removed): calls naming it get NOT_FOUND."""
        with self._lock:
            self.jobs.pop(resource_name, None)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def members(self, user_list: str) -> set[tuple[str, str]]:
        with self._lock:
            return set(self.user_lists[user_list].members)

    # Handlers ----------------------------------------------------------------------------------

    def _handlers(self):
        jobs = offline_user_data_job_service
        table = {
            "OfflineUserDataJobService": {
                "CreateOfflineUserDataJob": (
                    self._create_job,
                    jobs.CreateOfflineUserDataJobRequest,
                    jobs.CreateOfflineUserDataJobResponse.serialize,
                ),
                "AddOfflineUserDataJobOperations": (
                    self._add_operations,
                    jobs.AddOfflineUserDataJobOperationsRequest,
                    jobs.AddOfflineUserDataJobOperationsResponse.serialize,
                ),
                "RunOfflineUserDataJob": (
                    self._run_job,
                    jobs.RunOfflineUserDataJobRequest,
                    operations_pb2.Operation.SerializeToString,
                ),
            },
            "GoogleAdsService": {
                "Search": (
                    self._search,
                    google_ads_service.SearchGoogleAdsRequest,
                    google_ads_service.SearchGoogleAdsResponse.serialize,
                ),
            },
            "UserListService": {
                "MutateUserLists": (
                    self._mutate_user_lists,
                    user_list_service.MutateUserListsRequest,
                    user_list_service.MutateUserListsResponse.serialize,
                ),
            },
        }
        return tuple(
            grpc.method_handlers_generic_handler(
                f"{SERVICES}.{service}",
                {
                    method: grpc.unary_unary_rpc_method_handler(
                        self._serving(method, handler),
                        request_deserializer=request_type.deserialize,
                        response_serializer=serializer,
                    )
                    for method, (handler, request_type, serializer) in methods.items()
                },
            )
            for service, methods in table.items()
        )

    def _serving(self, method, handler):
        def serve(request, context):
            metadata = dict(context.invocation_metadata())
            with self._lock:
                self.calls.append(Call(method, request, metadata))
                try:
                    self._scripted_failure(method)
                    self._authorize(
                        metadata,
                        getattr(request, "customer_id", None)
                        or _customer_of(request.resource_name),
                    )
                    return handler(request)
                except Refused as refused:
                    _abort(context, refused)

        return serve

    def _scripted_failure(self, method: str) -> None:
        for index, (wanted, refused) in enumerate(self._failures):
            if wanted == method:
                del self._failures[index]
                raise refused

    def _authorize(self, metadata: dict[str, str], customer_id: str) -> None:
        token = metadata.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            raise Refused(
                grpc.StatusCode.UNAUTHENTICATED,
                [("authentication_error", "OAUTH_TOKEN_INVALID", "OAuth token is invalid.")],
            )
        if metadata.get("developer-token") != self.developer_token:
            raise Refused(
                grpc.StatusCode.UNAUTHENTICATED,
                [("authentication_error", "DEVELOPER_TOKEN_INVALID", "Developer token invalid.")],
            )
        if customer_id not in self.customers:
            raise Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                [
                    (
                        "authorization_error",
                        "USER_PERMISSION_DENIED",
                        "User doesn't have permission to access customer.",
                    )
                ],
            )

    # OfflineUserDataJobService -----------------------------------------------------------------

    def _create_job(self, request):
        job = request.job
        metadata = job.customer_match_user_list_metadata
        if job.type_.name != "CUSTOMER_MATCH_USER_LIST":
            raise _invalid("offline_user_data_job_error", "INVALID_USER_LIST_TYPE")
        if metadata.user_list not in self.user_lists:
            raise _invalid("offline_user_data_job_error", "INVALID_USER_LIST_ID")
        name = f"customers/{request.customer_id}/offlineUserDataJobs/{next(self._ids)}"
        self.jobs[name] = FakeJob(
            resource_name=name,
            user_list=metadata.user_list,
            consent={
                "ad_user_data": metadata.consent.ad_user_data.name,
                "ad_personalization": metadata.consent.ad_personalization.name,
            },
        )
        return offline_user_data_job_service.CreateOfflineUserDataJobResponse(resource_name=name)

    def _job(self, resource_name: str) -> FakeJob:
        job = self.jobs.get(resource_name)
        if job is None:
            raise Refused(
                grpc.StatusCode.NOT_FOUND,
                [("mutate_error", "RESOURCE_NOT_FOUND", "Resource was not found.")],
            )
        return job

    def _add_operations(self, request):
        job = self._job(request.resource_name)
        if job.status != "PENDING":
            raise _invalid("offline_user_data_job_error", "JOB_ALREADY_STARTED")
        operations = list(request.operations)
        if len(operations) > MAX_OPERATIONS:
            raise _invalid("collection_size_error", "TOO_MANY")
        for index, operation in enumerate(operations):
            if operation.remove_all and (index > 0 or job.operations):
                raise _invalid(
                    "offline_user_data_job_error",
                    "INVALID_OPERATION_ORDER",
                    "When a remove-all operation is provided, it has to be the first operation.",
                    at=index,
                )
        accepted, errors = [], []
        for index, operation in enumerate(operations):
            problem = _operation_problem(operation)
            if problem:
                errors.append((index, *problem))
            else:
                accepted.append(operation)
        if errors and not request.enable_partial_failure:
            index, _, code, message = errors[0]
            raise _invalid("offline_user_data_job_error", code, message, at=index)
        job.add_requests += 1
        for operation in accepted:
            job.received += 1
            key = _operation_key(operation)
            job.operations.setdefault(key, key)
        response = offline_user_data_job_service.AddOfflineUserDataJobOperationsResponse()
        if errors:
            response.partial_failure_error = _partial_failure(errors)
        return response

    def _run_job(self, request):
        job = self._job(request.resource_name)
        if job.status != "PENDING":
            raise _invalid("offline_user_data_job_error", "JOB_ALREADY_STARTED")
        job.runs += 1
        job.status = "RUNNING"
        job.polls_left = self.job_polls
        return operations_pb2.Operation(
            name=f"customers/{_customer_of(job.resource_name)}/operations/{next(self._ids)}",
            done=False,
        )

    def _finish(self, job: FakeJob) -> None:
        if self.job_failure:
            job.status, job.failure_reason = "FAILED", self.job_failure
            return
        members = self.user_lists[job.user_list].members
        for kind, *identifiers in job.operations:
            job.applied += 1
            if kind == "remove_all":
                members.clear()
            elif kind == "create":
                members.update(identifiers[0])
            else:
                members.difference_update(identifiers[0])
        job.status = "SUCCESS"

    # GoogleAdsService.Search -------------------------------------------------------------------

    def _search(self, request):
        query = " ".join(request.query.split())
        row = google_ads_service.GoogleAdsRow()
        if query.startswith("SELECT customer.id, customer.descriptive_name FROM customer"):
            row.customer.resource_name = f"customers/{request.customer_id}"
            row.customer.id = int(request.customer_id)
            row.customer.descriptive_name = self.customers[request.customer_id]
            return google_ads_service.SearchGoogleAdsResponse(results=[row])
        if match := JOB_QUERY.search(query):
            job = self.jobs.get(match.group(1))
            if job is None:
                return google_ads_service.SearchGoogleAdsResponse()
            if job.status == "RUNNING":
                if job.polls_left:
                    job.polls_left -= 1
                else:
                    self._finish(job)
            row.offline_user_data_job = offline_user_data_job.OfflineUserDataJob(
                resource_name=job.resource_name,
                status=Status[job.status],
                failure_reason=FailureReason[job.failure_reason],
            )
            return google_ads_service.SearchGoogleAdsResponse(results=[row])
        if match := LIST_QUERY.search(query):
            name = re.sub(r"\\(.)", r"\1", match.group(1))
            rows = []
            for user_list in self.user_lists.values():
                if user_list.name == name and user_list.resource_name.startswith(
                    f"customers/{request.customer_id}/"
                ):
                    found = google_ads_service.GoogleAdsRow()
                    found.user_list.resource_name = user_list.resource_name
                    found.user_list.name = user_list.name
                    rows.append(found)
            return google_ads_service.SearchGoogleAdsResponse(results=rows)
        raise _invalid("query_error", "QUERY_ERROR", f"fake: no answer for query {query!r}")

    # UserListService ---------------------------------------------------------------------------

    def _mutate_user_lists(self, request):
        results = []
        for operation in request.operations:
            user_list = operation.create
            if any(existing.name == user_list.name for existing in self.user_lists.values()):
                raise _invalid(
                    "user_list_error", "NAME_ALREADY_USED", "Name is already being used."
                )
            crm = user_list.crm_based_user_list
            name = self._new_list(
                request.customer_id,
                user_list.name,
                crm.upload_key_type.name,
                crm.data_source_type.name,
                user_list.membership_life_span,
            )
            results.append(user_list_service.MutateUserListResult(resource_name=name))
        return user_list_service.MutateUserListsResponse(results=results)

    def _new_list(self, customer_id, name, upload_key_type, data_source_type, life_span) -> str:
        resource_name = f"customers/{customer_id}/userLists/{next(self._ids)}"
        self.user_lists[resource_name] = FakeList(
            resource_name, name, upload_key_type, data_source_type, life_span
        )
        return resource_name


def _customer_of(resource_name: str) -> str:
    return resource_name.split("/")[1] if resource_name.startswith("customers/") else ""


def _invalid(field_name: str, code: str, message: str = "", *, at=None) -> Refused:
    return Refused(grpc.StatusCode.INVALID_ARGUMENT, [(field_name, code, message or code)], at=at)


def _operation_problem(operation) -> tuple[str, str, str] | None:
    """(field path, OfflineUserDataJobError name, message) for an operation Google refuses."""
    if operation.remove_all:
        return None
    kind = "create" if "create" in operation else "remove"
    user_data = getattr(operation, kind)
    if "consent" in user_data:
        return (kind, "OPERATION_LEVEL_CONSENT_PROVIDED", "Consent is set at the job level.")
    identifiers = list(user_data.user_identifiers)
    if not identifiers:
        return (kind, "MISSING_USER_IDENTIFIER", "Missing user identifier.")
    if len(identifiers) > MAX_IDENTIFIERS:
        return (kind, "TOO_MANY_USER_IDENTIFIERS", "Too many user identifiers.")
    for identifier in identifiers:
        for name in HASHED_FIELDS:
            value = getattr(identifier, name)
            if name in identifier and not SHA256.match(value):
                return (kind, "INVALID_SHA256_FORMAT", "The SHA256 encoded value is malformed.")
    return None


def _operation_key(operation) -> tuple:
    if operation.remove_all:
        return ("remove_all",)
    kind = "create" if "create" in operation else "remove"
    identifiers = frozenset(
        (name, getattr(identifier, name))
        for identifier in getattr(operation, kind).user_identifiers
        for name in HASHED_FIELDS
        if name in identifier
    )
    return (kind, identifiers)


def _failure(errors, retry_delay=None) -> ads_errors.GoogleAdsFailure:
    """`errors`: (operation index or None, field after it, ErrorCode field, name, message)."""
    failure = ads_errors.GoogleAdsFailure()
    for index, path, field_name, code, message in errors:
        error = ads_errors.GoogleAdsError(message=message)
        setattr(error.error_code, field_name, code)
        if retry_delay is not None:
            error.details.quota_error_details.retry_delay = timedelta(seconds=retry_delay)
        if index is not None:
            elements = [
                ads_errors.ErrorLocation.FieldPathElement(field_name="operations", index=index)
            ]
            if path:
                elements.append(ads_errors.ErrorLocation.FieldPathElement(field_name=path))
            error.location.field_path_elements.extend(elements)
        failure.errors.append(error)
    return failure


def _partial_failure(errors) -> status_pb2.Status:
    failure = _failure(
        [
            (index, path, "offline_user_data_job_error", code, message)
            for index, path, code, message in errors
        ]
    )
    detail = any_pb2.Any(
        type_url="type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
        value=ads_errors.GoogleAdsFailure.serialize(failure),
    )
    message = f"{errors[0][3]}, at operations[{errors[0][0]}]"
    return status_pb2.Status(
        code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message=message, details=[detail]
    )


def _abort(context, refused: Refused):
    if refused.errors:
        failure = _failure(
            [
                (refused.at, "", field_name, code, message)
                for field_name, code, message in refused.errors
            ],
            refused.retry_delay,
        )
        context.set_trailing_metadata(
            (
                (FAILURE_KEY, ads_errors.GoogleAdsFailure.serialize(failure)),
                ("request-id", "fake-request"),
            )
        )
    context.abort(refused.code, str(refused))


class GoogleOAuthFake(FakeServer):
    """Google's OAuth token endpoint for the installed-app flow: a refresh token in
    `refresh_tokens` (with its client id and secret) gets the access token mapped to it; any
    other is `invalid_grant`, as Google answers a revoked or expired one."""

    name = "google-oauth"

    def __init__(self):
        super().__init__()
        self.refresh_tokens: dict[str, str] = {}
        self.client = ("client-1.apps.googleusercontent.com", "client-secret-1")

    def reset(self) -> None:
        super().reset()
        self.refresh_tokens.clear()

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def route(self, request: RecordedRequest) -> Answer:
        if request.path != "/token" or request.method != "POST":
            return super().route(request)
        form = {name: values[0] for name, values in (request.form or {}).items()}
        if (form.get("client_id"), form.get("client_secret")) != self.client:
            return Answer(401, {"error": "invalid_client", "error_description": "Unauthorized"})
        token = self.refresh_tokens.get(form.get("refresh_token", ""))
        if form.get("grant_type") != "refresh_token" or token is None:
            return Answer(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
            )
        return Answer(
            200,
            {
                "access_token": token,
                "expires_in": 3599,
                "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/adwords",
            },
        )


@pytest.fixture(scope="session")
def google_oauth_server():
    fake = GoogleOAuthFake().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def google_oauth_fake(google_oauth_server, settings):
    google_oauth_server.reset()
    settings.MASIVO_GOOGLE_TOKEN_URL = google_oauth_server.token_url
    return google_oauth_server


@pytest.fixture(scope="session")
def google_ads_server():
    fake = GoogleAdsFake().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def google_ads_fake(google_ads_server, settings):
    """The fake, reset, with the connector's settings pointing at it (plaintext, loopback)."""
    google_ads_server.reset()
    settings.MASIVO_GOOGLE_ADS_ENDPOINT = google_ads_server.endpoint
    settings.MASIVO_GOOGLE_ADS_INSECURE = True
    return google_ads_server
