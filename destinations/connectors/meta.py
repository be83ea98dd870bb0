"""Meta Custom Audiences through the Graph API (facebook-business), and the Graph plumbing the
Conversions API connector (`meta_capi`) shares: the API object, one call, error mapping.

Each connector instance builds its own `FacebookAdsApi` over its own `FacebookSession` instead
of `FacebookAdsApi.init`: `init` sets a process-wide default API (two destinations in one
worker would share a token) and, unless told `crash_log=False`, installs a crash reporter that
posts tracebacks to Meta; constructing the objects directly does neither. The Graph root
(`settings.MASIVO_META_GRAPH_URL`, the fake in tests) is set as `GRAPH` on that session
instance, which `FacebookAdsApi.call` reads, so the class attribute stays untouched.

Calls go through `FacebookAdsApi.call` rather than the generated objects (`CustomAudience
.create_user`…) because its `FacebookResponse` keeps the HTTP status: the SDK counts any
non-JSON body as success, so a 502 page from a proxy would otherwise look like a sent batch.
See docs/destinations/meta.md.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import requests
from django.conf import settings
from facebook_business.adobjects.customaudience import CustomAudience
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession
from rest_framework import serializers

from destinations.connectors.base import (
    AUDIENCES,
    REPLACE,
    BatchRejected,
    BatchResult,
    Connector,
    ConnectorError,
    DestinationBroken,
    Member,
    RerunNeeded,
    RetryLater,
    Session,
)
from destinations.identifiers import Identifier
from destinations.models import DestinationKind
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField

DEFAULT_API_VERSION = FacebookAdsApi.API_VERSION  # "v26.0" in facebook-business 26.0.3
REQUEST_TIMEOUT = 60  # seconds; a 10,000-row upload is about 1 MB

# Error codes (https://developers.facebook.com/docs/graph-api/guides/error-handling and the
# Marketing API rate-limiting page).
THROTTLING_CODES = frozenset({4, 17, 32, 613, 80003})
TRANSIENT_CODES = frozenset({1, 2})  # "unknown error" / "service temporarily unavailable"
AUDIENCE_UPDATE_ERROR = 2650
UPDATE_IN_PROGRESS = 1870145
SESSION_TIMED_OUT = 1870158
OAUTH_ERROR = 190
PERMISSION_CODES = frozenset({10, *range(200, 300)})

# Our identifiers → Meta's multi-key schema, in the column order every payload uses.
SCHEMA: dict[str, str] = {
    Identifier.EMAIL: CustomAudience.Schema.MultiKeySchema.email,
    Identifier.PHONE: CustomAudience.Schema.MultiKeySchema.phone,
    Identifier.FIRST_NAME: CustomAudience.Schema.MultiKeySchema.fn,
    Identifier.LAST_NAME: CustomAudience.Schema.MultiKeySchema.ln,
    Identifier.COUNTRY: CustomAudience.Schema.MultiKeySchema.country,
    Identifier.EXTERNAL_ID: CustomAudience.Schema.MultiKeySchema.extern_id,
    Identifier.MADID: CustomAudience.Schema.MultiKeySchema.madid,
}

_API_VERSION = re.compile(r"^v[0-9]+\.[0-9]+$")
ID_DIGITS = re.compile(r"^[0-9]+$")


# Graph plumbing (shared with meta_capi) ----------------------------------------------------------


def graph_api(*, access_token: str, app_secret: str | None, api_version: str) -> FacebookAdsApi:
    """An API object of this destination's own: its token, its `appsecret_proof` (the session
    adds it to every request when an app secret is given), Graph at the configured root."""
    session = FacebookSession(
        access_token=access_token, app_secret=app_secret or None, timeout=REQUEST_TIMEOUT
    )
    session.GRAPH = settings.MASIVO_META_GRAPH_URL.rstrip("/")
    return FacebookAdsApi(session, api_version=api_version)


def graph_call(
    api: FacebookAdsApi, method: str, path: tuple[str, ...], params: dict | None = None
) -> dict[str, Any]:
    """One Graph request; the JSON answer, or the ConnectorError it amounts to."""
    try:
        response = api.call(method, path, params=params)
    except FacebookRequestError as error:
        raise graph_error(error) from None
    except requests.RequestException as error:
        raise RetryLater(f"Meta could not be reached: {type(error).__name__}") from None
    status = response.status()
    body = response.json()
    if status >= 400 or not isinstance(body, dict):
        raise _status_error(status, response.headers())
    return body


def graph_error(error: FacebookRequestError) -> ConnectorError:
    """Graph's JSON `error` (code, subcode) as one of our errors. Meta answers throttling and
    most refusals with HTTP 400, so the code decides, and the status only when there is none."""
    code, subcode = error.api_error_code(), error.api_error_subcode()
    status = error.http_status() or 0
    message = f"Meta error {code}" + (f"/{subcode}" if subcode else "")
    message += f": {error.api_error_message() or 'no message'}"
    if code is None:
        return _status_error(status, error.http_headers())
    if code in THROTTLING_CODES:
        return RetryLater(message, retry_after=retry_hint(error.http_headers()), code=code)
    if code == AUDIENCE_UPDATE_ERROR and subcode == UPDATE_IN_PROGRESS:
        return RetryLater(message, code=f"{code}/{subcode}")
    if code == AUDIENCE_UPDATE_ERROR and subcode == SESSION_TIMED_OUT:
        return RerunNeeded(message, code=f"{code}/{subcode}")
    if code == OAUTH_ERROR or code in PERMISSION_CODES:
        return DestinationBroken(message, code=code)
    if status >= 500 or code in TRANSIENT_CODES or error.api_transient_error():
        return RetryLater(message, retry_after=retry_hint(error.http_headers()), code=code)
    return BatchRejected(message, code=code)


def _status_error(status: int, headers) -> ConnectorError:
    message = f"Meta answered HTTP {status} without a Graph error"
    if status == 429 or status >= 500 or status < 400:
        return RetryLater(message, retry_after=retry_hint(headers), code=status)
    if status in (401, 403):
        return DestinationBroken(message, code=status)
    return BatchRejected(message, code=status)


def retry_hint(headers) -> float | None:
    """Seconds to wait, from `Retry-After` or the largest `estimated_time_to_regain_access`
    (minutes) in `X-Business-Use-Case-Usage` / `X-Ad-Account-Usage`'s `reset_time_duration`
    (seconds); None when Meta gave no hint."""
    headers = {str(name).lower(): value for name, value in (headers or {}).items()}
    hints: list[float] = []
    with contextlib.suppress(KeyError, ValueError):
        hints.append(float(headers["retry-after"]))
    usage = _json_header(headers.get("x-business-use-case-usage"))
    for entries in usage.values() if isinstance(usage, dict) else ():
        for entry in entries if isinstance(entries, list) else ():
            minutes = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else 0
            if isinstance(minutes, int | float) and minutes > 0:
                hints.append(minutes * 60.0)
    account = _json_header(headers.get("x-ad-account-usage"))
    reset = account.get("reset_time_duration") if isinstance(account, dict) else None
    if isinstance(reset, int | float) and reset > 0:
        hints.append(float(reset))
    return max(hints) if hints else None


def _json_header(value: str | None) -> Any:
    try:
        return json.loads(value) if value else None
    except ValueError:
        return None


class GraphCredentials(RefusesUnknownFields):
    access_token = StrictCharField()
    app_secret = StrictCharField(required=False, allow_blank=True)


def validate_api_version(value: str) -> str:
    if not _API_VERSION.match(value):
        raise serializers.ValidationError('must look like "v26.0"')
    return value


class GraphConnector(Connector):
    """What both Meta connectors share: credentials and the API object."""

    credentials_serializer = GraphCredentials
    platform = "meta"
    _api: FacebookAdsApi | None = None

    @property
    def api(self) -> FacebookAdsApi:
        if self._api is None:
            self._api = graph_api(
                access_token=self.credentials.get("access_token", ""),
                app_secret=self.credentials.get("app_secret"),
                api_version=self.config.get("api_version") or DEFAULT_API_VERSION,
            )
        return self._api


# Custom Audiences --------------------------------------------------------------------------------


class MetaConfig(RefusesUnknownFields):
    ad_account_id = StrictCharField(help_text='The ad account id, with or without "act_"')
    api_version = StrictCharField(required=False, default=DEFAULT_API_VERSION)

    def validate_ad_account_id(self, value: str) -> str:
        digits = value.strip().removeprefix("act_")
        if not ID_DIGITS.match(digits):
            raise serializers.ValidationError('must be digits, optionally after "act_"')
        return digits

    def validate_api_version(self, value: str) -> str:
        return validate_api_version(value)


class MetaConnector(GraphConnector):
    kind = DestinationKind.META
    label = "Meta Custom Audiences"
    summary = "Keeps a customer-list custom audience in a Meta ad account, hashed identifiers only."
    docs_anchor = "meta"
    capabilities = frozenset({AUDIENCES, REPLACE})
    default_identifiers = (Identifier.EMAIL.value, Identifier.PHONE.value)
    batch_size = 10_000
    # A DELETE carries its payload in the URL, which Meta's front ends cut off at a few hundred
    # rows (docs/destinations/meta.md): removal batches are meant to be this small.
    remove_batch_size = 100
    config_serializer = MetaConfig

    @property
    def account(self) -> str:
        return "act_" + str(self.config.get("ad_account_id", "")).removeprefix("act_")

    def test_connection(self) -> str:
        body = graph_call(self.api, "GET", (self.account,), {"fields": "name"})
        return f"Connected to ad account {body.get('name', '')!r} ({self.account})."

    def audience_create(self, name: str) -> str:
        body = graph_call(
            self.api,
            "POST",
            (self.account, "customaudiences"),
            {
                CustomAudience.Field.name: name,
                CustomAudience.Field.subtype: CustomAudience.Subtype.custom,
                CustomAudience.Field.customer_file_source: (
                    CustomAudience.CustomerFileSource.user_provided_only
                ),
                CustomAudience.Field.description: "Kept in sync by Masivo",
            },
        )
        return str(body["id"])

    def members_add(
        self, remote_id: str, members: list[Member], *, session: Session
    ) -> BatchResult:
        return self._send("POST", (remote_id, "users"), members, session, last=False)

    def members_remove(
        self, remote_id: str, members: list[Member], *, session: Session
    ) -> BatchResult:
        return self._send("DELETE", (remote_id, "users"), members, session, last=False)

    def replace_batch(
        self, remote_id: str, members: list[Member], *, session: Session, last: bool
    ) -> BatchResult:
        return self._send("POST", (remote_id, "usersreplace"), members, session, last=last)

    def _send(self, method, path, members, session: Session, *, last: bool) -> BatchResult:
        schema, rows, sent, failed = audience_payload(members)
        if not rows and not last:
            return BatchResult(failed=failed)
        params = {
            "payload": {"schema": schema, "data": rows},
            "session": {
                "session_id": session.session_id,
                "batch_seq": session.batch_seq,
                "last_batch_flag": last,
                "estimated_num_total": session.estimated_total,
            },
        }
        body = graph_call(self.api, method, path, params)
        failed.update(invalid_entries(body, sent))
        return BatchResult(failed=failed)


def audience_payload(
    members: list[Member],
) -> tuple[list[str], list[list[str]], list[Member], dict[int, str]]:
    """The batch as Meta's multi-key format: `schema` holds the identifiers any member has (in
    SCHEMA order), each row one member's values in that order with "" where one is missing.
    Members with none of Meta's identifiers are not sent and come back as failed."""
    present = {name for member in members for name, value in member.identifiers.items() if value}
    columns = [name for name in SCHEMA if name in present]
    rows, sent, failed = [], [], {}
    for member in members:
        row = [member.identifiers.get(name) or "" for name in columns]
        if any(row):
            rows.append(row)
            sent.append(member)
        else:
            failed[member.customer_id] = "no identifiers Meta takes"
    return [SCHEMA[name] for name in columns] or [SCHEMA[Identifier.EMAIL]], rows, sent, failed


def invalid_entries(body: dict, sent: list[Member]) -> dict[int, str]:
    """Members named by Meta's `invalid_entry_samples` (a sample only: `num_invalid_entries`
    may be larger, and the rest cannot be told apart). A sample is matched by any of the
    member's values; its reason is Meta's text where it gives one."""
    samples = body.get("invalid_entry_samples")
    if not body.get("num_invalid_entries") or not samples:
        return {}
    if isinstance(samples, dict):
        reasons = {str(key): str(value) for key, value in samples.items()}
    else:
        reasons = {
            str(sample): "invalid entry" for sample in samples if isinstance(sample, str | int)
        }
    failed = {}
    for member in sent:
        for value in member.identifiers.values():
            if value in reasons:
                failed[member.customer_id] = f"Meta: {reasons[value]}"
                break
    return failed
