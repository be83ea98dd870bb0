"""TikTok Events API 2.0 (conversion tracking): forwarded events as `POST /event/track/`.

Workspace event names map to TikTok events through `config.event_map`, editable data because
TikTok renamed its standard events in 2025 (`CompletePayment` became `Purchase`); an event
without a mapping is skipped. `event_id` is the item's dedupe id, which TikTok uses to
deduplicate against the pixel (same event and id within 48 hours) and a retry against itself.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from destinations.connectors.base import (
    EVENTS,
    Connector,
    ForwardItem,
    ForwardResult,
)
from destinations.connectors.http import checked_base_url
from destinations.connectors.tiktok import DEFAULT_BASE_URL, TikTokApi, TikTokCredentials
from destinations.models import DestinationKind
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField

# Suggestions in TikTok's current (September 2025) names; every workspace edits its own copy.
DEFAULT_EVENT_MAP = {
    "Order Completed": "Purchase",
    "Product Added": "AddToCart",
    "Product Added to Wishlist": "AddToWishlist",
    "Checkout Started": "InitiateCheckout",
    "Payment Info Entered": "AddPaymentInfo",
    "Product Viewed": "ViewContent",
    "Products Searched": "Search",
    "Signed Up": "CompleteRegistration",
}
EVENT_SOURCES = ["web", "app", "offline", "crm"]
USER_IDENTIFIERS = ("email", "phone", "external_id")


class TikTokEventsConfig(RefusesUnknownFields):
    event_source = serializers.ChoiceField(choices=EVENT_SOURCES, required=False, default="web")
    event_source_id = StrictCharField(
        max_length=100, help_text="The pixel code (web), app id, or offline/CRM event set id"
    )
    test_event_code = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=100,
        help_text="Shows events under Test Events in TikTok; never set it in production",
    )
    event_map = serializers.DictField(
        child=StrictCharField(max_length=100),
        required=False,
        default=lambda: dict(DEFAULT_EVENT_MAP),
        help_text="Workspace event name → TikTok event name; other events are not sent",
    )
    base_url = StrictCharField(required=False, default=DEFAULT_BASE_URL, max_length=500)
    batch_size = serializers.IntegerField(
        required=False,
        default=50,
        min_value=1,
        max_value=1000,
        help_text="Events a request (TikTok's limit is unverified)",
    )

    def validate_base_url(self, value: str) -> str:
        return checked_base_url(value, DEFAULT_BASE_URL)


class TikTokEventsConnector(TikTokApi, Connector):
    kind = DestinationKind.TIKTOK_EVENTS
    label = "TikTok Events API"
    summary = "Sends conversions (purchases, add to cart…) to a TikTok pixel or event set."
    docs_anchor = "tiktok-events"
    capabilities = frozenset({EVENTS})
    platform = "tiktok"
    default_identifiers = ("email", "phone", "external_id")
    consent_purpose = "advertising"
    batch_size = 50
    config_serializer = TikTokEventsConfig
    credentials_serializer = TikTokCredentials

    def __init__(self, destination):
        super().__init__(destination)
        self.batch_size = int(self.config.get("batch_size") or type(self).batch_size)

    def test_connection(self) -> str:
        """`/user/info/` reads who the token belongs to and sends nothing; the pixel code
        itself is only checked by the first event."""
        data = self.call("GET", "/user/info/")
        who = data.get("display_name") or data.get("core_user_id") or "an unnamed user"
        return f"Access token of {who} works (pixel {self.config.get('event_source_id', '')})"

    def forward(self, items: list[ForwardItem]) -> ForwardResult:
        event_map = self.config.get("event_map", DEFAULT_EVENT_MAP)
        result = ForwardResult()
        data = []
        for item in items:
            if item.type != "event" or not item.event:
                result.skipped[item.dedupe_id] = "not an event"
                continue
            tiktok_event = event_map.get(item.event.get("name", ""))
            if not tiktok_event:
                result.skipped[item.dedupe_id] = "no mapping"
                continue
            data.append(tiktok_event_data(item, tiktok_event))
        if data:
            body = {
                "event_source": self.config.get("event_source") or "web",
                "event_source_id": self.config.get("event_source_id", ""),
                "data": data,
            }
            if self.config.get("test_event_code"):
                body["test_event_code"] = self.config["test_event_code"]
            self.call("POST", "/event/track/", body=body)
        result.sent = len(data)
        return result


def tiktok_event_data(item: ForwardItem, tiktok_event: str) -> dict[str, Any]:
    """One entry of `data`: the event as TikTok names it, who (hashed identifiers as the
    forwarder built them for platform "tiktok", plus the request's ip and user agent), what
    (value, currency, order, products) and where (the page)."""
    event = item.event or {}
    properties = event.get("properties") or {}
    context = event.get("context") or {}
    user = {name: item.identifiers[name] for name in USER_IDENTIFIERS if item.identifiers.get(name)}
    for ours, theirs in (("ip", "ip"), ("userAgent", "user_agent"), ("locale", "locale")):
        if isinstance(context.get(ours), str) and context[ours]:
            user[theirs] = context[ours]
    entry: dict[str, Any] = {
        "event": tiktok_event,
        "event_time": int(item.occurred_at.timestamp()),
        "event_id": item.dedupe_id,
        "user": user,
        "properties": _properties(properties),
    }
    page = context.get("page") or {}
    page_fields = {name: page[name] for name in ("url", "referrer") if page.get(name)}
    if not page_fields.get("url") and properties.get("url"):
        page_fields["url"] = properties["url"]
    if page_fields:
        entry["page"] = page_fields
    return entry


def _properties(properties: dict[str, Any]) -> dict[str, Any]:
    """Segment's e-commerce spec in TikTok's names: `value` from value, revenue, total or
    price (the first present), the products (or the one product an event is about) as
    `contents`."""
    out: dict[str, Any] = {}
    if properties.get("currency"):
        out["currency"] = str(properties["currency"]).upper()
    for name in ("value", "revenue", "total", "price"):
        if _is_number(properties.get(name)):
            out["value"] = properties[name]
            break
    for ours, theirs in (("order_id", "order_id"), ("query", "query")):
        if properties.get(ours) not in (None, ""):
            out[theirs] = str(properties[ours])
    products = properties.get("products")
    if isinstance(products, list):
        contents = [_content(product) for product in products if isinstance(product, dict)]
    elif properties.get("product_id") or properties.get("sku"):
        contents = [_content(properties)]
    else:
        contents = []
    contents = [content for content in contents if content]
    if contents:
        out["contents"] = contents
        out["content_type"] = "product"
    return out


def _content(product: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = {}
    content_id = product.get("product_id") or product.get("sku")
    if content_id not in (None, ""):
        content["content_id"] = str(content_id)
    for ours, theirs in (("name", "content_name"), ("category", "content_category")):
        if product.get(ours):
            content[theirs] = str(product[ours])
    if product.get("brand"):
        content["brand"] = str(product["brand"])
    if _is_number(product.get("price")):
        content["price"] = product["price"]
    if _is_number(product.get("quantity")):
        content["quantity"] = product["quantity"]
    return content


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
