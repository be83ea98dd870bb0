"""Google Analytics 4 through the Measurement Protocol: forwarded events, and audience entries
and exits as events.

GA4 only counts events for a browser it knows, so every request carries the customer's gtag
client id (the trait `config.client_id_trait`); a customer without one is skipped. A request
holds one customer's events (`client_id` and `user_id` are per request) and at most 25.
Collection always answers 2xx, even for data it drops, so names and values are made valid
here (GA4's naming rules, reserved names refused) and `/debug/mp/collect` checks the setup.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import requests
from django.utils import timezone
from rest_framework import serializers

from destinations.connectors.base import (
    EVENTS,
    MEMBERSHIPS,
    BatchRejected,
    Connector,
    ConnectorError,
    DestinationBroken,
    ForwardItem,
    ForwardResult,
    RetryLater,
)
from destinations.connectors.http import checked_base_url
from destinations.models import DestinationKind
from masivo.outbound import UnsafeURL, outbound_session
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField

DEFAULT_BASE_URL = "https://www.google-analytics.com"
TIMEOUT = (5, 30)
EVENTS_PER_REQUEST = 25
PARAMS_PER_EVENT = 25
NAME_LENGTH = 40
VALUE_LENGTH = 100
ITEMS_PER_EVENT = 25
MAX_AGE = timedelta(hours=72)

RESERVED_EVENT_NAMES = frozenset(
    {
        "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
        "adunit_exposure", "app_background", "app_clear_data", "app_exception", "app_remove",
        "app_store_refund", "app_store_subscription_cancel", "app_store_subscription_convert",
        "app_store_subscription_renew", "app_update", "app_upgrade", "click", "error",
        "file_download", "first_open", "first_visit", "form_start", "form_submit",
        "in_app_purchase", "os_update", "page_view", "screen_view", "scroll", "session_start",
        "user_engagement", "video_complete", "video_progress", "video_start", "view_complete",
        "view_search_results",
    }
)  # fmt: skip
RESERVED_EVENT_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.", "dynamic_link_",
                           "notification_")  # fmt: skip
RESERVED_PARAM_NAMES = frozenset({"engagement_time_msec", "gclid", "session_id", "session_number"})
RESERVED_PARAM_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")

# Segment's e-commerce names → GA4's recommended ones (editable per destination).
DEFAULT_EVENT_NAMES = {
    "Order Completed": "purchase",
    "Order Refunded": "refund",
    "Product Added": "add_to_cart",
    "Product Removed": "remove_from_cart",
    "Product Added to Wishlist": "add_to_wishlist",
    "Product Viewed": "view_item",
    "Product List Viewed": "view_item_list",
    "Cart Viewed": "view_cart",
    "Checkout Started": "begin_checkout",
    "Payment Info Entered": "add_payment_info",
    "Products Searched": "search",
    "Signed Up": "sign_up",
    "Signed In": "login",
}
PARAM_RENAMES = {"order_id": "transaction_id", "revenue": "value", "products": "items"}
ITEM_FIELDS = {
    "product_id": "item_id",
    "sku": "item_id",
    "name": "item_name",
    "brand": "item_brand",
    "category": "item_category",
    "variant": "item_variant",
    "coupon": "coupon",
    "price": "price",
    "quantity": "quantity",
}

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]+")
_VALID_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


def ga4_name(text: str) -> str:
    """A name under GA4's rules: letters, digits and `_` (anything else becomes one `_`),
    lower case, starting with a letter, at most 40 characters. "" when nothing is left."""
    name = _NOT_NAME.sub("_", text.strip()).strip("_").lower()
    name = re.sub(r"^[^a-z]+", "", name)
    return name[:NAME_LENGTH].rstrip("_")


def event_name_refusal(name: str) -> str | None:
    """Why GA4 would refuse `name` as an event name (None: it takes it)."""
    if not _VALID_NAME.match(name):
        return "not a valid GA4 event name"
    if name in RESERVED_EVENT_NAMES or name.startswith(RESERVED_EVENT_PREFIXES):
        return f"reserved event name {name}"
    return None


def _param_name(text: str) -> str | None:
    if str(text).startswith(RESERVED_PARAM_PREFIXES):
        return None
    name = ga4_name(str(text))
    if not name or name in RESERVED_PARAM_NAMES or name.startswith(RESERVED_PARAM_PREFIXES):
        return None
    return name


def _param_value(value):
    """Strings (at most 100 characters) and numbers; booleans as "true"/"false"; anything
    else (null, objects, lists) is left out."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        return value[:VALUE_LENGTH]
    return None


