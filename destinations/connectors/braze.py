"""Braze: audience membership, profiles and events over its REST API (docs/destinations/braze.md).

Plain HTTP to the workspace's cluster URL (user-given, so every request goes through
`masivo.outbound`). Everything is `POST /users/track` except erasure (`POST /users/delete`):
- an audience is ONE boolean custom attribute per audience (`masivo_audience_<slug>`): true
  while a member, null (removed) after; no array attribute, whose 25-element cap would bound how
  many audiences a person can be in;
- profiles become attribute objects, events become event objects, orders become either
  `ecommerce.order_placed` events (the default: Braze's legacy purchase object is in
  maintenance mode) or legacy purchase objects;
- at most 75 objects a request (attributes, events and purchases together).

Every object names the person by `external_id`, derived by `braze_external_id` the same way for
memberships, forwarding and erasure.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.utils.text import slugify
from rest_framework import serializers

from destinations.connectors.base import (
    AUDIENCES,
    DELETION,
    EVENTS,
    MEMBERSHIPS,
    PROFILES,
    BatchRejected,
    BatchResult,
    Connector,
    ConnectorError,
    DestinationBroken,
    ErasedCustomer,
    ForwardItem,
    ForwardResult,
    Member,
    RetryLater,
    Session,
)
from destinations.models import DestinationKind
from masivo.outbound import UnsafeURL, is_allowlisted, outbound_session, url_check
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField

logger = logging.getLogger(__name__)

OBJECTS_PER_REQUEST = 75
IDS_PER_DELETE = 50
ATTRIBUTE_NAME_LIMIT = 255
REQUEST_TIMEOUT = 30

SOURCE_CUSTOMER_ID = "customer_id"
SOURCE_EXTERNAL_ID = "external_id"
CUSTOMER_ID_PREFIX = "masivo-"

PURCHASE_ECOMMERCE = "ecommerce.order_placed"
PURCHASE_LEGACY = "purchases"

DEFAULT_PREFIX = "masivo_audience_"
DEFAULT_PURCHASE_EVENTS = ["Order Completed"]
DEDUPE_PROPERTY = "masivo_dedupe_id"
ECOMMERCE_SOURCE = "masivo"
DEFAULT_CURRENCY = "USD"  # Segment's "Order Completed" spec: currency defaults to USD

# The profile fields that are Braze standard attributes (same name on both sides).
STANDARD_ATTRIBUTES = ("email", "phone", "first_name", "last_name", "country")
# An order whose status (any of these properties) is one of these did not complete: not sent.
ORDER_STATUS_PROPERTIES = ("status", "order_status", "financial_status")
UNFULFILLED_STATUSES = frozenset(
    {"cancelled", "canceled", "refunded", "pending", "failed", "declined", "voided", "abandoned"}
)
# A profile that no longer exists here: erasure is `customers_erased`, not attributes.
GONE_PROFILE_KINDS = frozenset({"deleted", "erased", "merged_away"})
ENTER_KINDS = frozenset({"entered", "enter"})
EXIT_KINDS = frozenset({"exited", "exit"})
# A no-op `/users/track` write (an id no one has, `_update_existing_only`, no attribute).
CONNECTION_TEST_ID = "masivo-connection-test"


def braze_external_id(
    customer_id: int, external_id: str | None, source: str = SOURCE_CUSTOMER_ID
) -> str | None:
    """The `external_id` Braze knows a customer by, the same for every kind of request.

    `customer_id` (the default): "masivo-<our customer id>", stable for the life of the
    profile and never colliding with ids the workspace gave Braze itself. `external_id`: the
    customer's own external id (trimmed), to land on the profiles the workspace's apps already
    created; None when the customer has none (they are not sent: a fallback id would make a
    second profile the day they get one).
    """
    if source == SOURCE_EXTERNAL_ID:
        value = (external_id or "").strip()
        return value or None
    return f"{CUSTOMER_ID_PREFIX}{customer_id}"


def audience_attribute(prefix: str, name: str) -> str:
    """The boolean attribute for an audience: the prefix and the name as a slug with
    underscores; a name with no letters or digits gets a short hash of itself instead."""
    slug = slugify(name).replace("-", "_").strip("_")
    if not slug:
        slug = "audience_" + hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{prefix}{slug}"[:ATTRIBUTE_NAME_LIMIT]


# Config -----------------------------------------------------------------------------------------


class BrazeConfig(RefusesUnknownFields):
    cluster_url = StrictCharField(max_length=200)
    external_id_source = serializers.ChoiceField(
        choices=[SOURCE_CUSTOMER_ID, SOURCE_EXTERNAL_ID], default=SOURCE_CUSTOMER_ID
    )
    attribute_prefix = StrictCharField(max_length=100, default=DEFAULT_PREFIX)
    purchase_style = serializers.ChoiceField(
        choices=[PURCHASE_ECOMMERCE, PURCHASE_LEGACY], default=PURCHASE_ECOMMERCE
    )
    purchase_event_names = serializers.ListField(
        child=StrictCharField(max_length=200), default=DEFAULT_PURCHASE_EVENTS, max_length=50
    )
    traits = serializers.ListField(
        child=StrictCharField(max_length=ATTRIBUTE_NAME_LIMIT), default=list, max_length=200
    )

    def validate_cluster_url(self, value: str) -> str:
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.path or parts.query or parts.fragment:
            raise serializers.ValidationError(
                "must be the cluster's base URL only, like https://rest.iad-01.braze.com"
            )
        try:
            url_check(url)
        except UnsafeURL as error:
            raise serializers.ValidationError(str(error)) from error
        if parts.scheme.lower() != "https" and not is_allowlisted(parts.hostname or ""):
            raise serializers.ValidationError("must be an https URL (the API key goes with it)")
        return url

    def validate_attribute_prefix(self, value: str) -> str:
        if value.startswith("$"):
            raise serializers.ValidationError("Braze attribute names may not start with $")
        return value

    def validate_traits(self, value: list[str]) -> list[str]:
        if any(not name or name.startswith("$") for name in value):
            raise serializers.ValidationError("trait names are non-empty and do not start with $")
        return value


class BrazeCredentials(RefusesUnknownFields):
    api_key = StrictCharField(max_length=200, trim_whitespace=True)


# The connector ----------------------------------------------------------------------------------


class BrazeConnector(Connector):
    kind = DestinationKind.BRAZE
    label = "Braze"
    summary = (
        "Keeps audience membership as a boolean attribute per audience on Braze profiles, and "
        "forwards profile attributes, events and orders."
    )
    docs_anchor = "braze"
    capabilities = frozenset({AUDIENCES, EVENTS, PROFILES, MEMBERSHIPS, DELETION})
    platform = "plain"
    default_identifiers = ("external_id", "email", "phone")
    # Braze messages people, but what may be sent there is the vendor decision for this
    # destination's key; each Braze campaign then applies its own subscription state.
    consent_purpose = None
    batch_size = OBJECTS_PER_REQUEST
    requests_per_second = 50
    config_serializer = BrazeConfig
    credentials_serializer = BrazeCredentials

    def __init__(self, destination):
        super().__init__(destination)
        self._session: requests.Session | None = None

    # Settings ----------------------------------------------------------------------------------

    @property
    def _base_url(self) -> str:
        return str(self.config.get("cluster_url", "")).rstrip("/")

    @property
    def _source(self) -> str:
        return self.config.get("external_id_source") or SOURCE_CUSTOMER_ID

    @property
    def _prefix(self) -> str:
        return self.config.get("attribute_prefix") or DEFAULT_PREFIX

    @property
    def _purchase_names(self) -> set[str]:
        """Orders by event name, trimmed and case-folded ("order completed" is one too); an
        empty list sends every event as a custom event."""
        names = self.config.get("purchase_event_names", DEFAULT_PURCHASE_EVENTS)
        return {_folded(name) for name in names}

    def external_id_for(self, customer_id: int, external_id: str | None) -> str | None:
        return braze_external_id(customer_id, external_id, self._source)

    # Every connector ---------------------------------------------------------------------------

    def test_connection(self) -> str:
        body = {"attributes": [{"external_id": CONNECTION_TEST_ID, "_update_existing_only": True}]}
        try:
            self._post("/users/track", body)
        except ConnectorError as error:
            raise ConnectorError(str(error), code=error.code) from error
        return f"Braze accepted the API key at {self._base_url} (users.track)."

    # Audiences ---------------------------------------------------------------------------------

    def audience_create(self, name: str) -> str:
        """Nothing to create at Braze: the attribute appears with the first member."""
        return audience_attribute(self._prefix, name)

    def members_add(
        self, remote_id: str, members: list[Member], *, session: Session
    ) -> BatchResult:
        return self._members(remote_id, members, member=True)

    def members_remove(
        self, remote_id: str, members: list[Member], *, session: Session
    ) -> BatchResult:
        return self._members(remote_id, members, member=False)

    def _members(self, attribute: str, members: list[Member], *, member: bool) -> BatchResult:
        """Adds set the attribute true along with the sync's other identifiers (email, phone…
        as Braze's standard attributes); removes set it null and never create a profile."""
        result = BatchResult()
        objects, owners = [], []
        for one in members:
            external_id = self.external_id_for(one.customer_id, one.identifiers.get("external_id"))
            if external_id is None:
                result.failed[one.customer_id] = "no external_id to identify them in Braze"
                continue
            payload: dict[str, Any] = {"external_id": external_id}
            if member:
                for name in STANDARD_ATTRIBUTES:
                    if one.identifiers.get(name):
                        payload[name] = one.identifiers[name]
                payload[attribute] = True
            else:
                payload[attribute] = None
                payload["_update_existing_only"] = True
            objects.append(("attributes", payload))
            owners.append(one.customer_id)
        for chunk in _chunks(list(zip(objects, owners, strict=True)), OBJECTS_PER_REQUEST):
            errors = self._track([obj for obj, _ in chunk])
            for position, reason in errors.items():
                result.failed[chunk[position][1]] = reason
        return result

    # Forwarding --------------------------------------------------------------------------------

    def forward(self, items: list[ForwardItem]) -> ForwardResult:
        """Items in order, 75 objects a request. Braze keeps every event object it accepts (it
        has no event id to dedupe on), so each event carries `masivo_dedupe_id`; a batch is
        one request unless legacy purchases spread an order over many objects."""
        result = ForwardResult()
        objects: list[tuple[tuple[str, dict], str]] = []
        for item in items:
            built = self._objects_for(item)
            if isinstance(built, str):
                result.skipped[item.dedupe_id] = built
                continue
            objects.extend((obj, item.dedupe_id) for obj in built)
        failed: dict[str, str] = {}
        for chunk in _chunks(objects, OBJECTS_PER_REQUEST):
            errors = self._track([obj for obj, _ in chunk])
            for position, reason in errors.items():
                failed.setdefault(chunk[position][1], reason)
        result.skipped.update(failed)
        sent_ids = {dedupe_id for _, dedupe_id in objects} - set(failed)
        result.sent = len(sent_ids)
        return result

    def _objects_for(self, item: ForwardItem) -> list[tuple[str, dict]] | str:
        """The request objects for one item, or why it is not sent."""
        if item.type == "profile" and (item.kind in GONE_PROFILE_KINDS or item.customer is None):
            return f"profile {item.kind or 'gone'}: not sent (erasure is /users/delete)"
        customer = item.customer or {}
        external_id = None
        if item.customer_id is not None:
            external_id = self.external_id_for(
                item.customer_id,
                item.identifiers.get("external_id") or customer.get("external_id"),
            )
        if external_id is None:
            return "no external_id to identify them in Braze"
        if item.type == "profile":
            return self._profile_objects(item, external_id)
        if item.type == "membership":
            return self._membership_objects(item, external_id)
        if item.type == "event":
            return self._event_objects(item, external_id)
        return f"not sent to Braze: item type {item.type!r}"

    def _profile_objects(self, item: ForwardItem, external_id: str) -> list | str:
        attributes = self._profile_attributes(item)
        if not attributes:
            return "no attribute Braze takes changed"
        return [("attributes", {"external_id": external_id, **attributes})]

    def _profile_attributes(self, item: ForwardItem) -> dict[str, Any]:
        """Standard fields and allowed traits; for an update, only the changed ones (Braze
        bills every attribute written). A field emptied by an update is null: Braze removes
        it."""
        customer = item.customer or {}
        traits = customer.get("traits") or {}
        changed = set(item.changed)
        only_changed = item.kind == "updated" and bool(changed)
        values: dict[str, Any] = {}
        for name in STANDARD_ATTRIBUTES:
            if only_changed and name not in changed:
                continue
            value = customer.get(name)
            if value not in ("", None):
                values[name] = value
            elif only_changed:
                values[name] = None
        for name in self.config.get("traits") or []:
            trait_changed = name in changed or f"traits.{name}" in changed or "traits" in changed
            if only_changed and not trait_changed:
                continue
            if name in traits:
                values[name] = traits[name]
            elif only_changed:
                values[name] = None
        return values

    def _membership_objects(self, item: ForwardItem, external_id: str) -> list | str:
        audience = item.audience or {}
        name = audience.get("name") or str(audience.get("id", ""))
        if not name:
            return "membership without an audience"
        attribute = audience_attribute(self._prefix, name)
        if item.kind in ENTER_KINDS:
            return [("attributes", {"external_id": external_id, attribute: True})]
        if item.kind in EXIT_KINDS:
            payload = {"external_id": external_id, attribute: None, "_update_existing_only": True}
            return [("attributes", payload)]
        return f"unknown membership change {item.kind!r}"

    def _event_objects(self, item: ForwardItem, external_id: str) -> list | str:
        event = item.event or {}
        name = event.get("name") or ""
        if not name:
            return "event without a name"
        properties = _braze_properties(event.get("properties") or {})
        when = _iso_time(item.occurred_at)
        if _folded(name) in self._purchase_names:
            refusal = _unfulfilled(properties)
            if refusal:
                return refusal
            if self.config.get("purchase_style") == PURCHASE_LEGACY:
                return _legacy_purchases(external_id, name, properties, when, item.dedupe_id)
            return _order_placed(external_id, properties, when, item.dedupe_id)
        properties[DEDUPE_PROPERTY] = item.dedupe_id
        return [
            ("events", {"external_id": external_id, "name": name, "time": when,
                        "properties": properties})
        ]  # fmt: skip

    # Deletion ----------------------------------------------------------------------------------

    def customers_erased(self, customers: list[ErasedCustomer]) -> None:
        """`/users/delete` by external id, 50 a request. Deleting someone Braze does not know
        is no error there, so a retry that repeats a chunk is harmless."""
        ids = [customer.remote_id for customer in customers if customer.remote_id]
        for chunk in _chunks(ids, IDS_PER_DELETE):
            self._post("/users/delete", {"external_ids": chunk})

    # HTTP --------------------------------------------------------------------------------------

    def _track(self, objects: list[tuple[str, dict]]) -> dict[int, str]:
        """One `/users/track` request; returns the refused objects (position in `objects` →
        Braze's reason) from the errors of an accepted request."""
        body: dict[str, list] = {}
        positions: dict[tuple[str, int], int] = {}
        for position, (array, payload) in enumerate(objects):
            positions[(array, len(body.setdefault(array, [])))] = position
            body[array].append(payload)
        data = self._post("/users/track", body, positions=positions)
        refused = {}
        for error in data.get("errors") or []:
            position = _error_position(error, positions)
            if position is None:
                logger.warning("Braze reported an error it did not tie to an object: %s", error)
                continue
            refused[position] = str(error.get("type") or error)
        return refused

    def _post(
        self, path: str, body: dict, *, positions: dict[tuple[str, int], int] | None = None
    ) -> dict:
        """POST and map the answer: 2xx → its JSON; 429, 5xx and network errors → RetryLater;
        401/403, 3xx and 404 (the key or the cluster URL is wrong) → DestinationBroken; other
        4xx → BatchRejected, except a 400 whose errors name every object (all refused)."""
        if self._session is None:
            self._session = outbound_session(timeout=REQUEST_TIMEOUT)
        headers = {"Authorization": f"Bearer {self.credentials.get('api_key', '')}"}
        try:
            response = self._session.post(self._base_url + path, json=body, headers=headers)
        except UnsafeURL as error:
            raise DestinationBroken(
                f"Braze cluster URL refused: {error}", code="unsafe_url"
            ) from error
        except requests.RequestException as error:
            raise RetryLater(f"Braze unreachable: {error.__class__.__name__}: {error}") from error
        data = _json(response)
        status = response.status_code
        message = f"Braze {path} answered {status}: {_message(data, response)}"
        if 200 <= status < 300:
            return data
        if status == 429:
            raise RetryLater(message, retry_after=_retry_after(response), code=status)
        if status >= 500:
            raise RetryLater(message, code=status)
        if status in (401, 403) or status == 404 or 300 <= status < 400:
            raise DestinationBroken(message, code=status)
        if status == 400 and positions and _names_every_object(data, positions):
            return data
        raise BatchRejected(message, code=status)


