"""TikTok audiences through the Marketing API v1.3 (no official Python SDK: plain HTTP).

TikTok answers 200 with `{"code": 0}` on success and a non-zero `code` on errors (HTTP
status errors too, from proxies and the gateway). `TikTokApi` turns both into our errors; the
events connector (`tiktok_events`) shares it. Audiences have no replace: a full sync sends
the whole difference against the record.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import requests
from rest_framework import serializers

from destinations.connectors.base import (
    AUDIENCES,
    BatchRejected,
    BatchResult,
    Connector,
    ConnectorError,
    DestinationBroken,
    Member,
    RetryLater,
    Session,
)
from destinations.connectors.http import checked_base_url
from destinations.models import DestinationKind
from masivo.outbound import UnsafeURL, outbound_session
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField

DEFAULT_BASE_URL = "https://business-api.tiktok.com/open_api/v1.3"
TIMEOUT = (5, 30)  # connect, read (seconds)

# Our identifier → TikTok's `id_schema` name, in the order a batch lists them. TikTok takes
# mobile advertising ids (IDFA and GAID alike) as IDFA_SHA256; an external id type is not in
# TikTok's public list of customer-file ids (docs/destinations/tiktok.md: unverified).
ID_SCHEMA = {
    "email": "EMAIL_SHA256",
    "phone": "PHONE_SHA256",
    "madid": "IDFA_SHA256",
    "external_id": "EXTERNAL_ID_SHA256",
}
ID_TYPES = ["EMAIL_SHA256", "PHONE_SHA256", "IDFA_SHA256", "GAID_SHA256", "AAID_SHA256"]


class TikTokCredentials(RefusesUnknownFields):
    access_token = StrictCharField(help_text="A Marketing API access token (header Access-Token)")


class TikTokConfig(RefusesUnknownFields):
    advertiser_id = StrictCharField(max_length=64)
    base_url = StrictCharField(required=False, default=DEFAULT_BASE_URL, max_length=500)
    id_type = serializers.ChoiceField(
        choices=ID_TYPES,
        required=False,
        default="EMAIL_SHA256",
        help_text="The id type of audiences Masivo creates",
    )
    batch_size = serializers.IntegerField(
        required=False,
        default=10_000,
        min_value=1,
        max_value=100_000,
        help_text="Users a mapping request (TikTok's limit is unverified; about 10,000)",
    )

    def validate_base_url(self, value: str) -> str:
        return checked_base_url(value, DEFAULT_BASE_URL)


class TikTokApi:
    """Requests to the Marketing API and how their answers map to our errors.

    The codes are class constants so a code TikTok turns out to use differently is a one-line
    change (the public lists disagree; see docs/destinations/tiktok.md)."""

    RATE_LIMIT_CODES: ClassVar[frozenset[int]] = frozenset({40100})
    SERVER_ERROR_CODES: ClassVar[frozenset[int]] = frozenset({50000, 50002})
    AUTH_CODES: ClassVar[frozenset[int]] = frozenset({40001, 40002, 40102, 40104, 40105})

    config: dict[str, Any]
    credentials: dict[str, Any]
    _http: requests.Session | None = None

    @property
    def base_url(self) -> str:
        return (self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    def _session(self) -> requests.Session:
        if self._http is None:
            is_default = self.base_url == DEFAULT_BASE_URL
            self._http = requests.Session() if is_default else outbound_session()
        return self._http

    def call(self, method: str, path: str, *, body=None, params=None) -> dict:
        """One request; returns TikTok's `data` or raises RetryLater, DestinationBroken or
        BatchRejected."""
        try:
            response = self._session().request(
                method,
                f"{self.base_url}{path}",
                json=body,
                params=params,
                headers={"Access-Token": self.credentials.get("access_token", "")},
                timeout=TIMEOUT,
            )
        except UnsafeURL as error:
            raise DestinationBroken(f"TikTok base URL refused: {error}") from error
        except requests.RequestException as error:
            raise RetryLater(f"TikTok unreachable: {error}") from error
        return self._answer(response)

    def _answer(self, response: requests.Response) -> dict:
        status = response.status_code
        if status == 429:
            raise RetryLater(
                "TikTok: HTTP 429 too many requests",
                retry_after=_retry_after(response),
                code=429,
            )
        if status >= 500:
            raise RetryLater(f"TikTok: HTTP {status}", code=status)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or "code" not in payload:
            if status in (401, 403):
                raise DestinationBroken(f"TikTok: HTTP {status}", code=status)
            raise BatchRejected(f"TikTok: HTTP {status}, unreadable answer", code=status)
        code, message = payload.get("code"), payload.get("message") or ""
        if code == 0 and status < 400:
            return payload.get("data") or {}
        detail = f"TikTok {code}: {message}".rstrip(": ")
        if code in self.RATE_LIMIT_CODES or code in self.SERVER_ERROR_CODES:
            raise RetryLater(detail, retry_after=_retry_after(response), code=code)
        if code in self.AUTH_CODES or status in (401, 403):
            raise DestinationBroken(detail, code=code)
        raise BatchRejected(detail, code=code)


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


class TikTokConnector(TikTokApi, Connector):
    kind = DestinationKind.TIKTOK
    label = "TikTok audiences"
    summary = "Keeps TikTok custom audiences in step with Masivo audiences (hashed identifiers)."
    docs_anchor = "tiktok"
    capabilities = frozenset({AUDIENCES})
    platform = "tiktok"
    default_identifiers = ("email", "phone")
    consent_purpose = "advertising"
    batch_size = 10_000
    config_serializer = TikTokConfig
    credentials_serializer = TikTokCredentials

    def __init__(self, destination):
        super().__init__(destination)
        self.batch_size = int(self.config.get("batch_size") or type(self).batch_size)

    def test_connection(self) -> str:
        advertiser_id = self.config.get("advertiser_id", "")
        data = self.call(
            "GET", "/advertiser/info/", params={"advertiser_ids": json.dumps([advertiser_id])}
        )
        advertisers = data.get("list") or []
        if not advertisers:
            raise ConnectorError(f"TikTok knows no advertiser {advertiser_id} for this token")
        name = advertisers[0].get("name") or "(no name)"
        return f"Advertiser {name} ({advertiser_id}) reachable"

    def audience_create(self, name: str) -> str:
        data = self.call(
            "POST",
            "/segment/audience/",
            body={
                "advertiser_id": self.config.get("advertiser_id", ""),
                "custom_audience_name": name,
                "id_type": self.config.get("id_type") or "EMAIL_SHA256",
                "action": "create",
            },
        )
        audience_id = data.get("audience_id")
        if not audience_id:
            raise BatchRejected("TikTok created no audience (no audience_id in the answer)")
        return str(audience_id)

    def members_add(
        self, remote_id: str, members: list[Member], *, session: Session
    ) -> BatchResult:
        return self._mapping("add", remote_id, members)

    def members_remove(
        self, remote_id: str, members: list[Member], *, session: Session
    ) -> BatchResult:
        return self._mapping("delete", remote_id, members)

    def _mapping(self, action: str, remote_id: str, members: list[Member]) -> BatchResult:
        """One `/segment/mapping/` request: one inner list per user, positional against
        `id_schema`, `{}` where the user lacks that identifier. Users with none of them are
        not sent and come back failed."""
        schema = [name for name in ID_SCHEMA if any(name in m.identifiers for m in members)]
        result = BatchResult()
        batch_data = []
        for member in members:
            if not any(name in member.identifiers for name in schema):
                result.failed[member.customer_id] = "no identifier TikTok takes"
                continue
            batch_data.append(
                [
                    {"id": member.identifiers[name], "audience_ids": [remote_id]}
                    if name in member.identifiers
                    else {}
                    for name in schema
                ]
            )
        if batch_data:
            self.call(
                "POST",
                "/segment/mapping/",
                body={
                    "advertiser_ids": [self.config.get("advertiser_id", "")],
                    "action": action,
                    "id_schema": [ID_SCHEMA[name] for name in schema],
                    "batch_data": batch_data,
                },
            )
        return result