def ga4_params(properties: dict[str, Any]) -> dict[str, Any]:
    """Event properties as GA4 params: renamed to GA4's e-commerce names, sanitised, reserved
    names and unsupported values left out, at most 25 (the first ones)."""
    params: dict[str, Any] = {}
    for key, value in properties.items():
        if len(params) == PARAMS_PER_EVENT:
            break
        name = PARAM_RENAMES.get(key) or _param_name(key)
        if name is None or name in params:
            continue
        converted = _items(value) if name == "items" else _param_value(value)
        if converted is not None:
            params[name] = converted
    return params


def _items(products) -> list[dict[str, Any]] | None:
    if not isinstance(products, list):
        return None
    items = []
    for product in products[:ITEMS_PER_EVENT]:
        if not isinstance(product, dict):
            continue
        item = {}
        for ours, theirs in ITEM_FIELDS.items():
            value = _param_value(product.get(ours))
            if value is not None and theirs not in item:
                item[theirs] = value
        if item:
            items.append(item)
    return items or None


def _validate_event_names(value: dict[str, str]) -> dict[str, str]:
    errors = {
        ours: reason
        for ours, theirs in value.items()
        if (reason := event_name_refusal(theirs)) is not None
    }
    if errors:
        raise serializers.ValidationError(
            [f"{ours}: {reason}" for ours, reason in sorted(errors.items())]
        )
    return value


class GA4Credentials(RefusesUnknownFields):
    api_secret = StrictCharField(
        help_text="Admin → Data streams → Measurement Protocol API secrets"
    )


class GA4Config(RefusesUnknownFields):
    measurement_id = serializers.RegexField(
        r"^G-[A-Z0-9]{4,20}$", max_length=30, error_messages={"invalid": "must look like G-XXXX"}
    )
    base_url = StrictCharField(required=False, default=DEFAULT_BASE_URL, max_length=500)
    client_id_trait = StrictCharField(
        required=False,
        default="ga_client_id",
        max_length=100,
        help_text="The trait holding the customer's gtag client id (from the _ga cookie)",
    )
    event_names = serializers.DictField(
        child=StrictCharField(max_length=NAME_LENGTH),
        required=False,
        default=lambda: dict(DEFAULT_EVENT_NAMES),
        help_text="Workspace event name → GA4 event name; others are converted to snake_case",
    )

    def validate_base_url(self, value: str) -> str:
        return checked_base_url(value, DEFAULT_BASE_URL)

    def validate_event_names(self, value: dict[str, str]) -> dict[str, str]:
        return _validate_event_names(value)