# Building objects -------------------------------------------------------------------------------


def _folded(name: str) -> str:
    return name.strip().casefold()


def _braze_properties(properties: dict) -> dict:
    """Event properties Braze takes: names non-empty, at most 255 characters, no leading $."""
    return {
        str(key): value
        for key, value in properties.items()
        if key and not str(key).startswith("$") and len(str(key)) <= ATTRIBUTE_NAME_LIMIT
    }


def _iso_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _unfulfilled(properties: dict) -> str | None:
    for key in ORDER_STATUS_PROPERTIES:
        status = properties.get(key)
        if isinstance(status, str) and status.strip().lower() in UNFULFILLED_STATUSES:
            return f"order not fulfilled ({key} {status.strip().lower()}): not sent"
    return None


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _quantity(value) -> int:
    number = _number(value)
    return max(1, int(number)) if number is not None else 1


def _currency(properties: dict) -> str:
    currency = properties.get("currency")
    if isinstance(currency, str) and currency.strip():
        return currency.strip().upper()
    return DEFAULT_CURRENCY


def _products(properties: dict) -> list[dict]:
    products = properties.get("products")
    return [p for p in products if isinstance(p, dict)] if isinstance(products, list) else []


def _order_total(properties: dict, products: list[dict]) -> float | None:
    for key in ("total", "revenue", "value"):
        total = _number(properties.get(key))
        if total is not None:
            return total
    lines = [(_number(p.get("price")), _quantity(p.get("quantity"))) for p in products]
    if lines and all(price is not None for price, _ in lines):
        return round(sum(price * quantity for price, quantity in lines), 2)
    return None


