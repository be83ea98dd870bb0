"""Meta Conversions API: workspace events as server events of a pixel (facebook-business).

Events are built as the SDK's `serverside.Event` objects and serialized by its `EventRequest`
(which sends `data` as a JSON array of JSON strings), then posted with the destination's own
API object (`meta.graph_call`): `EventRequest.execute()` would go through the process-wide
default API. Identifiers arrive hashed by `destinations.identifiers`; the SDK passes 64-hex
values through unchanged, and `external_id`, which the SDK never hashes, is hashed here.
See docs/destinations/meta.md for the field mapping.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.content import Content
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.user_data import UserData
from rest_framework import serializers

from destinations.connectors.base import EVENTS, ForwardItem, ForwardResult
from destinations.connectors.meta import (
    DEFAULT_API_VERSION,
    ID_DIGITS,
    GraphConnector,
    graph_call,
    validate_api_version,
)
from destinations.identifiers import Identifier, sha256_hex
from destinations.models import DestinationKind
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField

MAX_EVENT_AGE = timedelta(days=7)
# Meta refuses the whole request when one event is older than 7 days; an event this close to
# the limit could cross it on the way, so it is skipped rather than risk the batch.
AGE_MARGIN = timedelta(minutes=1)
ACTION_SOURCES = [source.value for source in ActionSource]
WEBSITE = ActionSource.WEBSITE.value

SKIP_NO_MAPPING = "no mapping"
SKIP_TOO_OLD = "older than 7 days"
SKIP_NOT_EVENT = "not an event"
SKIP_NO_USER_DATA = "no identifiers"
SKIP_NO_USER_AGENT = "no user agent (Meta requires one for website events)"

# Event properties read for custom_data, first present wins (Segment's spec names).
VALUE_PROPERTIES = ("revenue", "value", "total")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


class EventMapField(serializers.DictField):
    child = StrictCharField()


class MetaConversionsConfig(RefusesUnknownFields):
    pixel_id = StrictCharField(help_text="The dataset (pixel) id")
    test_event_code = StrictCharField(required=False, allow_blank=True)
    event_map = EventMapField(
        help_text='Workspace event name → Meta event name, e.g. {"Order Completed": "Purchase"}'
    )
    action_source = serializers.ChoiceField(choices=ACTION_SOURCES, default=WEBSITE)
    api_version = StrictCharField(required=False, default=DEFAULT_API_VERSION)

    def validate_pixel_id(self, value: str) -> str:
        if not ID_DIGITS.match(value.strip()):
            raise serializers.ValidationError("must be digits")
        return value.strip()

    def validate_api_version(self, value: str) -> str:
        return validate_api_version(value)


class MetaConversionsConnector(GraphConnector):
    kind = DestinationKind.META_CAPI
    label = "Meta Conversions API"
    summary = "Sends mapped workspace events to a Meta pixel as server events, deduplicated."
    docs_anchor = "meta-capi"
    capabilities = frozenset({EVENTS})
    default_identifiers = (
        Identifier.EMAIL.value,
        Identifier.PHONE.value,
        Identifier.EXTERNAL_ID.value,
    )
    batch_size = 1000
    config_serializer = MetaConversionsConfig

    @property
    def pixel_id(self) -> str:
        return str(self.config.get("pixel_id", ""))

    def test_connection(self) -> str:
        body = graph_call(self.api, "GET", (self.pixel_id,), {"fields": "name"})
        return f"Connected to pixel {body.get('name', '')!r} ({self.pixel_id})."

    def forward(self, items: list[ForwardItem]) -> ForwardResult:
        now = timezone.now()
        result = ForwardResult()
        events = []
        for item in items:
            event, reason = self.server_event(item, now=now)
            if event is None:
                result.skipped[item.dedupe_id] = reason
            else:
                events.append(event)
        if not events:
            return result
        request = EventRequest(
            pixel_id=self.pixel_id,
            events=events,
            test_event_code=self.config.get("test_event_code") or None,
        )
        graph_call(self.api, "POST", (self.pixel_id, "events"), request.get_params())
        result.sent = len(events)
        return result

    def server_event(self, item: ForwardItem, *, now: datetime) -> tuple[Event | None, str]:
        """The item as a Meta server event, or None and why it is skipped."""
        if item.type != "event" or not item.event:
            return None, SKIP_NOT_EVENT
        meta_name = (self.config.get("event_map") or {}).get(item.event.get("name"))
        if not meta_name:
            return None, SKIP_NO_MAPPING
        if now - item.occurred_at > MAX_EVENT_AGE - AGE_MARGIN:
            return None, SKIP_TOO_OLD
        action_source = self.config.get("action_source") or WEBSITE
        context = item.event.get("context") or {}
        user_data = self.user_data(item.identifiers, context)
        if user_data is None:
            return None, SKIP_NO_USER_DATA
        if action_source == WEBSITE and not user_data.client_user_agent:
            return None, SKIP_NO_USER_AGENT
        page = context.get("page") if isinstance(context.get("page"), dict) else {}
        return Event(
            event_name=meta_name,
            event_time=int(item.occurred_at.timestamp()),
            event_id=item.dedupe_id,
            event_source_url=page.get("url") or None,
            user_data=user_data,
            custom_data=custom_data(item.event.get("properties") or {}),
            action_source=ActionSource(action_source),
        ), ""

    @staticmethod
    def user_data(identifiers: dict[str, str], context: dict[str, Any]) -> UserData | None:
        """Our identifiers as UserData: the hashed ones as hex digests (which the SDK passes
        through), external_id hashed here, MADID in clear as Meta takes it."""
        fields = {
            "emails": identifiers.get(Identifier.EMAIL),
            "phones": identifiers.get(Identifier.PHONE),
            "first_names": identifiers.get(Identifier.FIRST_NAME),
            "last_names": identifiers.get(Identifier.LAST_NAME),
            "country_codes": identifiers.get(Identifier.COUNTRY),
            "external_ids": (
                sha256_hex(identifiers[Identifier.EXTERNAL_ID])
                if identifiers.get(Identifier.EXTERNAL_ID)
                else None
            ),
        }
        values: dict[str, Any] = {name: [value] for name, value in fields.items() if value}
        if identifiers.get(Identifier.MADID):
            values["madid"] = identifiers[Identifier.MADID]
        if not values:
            return None
        user_agent, ip = context.get("userAgent"), context.get("ip")
        if isinstance(user_agent, str) and user_agent:
            values["client_user_agent"] = user_agent
        if isinstance(ip, str) and ip:
            values["client_ip_address"] = ip
        return UserData(**values)


def custom_data(properties: dict[str, Any]) -> CustomData | None:
    """value (revenue, else value, else total), currency (ISO 4217 letters), order_id and
    contents from `products[]` (product_id or sku or id, quantity, price); None if none."""
    fields: dict[str, Any] = {}
    value = next(
        (_number(properties[name]) for name in VALUE_PROPERTIES if name in properties), None
    )
    if value is not None:
        fields["value"] = value
    currency = properties.get("currency")
    if isinstance(currency, str) and _CURRENCY.match(currency.strip()):
        fields["currency"] = currency.strip()  # the SDK lower-cases it and refuses other forms
    order_id = properties.get("order_id")
    if isinstance(order_id, str | int) and str(order_id):
        fields["order_id"] = str(order_id)
    contents = [content for content in map(_content, properties.get("products") or []) if content]
    if contents:
        fields["contents"] = contents
        fields["num_items"] = sum(content.quantity or 1 for content in contents)
    return CustomData(**fields) if fields else None


def _content(product: Any) -> Content | None:
    if not isinstance(product, dict):
        return None
    product_id = product.get("product_id") or product.get("sku") or product.get("id")
    if product_id in (None, ""):
        return None
    quantity = product.get("quantity")
    return Content(
        product_id=str(product_id),
        quantity=int(quantity) if isinstance(quantity, int | float) else None,
        item_price=_number(product.get("price")),
        title=product.get("name") if isinstance(product.get("name"), str) else None,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return float(number) if number.is_finite() else None