class GA4Connector(Connector):
    kind = DestinationKind.GA4
    label = "Google Analytics 4"
    summary = "Sends events and audience entries and exits to a GA4 web data stream."
    docs_anchor = "ga4"
    capabilities = frozenset({EVENTS, MEMBERSHIPS})
    platform = "plain"
    default_identifiers = ("external_id",)
    # Google's consent mode ties Measurement Protocol data to ad_user_data: advertising.
    consent_purpose = "advertising"
    batch_size = 100
    config_serializer = GA4Config
    credentials_serializer = GA4Credentials

    def __init__(self, destination):
        super().__init__(destination)
        self._http: requests.Session | None = None

    @classmethod
    def required_traits(cls, config: dict) -> list[str]:
        """Traits every item needs whatever the forwarding settings list: the client id."""
        return [config.get("client_id_trait") or "ga_client_id"]

    # Sending -----------------------------------------------------------------------------------

    def test_connection(self) -> str:
        """A sample event to `/debug/mp/collect`, which validates and records nothing. It does
        not check the API secret (Google's validation server ignores it)."""
        body = {
            "client_id": "masivo.connection-test",
            "events": [{"name": "masivo_connection_test", "params": {"source": "masivo"}}],
        }
        answer = self._post("/debug/mp/collect", body)
        messages = answer.get("validationMessages") or []
        if messages:
            raise ConnectorError(
                "GA4 refused the sample event: " + "; ".join(_describe(m) for m in messages)
            )
        return f"GA4 accepted a sample event for {self.config.get('measurement_id', '')}"

    def forward(self, items: list[ForwardItem]) -> ForwardResult:
        now = timezone.now()
        result = ForwardResult()
        requests_by_customer: dict[tuple, dict[str, Any]] = {}
        for item in items:
            event, reason = self._event_of(item, now)
            if reason:
                result.skipped[item.dedupe_id] = reason
                continue
            envelope = self._envelope(item)
            key = (envelope["client_id"], envelope.get("user_id"), repr(envelope.get("consent")))
            requests_by_customer.setdefault(key, {**envelope, "events": []})["events"].append(event)
        for envelope in requests_by_customer.values():
            events = envelope.pop("events")
            for start in range(0, len(events), EVENTS_PER_REQUEST):
                chunk = events[start : start + EVENTS_PER_REQUEST]
                # Each event carries its own time (it overrides the request's); the request's
                # is the first event's.
                body = {**envelope, "timestamp_micros": chunk[0]["timestamp_micros"]}
                self._post("/mp/collect", {**body, "events": chunk})
                result.sent += len(chunk)
        return result

    # Building ----------------------------------------------------------------------------------

    def _event_of(self, item: ForwardItem, now: datetime) -> tuple[dict | None, str | None]:
        if not self._client_id(item):
            return None, "no client id"
        if item.occurred_at < now - MAX_AGE:
            return None, "older than 72 hours (GA4 takes events up to 72 hours back)"
        if item.type == "event" and item.event:
            name = self._event_name(item.event.get("name") or "")
            reason = event_name_refusal(name)
            if reason:
                return None, reason
            params = ga4_params(item.event.get("properties") or {})
        elif item.type == "membership" and item.audience:
            name = "audience_exited" if item.kind in ("exit", "exited") else "audience_entered"
            params = {
                "audience_name": str(item.audience.get("name") or "")[:VALUE_LENGTH],
                "audience_id": str(item.audience.get("id") or ""),
            }
        else:
            return None, f"{item.type} items are not sent to GA4"
        micros = int(item.occurred_at.timestamp() * 1_000_000)
        return {"name": name, "params": params, "timestamp_micros": micros}, None

    def _event_name(self, ours: str) -> str:
        names = self.config.get("event_names", DEFAULT_EVENT_NAMES)
        return names.get(ours) or ga4_name(ours)

    def _client_id(self, item: ForwardItem) -> str | None:
        customer = item.customer or {}
        trait = self.config.get("client_id_trait") or "ga_client_id"
        value = (customer.get("traits") or {}).get(trait) or customer.get(trait)
        return str(value) if isinstance(value, str | int) and value != "" else None

    def _envelope(self, item: ForwardItem) -> dict[str, Any]:
        """What a request says about the customer: client id, user id (our external id),
        consent (their advertising consent, when the item carries it)."""
        customer = item.customer or {}
        envelope: dict[str, Any] = {"client_id": self._client_id(item)}
        if customer.get("external_id"):
            envelope["user_id"] = str(customer["external_id"])
        status = _consent_status(customer.get("consent"))
        if status:
            envelope["consent"] = {"ad_user_data": status, "ad_personalization": status}
        return envelope

    # HTTP --------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return (self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    def _session(self) -> requests.Session:
        if self._http is None:
            is_default = self.base_url == DEFAULT_BASE_URL
            self._http = requests.Session() if is_default else outbound_session()
        return self._http

    def _post(self, path: str, body: dict) -> dict:
        params = {
            "measurement_id": self.config.get("measurement_id", ""),
            "api_secret": self.credentials.get("api_secret", ""),
        }
        try:
            response = self._session().post(
                f"{self.base_url}{path}", params=params, json=body, timeout=TIMEOUT
            )
        except UnsafeURL as error:
            raise DestinationBroken(f"GA4 base URL refused: {error}") from error
        except requests.RequestException as error:
            raise RetryLater(f"GA4 unreachable: {error}") from error
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = response.headers.get("Retry-After", "")
            raise RetryLater(
                f"GA4: HTTP {status}",
                retry_after=float(retry_after) if retry_after.isdigit() else None,
                code=status,
            )
        if status in (401, 403, 404):
            raise DestinationBroken(f"GA4: HTTP {status} for {path}", code=status)
        if status >= 300:
            raise BatchRejected(f"GA4: HTTP {status}", code=status)
        try:
            answer = response.json()
        except ValueError:
            return {}
        return answer if isinstance(answer, dict) else {}


def _consent_status(consent) -> str | None:
    """GRANTED / DENIED from a customer's advertising consent (`{"status": …}` or the bare
    status), None when not recorded."""
    if not isinstance(consent, dict):
        return None
    decision = consent.get("advertising")
    if isinstance(decision, dict):
        decision = decision.get("status")
    if decision in ("granted", True):
        return "GRANTED"
    if decision in ("denied", False):
        return "DENIED"
    return None


def _describe(message: dict) -> str:
    field = message.get("fieldPath") or "(request)"
    code = message.get("validationCode") or "INVALID"
    return f"{field}: {message.get('description') or 'invalid'} ({code})"