def _order_placed(external_id: str, properties: dict, when: str, dedupe_id: str) -> list | str:
    """Segment's "Order Completed" as Braze's `ecommerce.order_placed` (its validated schema:
    order_id, total_value, currency, source, and at least one product with product_id,
    product_name, variant_id, quantity and price)."""
    products = []
    for product in _products(properties):
        product_id = product.get("product_id") or product.get("sku") or product.get("id")
        price = _number(product.get("price"))
        if not product_id or price is None:
            return "order line without product_id or price: not sent"
        line = {
            "product_id": str(product_id),
            "product_name": str(product.get("name") or product_id),
            "variant_id": str(product.get("variant") or product.get("sku") or product_id),
            "quantity": _quantity(product.get("quantity")),
            "price": price,
        }
        for ours, theirs in (("image_url", "image_url"), ("url", "product_url")):
            if product.get(ours):
                line[theirs] = product[ours]
        products.append(line)
    if not products:
        return "order without products (ecommerce.order_placed needs at least one): not sent"
    total = _order_total(properties, _products(properties))
    order = {
        "order_id": str(properties.get("order_id") or dedupe_id),
        "total_value": total,
        "currency": _currency(properties),
        "products": products,
        "source": str(properties.get("source") or ECOMMERCE_SOURCE),
    }
    for ours, theirs in (
        ("subtotal", "subtotal_value"), ("tax", "tax"), ("shipping", "shipping"),
        ("discount", "total_discounts"), ("checkout_id", "cart_id"),
    ):  # fmt: skip
        if properties.get(ours) is not None:
            order[theirs] = properties[ours]
    order["metadata"] = {DEDUPE_PROPERTY: dedupe_id}
    event = {"external_id": external_id, "name": PURCHASE_ECOMMERCE, "time": when,
             "properties": order}  # fmt: skip
    return [("events", event)]


