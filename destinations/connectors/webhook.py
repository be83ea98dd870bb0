"""Webhooks: a workspace's own HTTPS endpoints, sent Standard Webhooks (signed JSON).

An endpoint is a Destination of kind `webhook`: config {url, topics, event_names, description},
credentials {secrets: ["whsec_…", …] newest first, retired_at}. `forward()` makes no HTTP
call: each item that matches the endpoint's topics becomes a `WebhookDelivery` (one per item,
its `webhook-id` derived from the item's dedupe id) that destinations.webhooks sends, signs
and retries. The topics, the payload of each and the signing rules live here; see
docs/destinations/webhooks.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as random_secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers
from standardwebhooks import Webhook

from destinations.connectors.base import (
    DELETION,
    EVENTS,
    MEMBERSHIPS,
    PROFILES,
    Connector,
    ConnectorError,
    ErasedCustomer,
    ForwardItem,
    ForwardResult,
)
from destinations.models import DestinationKind, WebhookDelivery
from masivo.outbound import UnsafeURL, outbound_session, url_check
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField
from masivo.tenancy.wakeups import task_wake_on_commit

SEND_ENDPOINT_TASK = "destinations.webhooks_send_endpoint"
USER_AGENT = "Masivo-Webhooks/1"
TIMEOUT_SECONDS = 15
# After a rotation the previous secret keeps signing (a second signature) this long.
ROTATION_GRACE = timedelta(hours=24)
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32

TEST_TOPIC = "webhook.test"
TOPICS = (
    "audience.entered",
    "audience.exited",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "event.tracked",
    "message.sent",
    "message.delivered",
    "message.opened",
    "message.clicked",
    "message.bounced",
    "message.failed",
)
# Messaging records what happened to a message as customer events of these names
# (messaging.feedback.engagement.EVENT_OF_STATUS); such an event goes to its message topic.
MESSAGE_EVENT_TOPICS = {
    "Message Sent": "message.sent",
    "Message Delivered": "message.delivered",
    "Message Opened": "message.opened",
    "Message Read": "message.opened",
    "Message Clicked": "message.clicked",
    "Message Bounced": "message.bounced",
    "Message Failed": "message.failed",
}
PROFILE_TOPICS = {
    "created": "customer.created",
    "updated": "customer.updated",
    "deleted": "customer.deleted",
    "erased": "customer.deleted",
    "merged_away": "customer.deleted",
}
MEMBERSHIP_TOPICS = {
    "entered": "audience.entered",
    "enter": "audience.entered",
    "exited": "audience.exited",
    "exit": "audience.exited",
}
CUSTOMER_FIELDS = ("external_id", "email")
MAX_EVENT_NAMES = 200


# Secrets and signatures -------------------------------------------------------------------------


def secret_new() -> str:
    """`whsec_` + base64 of 32 random bytes (the Standard Webhooks form)."""
    return SECRET_PREFIX + base64.b64encode(random_secrets.token_bytes(SECRET_BYTES)).decode()


def secret_hint(secret: str) -> str:
    return f"{SECRET_PREFIX}…{secret[-4:]}"


def signing_secrets(credentials: dict | None, now: datetime) -> list[str]:
    """The secrets that sign now: the newest always; the older ones until `retired_at`."""
    stored = list((credentials or {}).get("secrets") or [])
    retired_at = (credentials or {}).get("retired_at")
    if len(stored) > 1 and retired_at and now < datetime.fromisoformat(retired_at):
        return stored
    return stored[:1]


def signed_headers(*, webhook_id: str, body: str, secrets: list[str], now: datetime) -> dict:
    """Standard Webhooks headers, one `v1,` signature per secret (space-separated)."""
    # `sign()` relabels any timezone as UTC: it must be given UTC (PROVIDERS.md section 9).
    at = now.astimezone(UTC)
    signatures = " ".join(Webhook(secret).sign(webhook_id, at, body) for secret in secrets)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def payload_body(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def webhook_id_for(dedupe_id: str) -> str:
    """`msg_` + 32 hex characters of SHA-256 of the item's dedupe id: the same item is the
    same webhook-id, at every endpoint and across every retry."""
    return "msg_" + hashlib.sha256(dedupe_id.encode()).hexdigest()[:32]


def _timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


# What each item becomes -------------------------------------------------------------------------


def _customer(item: ForwardItem) -> dict[str, Any] | None:
    if item.customer_id is None:
        return None
    profile = item.customer or {}
    return {"id": item.customer_id} | {name: profile.get(name) for name in CUSTOMER_FIELDS}


def topic_for(item: ForwardItem, *, topics: set[str], event_names: set[str]) -> str | None:
    """The topic an item is delivered as at an endpoint subscribed to `topics`, or None.

    A messaging event goes to its message topic when subscribed, else to `event.tracked` like
    any event; `event_names` (empty: all) filters `event.tracked` only."""
    if item.type == "event":
        name = (item.event or {}).get("name", "")
        message_topic = MESSAGE_EVENT_TOPICS.get(name)
        if message_topic in topics:
            return message_topic
        if "event.tracked" in topics and (not event_names or name in event_names):
            return "event.tracked"
        return None
    if item.type == "profile":
        topic = PROFILE_TOPICS.get(item.kind)
    elif item.type == "membership":
        topic = MEMBERSHIP_TOPICS.get(item.kind)
    else:
        topic = None
    return topic if topic in topics else None


def data_for(item: ForwardItem, topic: str) -> dict[str, Any]:
    if item.type == "event":
        event = item.event or {}
        occurred_at = event.get("occurred_at") or item.occurred_at
        if isinstance(occurred_at, datetime):
            occurred_at = _timestamp(occurred_at)
        return {
            "customer": _customer(item),
            "event": {
                "name": event.get("name", ""),
                "properties": event.get("properties") or {},
                "occurred_at": occurred_at,
                "message_id": event.get("message_id"),
            },
        }
    if topic == "customer.deleted":
        return {"customer": {"id": item.customer_id}, "reason": item.kind}
    if item.type == "profile":
        profile = _customer(item) or {}
        traits = (item.customer or {}).get("traits")
        data = {"customer": profile | ({"traits": traits} if traits is not None else {})}
        return data | ({"changed": list(item.changed)} if topic == "customer.updated" else {})
    audience = item.audience or {}
    return {
        "customer": _customer(item),
        "audience": {"id": audience.get("id"), "name": audience.get("name")},
    }


def payload_for(topic: str, at: datetime, data: dict) -> dict:
    return {"type": topic, "timestamp": _timestamp(at), "data": data}


# Shapes -----------------------------------------------------------------------------------------


class UrlField(serializers.URLField):
    """A URL the outbound guard accepts (masivo.outbound.url_check), given as a string."""

    default_error_messages = {"not_a_string": "must be a string"}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        value = super().to_internal_value(data)
        try:
            url_check(value)
        except UnsafeURL as unsafe:
            raise serializers.ValidationError(str(unsafe)) from None
        return value


class WebhookConfig(RefusesUnknownFields):
    url = UrlField(max_length=2000, help_text="https:// (or http://) URL receiving the POSTs")
    topics = serializers.ListField(
        child=serializers.ChoiceField(TOPICS), min_length=1, max_length=len(TOPICS)
    )
    event_names = serializers.ListField(
        child=StrictCharField(max_length=200),
        required=False,
        default=list,
        max_length=MAX_EVENT_NAMES,
        help_text="event.tracked only for these event names (empty: all)",
    )
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")

    def validate_topics(self, topics):
        return sorted(set(topics), key=TOPICS.index)

    def validate_event_names(self, names):
        return sorted({name.strip() for name in names if name.strip()})


class WebhookCredentials(RefusesUnknownFields):
    secrets = serializers.ListField(
        child=StrictCharField(min_length=len(SECRET_PREFIX) + 24, max_length=200),
        min_length=1,
        max_length=2,
        help_text="whsec_… secrets, newest first (the second only during a rotation's grace)",
    )
    retired_at = StrictCharField(required=False, allow_null=True, default=None)

    def validate_secrets(self, values):
        for value in values:
            if not value.startswith(SECRET_PREFIX):
                raise serializers.ValidationError("each secret starts with whsec_")
            try:
                base64.b64decode(value.removeprefix(SECRET_PREFIX), validate=True)
            except ValueError:
                raise serializers.ValidationError("whsec_ then base64") from None
        return values


# The connector ----------------------------------------------------------------------------------


class WebhookConnector(Connector):
    kind = DestinationKind.WEBHOOK
    label = "Webhooks"
    summary = "Signed JSON (Standard Webhooks) to your own endpoint for the topics it subscribes."
    docs_anchor = "webhooks"
    capabilities = frozenset({EVENTS, PROFILES, MEMBERSHIPS, DELETION})
    platform = "plain"
    default_identifiers = ("email",)
    consent_purpose = None  # operational data; the vendor decision for the key still applies
    batch_size = 500
    config_serializer = WebhookConfig
    credentials_serializer = WebhookCredentials

    @classmethod
    def credential_hints(cls, credentials: dict) -> dict[str, str]:
        stored = (credentials or {}).get("secrets") or []
        return {"secret": secret_hint(stored[0])} if stored else {}

    @property
    def topics(self) -> set[str]:
        return set(self.config.get("topics") or [])

    def forward(self, items: list[ForwardItem]) -> ForwardResult:
        """Record a delivery per matching item (none twice: the webhook-id is unique per
        endpoint) and wake this endpoint's sender after commit. No HTTP here."""
        result = ForwardResult()
        rows = []
        topics, event_names = self.topics, set(self.config.get("event_names") or [])
        for item in items:
            topic = topic_for(item, topics=topics, event_names=event_names)
            if topic is None:
                result.skipped[item.dedupe_id] = _skip_reason(item, topics)
                continue
            payload = payload_for(topic, item.occurred_at, data_for(item, topic))
            rows.append(self._delivery(webhook_id_for(item.dedupe_id), topic, payload))
        result.sent = self._record(rows)
        return result

    def customers_erased(self, customers: list[ErasedCustomer]) -> None:
        """A `customer.deleted` delivery each, with ids only (the profile is gone)."""
        if "customer.deleted" not in self.topics:
            return
        now = timezone.now()
        self._record([
            self._delivery(
                webhook_id_for(f"erased:{customer.customer_id}"),
                "customer.deleted",
                payload_for("customer.deleted", now,
                            {"customer": {"id": customer.customer_id}, "reason": "erased"}),
            )
            for customer in customers
        ])  # fmt: skip

    def test_connection(self) -> str:
        """POST a signed `webhook.test` (not recorded as a delivery); a 2xx is a success."""
        now = timezone.now()
        webhook_id = "msg_test_" + random_secrets.token_hex(12)
        body = payload_body(
            payload_for(TEST_TOPIC, now, {"destination_id": self.destination.id, "test": True})
        )
        headers = signed_headers(webhook_id=webhook_id, body=body, now=now,
                                 secrets=signing_secrets(self.credentials, now))  # fmt: skip
        try:
            response = outbound_session(timeout=TIMEOUT_SECONDS).post(
                self.config["url"], data=body.encode(), headers=headers
            )
        except UnsafeURL as unsafe:
            raise ConnectorError(str(unsafe)) from None
        except OSError as error:  # requests' errors are OSErrors
            raise ConnectorError(f"could not reach the endpoint: {error}") from None
        if 200 <= response.status_code < 300:
            return f"the endpoint answered {response.status_code}"
        raise ConnectorError(f"the endpoint answered {response.status_code}",
                             code=response.status_code)  # fmt: skip

    def _delivery(self, webhook_id: str, topic: str, payload: dict) -> WebhookDelivery:
        return WebhookDelivery(
            workspace_id=self.destination.workspace_id,
            destination_id=self.destination.id,
            webhook_id=webhook_id,
            topic=topic,
            payload=payload,
        )

    def _record(self, rows: list[WebhookDelivery]) -> int:
        """Insert, ignoring the ones already there; returns how many exist now (created or
        already there), and wakes the sender once the caller's transaction commits."""
        if not rows:
            return 0
        WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
        task_wake_on_commit(SEND_ENDPOINT_TASK, workspace_id=self.destination.workspace_id,
                            destination_id=self.destination.id)  # fmt: skip
        return len({row.webhook_id for row in rows})


def _skip_reason(item: ForwardItem, topics: set[str]) -> str:
    if item.type == "event":
        name = (item.event or {}).get("name", "")
        if "event.tracked" in topics:
            return f"event {name!r} is not in the endpoint's event_names"
        return "topic not subscribed"
    if item.type in ("profile", "membership"):
        return "topic not subscribed"
    return f"item type {item.type!r} is not sent to webhooks"