def _legacy_purchases(
    external_id: str, name: str, properties: dict, when: str, dedupe_id: str
) -> list | str:
    """One purchase object per line (Braze counts quantity X as X purchases at `price` each);
    an order without lines is one purchase of its total, named after the event. `product_id`
    is the product's name first: Braze caps distinct product ids at 5,000 a workspace."""
    currency = _currency(properties)
    order_id = properties.get("order_id")
    lines = _products(properties) or [
        {"name": name, "price": _order_total(properties, []), "quantity": 1}
    ]
    objects = []
    for line in lines:
        product_id = line.get("name") or line.get("product_id") or line.get("sku")
        price = _number(line.get("price"))
        if not product_id or price is None:
            return "order line without a name or price: not sent"
        extra = {DEDUPE_PROPERTY: dedupe_id}
        if order_id is not None:
            extra["order_id"] = order_id
        for key in ("sku", "category", "brand", "variant"):
            if line.get(key) is not None:
                extra[key] = line[key]
        objects.append(
            ("purchases", {
                "external_id": external_id, "product_id": str(product_id)[:255],
                "currency": currency, "price": price, "quantity": _quantity(line.get("quantity")),
                "time": when, "properties": extra,
            })
        )  # fmt: skip
    return objects


# Answers ----------------------------------------------------------------------------------------


def _chunks(values: list, size: int):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _json(response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _message(data: dict, response) -> str:
    message = data.get("message") or response.text[:300] or response.reason or ""
    errors = data.get("errors")
    if errors and data.get("message") != "success":
        message = f"{message} ({errors[:3]})"
    return str(message)


def _error_position(error, positions: dict[tuple[str, int], int]) -> int | None:
    if not isinstance(error, dict):
        return None
    index = error.get("index")
    if not isinstance(index, int):
        return None
    return positions.get((str(error.get("input_array")), index))


def _names_every_object(data: dict, positions: dict[tuple[str, int], int]) -> bool:
    named = {_error_position(error, positions) for error in data.get("errors") or []}
    return set(positions.values()) <= named


def _retry_after(response) -> float | None:
    """Braze documents `X-RateLimit-Reset` as the reset time in epoch seconds (and, for
    newer contracts, the seconds left in the window, with `X-Ratelimit-Retry-After` on a
    429). Either way: seconds from now, never negative."""
    retry_after = _number(response.headers.get("X-Ratelimit-Retry-After"))
    if retry_after is not None:
        return max(0.0, retry_after)
    reset = _number(response.headers.get("X-RateLimit-Reset"))
    if reset is None:
        return None
    if reset > 1_000_000_000:
        return max(0.0, reset - time.time())
    return max(0.0, reset)
