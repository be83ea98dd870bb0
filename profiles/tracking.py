"""Parsing of Segment-spec messages (and the native events API) into validated `TrackedMessage`s.

Outcomes are documented in docs/api.md ("Tracking API"): a message that breaks a rule is
rejected with its index and a reason naming the field; the rest of its batch is stored.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.utils.dateparse import parse_datetime

from masivo.tenancy.errors import InvalidInput
from profiles import normalize
from profiles.tracked import Rejection, TrackedMessage

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_ID_LENGTH = 255
MAX_EVENT_NAME_LENGTH = 200
FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
SEGMENT_TYPES = ("identify", "track", "page", "screen", "group", "alias")
EVENT_NAMES = {
    "identify": "Identify",
    "page": "Page Viewed",
    "screen": "Screen Viewed",
    "group": "Group",
    "alias": "Alias",
}


def _id(value: Any, *, field: str) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput("must be a string", field=field)
    text = normalize.strip_nul(str(value)).strip()
    if len(text) > MAX_ID_LENGTH:
        raise InvalidInput(f"longer than {MAX_ID_LENGTH} characters", field=field)
    return text


def _timestamp(value: Any, *, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well-formed but impossible, like February 30
        parsed = None
    if parsed is None:
        raise InvalidInput("must be an ISO 8601 date-time", field=field)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed < EARLIEST:
        raise InvalidInput("is before 1970", field=field)
    return parsed


def occurred_at(item: dict, *, received_at: datetime, context: dict) -> datetime:
    """The event's time on the server's clock.

    With `sentAt`, the client's clock skew is removed (timestamp + (received - sentAt)), as
    Segment does. A time still more than five minutes ahead becomes the received time, and the
    original is kept in `context.masivo.original_timestamp`.
    """
    timestamp = _timestamp(item.get("timestamp"), field="timestamp")
    sent_at = _timestamp(item.get("sentAt"), field="sentAt")
    if timestamp is None:
        return received_at
    try:
        corrected = timestamp + (received_at - sent_at) if sent_at else timestamp
    except OverflowError as error:
        raise InvalidInput("too far from the time it was received", field="sentAt") from error
    if corrected > received_at + FUTURE_TOLERANCE:
        # A new dict: the client's "masivo" may be any JSON, or shared through the batch context.
        masivo = context.get("masivo")
        masivo = masivo if isinstance(masivo, dict) else {}
        context["masivo"] = {**masivo, "original_timestamp": item["timestamp"]}
        return received_at
    return corrected


def message_size(item: dict) -> int:
    """Bytes of the message as compact JSON (as Segment's libraries send it)."""
    try:
        return len(orjson.dumps(item, default=str))
    except orjson.JSONEncodeError:  # lone surrogates (the parser bounds the nesting)
        text = json.dumps(item, default=str, separators=(",", ":"))
        return len(text.encode("utf-8", "replace"))


def parse_segment_message(
    item: Any, *, index: int, kind: str | None, batch_context: dict, received_at: datetime
) -> TrackedMessage:
    """One Segment message → TrackedMessage, or InvalidInput naming the field."""
    if not isinstance(item, dict):
        raise InvalidInput("each message must be a JSON object")
    size = message_size(item)
    if size > MAX_MESSAGE_BYTES:
        raise InvalidInput(f"message is {size} bytes; the limit is 32 KB")
    kind = kind or item.get("type")
    if kind not in SEGMENT_TYPES:
        raise InvalidInput(f"type must be one of {', '.join(SEGMENT_TYPES)}", field="type")
    user_id = _id(item.get("userId"), field="userId")
    anonymous_id = _id(item.get("anonymousId"), field="anonymousId")
    previous_id = _id(item.get("previousId"), field="previousId") if kind == "alias" else ""
    if kind == "alias":
        if not user_id or not previous_id:
            raise InvalidInput("alias needs userId and previousId", field="previousId")
    elif not user_id and not anonymous_id:
        raise InvalidInput("userId or anonymousId is required", field="userId")
    context = {**batch_context, **normalize.clean_object(item.get("context"), field="context")}
    properties = normalize.clean_object(item.get("properties"), field="properties")
    traits = normalize.clean_object(item.get("traits"), field="traits")
    if kind == "track":
        name = item.get("event")
        if not isinstance(name, str) or not normalize.strip_nul(name).strip():
            raise InvalidInput("track needs an event name", field="event")
        name = normalize.strip_nul(name).strip()
        if len(name) > MAX_EVENT_NAME_LENGTH:
            raise InvalidInput(f"longer than {MAX_EVENT_NAME_LENGTH} characters", field="event")
    else:
        name = EVENT_NAMES[kind]
        if kind == "page" and isinstance(item.get("category"), str):
            properties.setdefault("category", normalize.strip_nul(item["category"])[:500])
        if kind in ("page", "screen") and item.get("name") is not None:
            properties.setdefault(
                "name", normalize.clean_text(item["name"], field="name", max_length=500)
            )
        if kind == "group":
            properties = {"groupId": _id(item.get("groupId"), field="groupId"), "traits": traits}
        if kind == "alias":
            properties = {"previousId": previous_id}
    message_id = _id(item.get("messageId"), field="messageId") or f"masivo-{uuid.uuid4()}"
    return TrackedMessage(
        index=index,
        type=kind,
        name=name,
        message_id=message_id,
        occurred_at=occurred_at(item, received_at=received_at, context=context),
        user_id=user_id,
        anonymous_id=anonymous_id,
        previous_id=previous_id,
        properties=properties,
        traits=traits if kind == "identify" else {},
        context=context,
    )


def parse_segment_batch(
    items: list, *, kind: str | None, batch_context: dict, received_at: datetime
) -> tuple[list[TrackedMessage], list[Rejection]]:
    messages, rejected = [], []
    for index, item in enumerate(items):
        try:
            messages.append(
                parse_segment_message(
                    item,
                    index=index,
                    kind=kind,
                    batch_context=batch_context,
                    received_at=received_at,
                )
            )
        except InvalidInput as error:
            message_id = item.get("messageId") if isinstance(item, dict) else None
            rejected.append(
                Rejection(
                    index,
                    error.message,
                    field=error.field,
                    message_id=normalize.strip_nul(message_id)
                    if isinstance(message_id, str)
                    else None,
                )
            )
    return messages, rejected


NATIVE_EVENT_FIELDS = {
    "name", "customer_id", "external_id", "anonymous_id", "properties", "context",
    "occurred_at", "message_id",
}  # fmt: skip


def parse_native_event(item: Any, *, index: int, received_at: datetime) -> TrackedMessage:
    """One event of POST /api/v1/events → a track message, or InvalidInput naming the field."""
    if not isinstance(item, dict):
        raise InvalidInput("each event must be a JSON object")
    unknown = sorted(set(item) - NATIVE_EVENT_FIELDS)
    if unknown:
        raise InvalidInput("unknown field", field=unknown[0])
    size = message_size(item)
    if size > MAX_MESSAGE_BYTES:
        raise InvalidInput(f"event is {size} bytes; the limit is 32 KB")
    customer_id = item.get("customer_id")
    if customer_id is not None and (
        isinstance(customer_id, bool) or not isinstance(customer_id, int)
    ):
        raise InvalidInput("must be an integer", field="customer_id")
    user_id = _id(item.get("external_id"), field="external_id")
    anonymous_id = _id(item.get("anonymous_id"), field="anonymous_id")
    if customer_id is None and not user_id and not anonymous_id:
        raise InvalidInput(
            "customer_id, external_id or anonymous_id is required", field="customer_id"
        )
    name = item.get("name")
    if not isinstance(name, str) or not normalize.strip_nul(name).strip():
        raise InvalidInput("a non-empty event name is required", field="name")
    name = normalize.strip_nul(name).strip()
    if len(name) > MAX_EVENT_NAME_LENGTH:
        raise InvalidInput(f"longer than {MAX_EVENT_NAME_LENGTH} characters", field="name")
    context = normalize.clean_object(item.get("context"), field="context")
    try:
        when = occurred_at(
            {"timestamp": item.get("occurred_at")}, received_at=received_at, context=context
        )
    except InvalidInput as error:
        raise InvalidInput(error.message, field="occurred_at") from error
    return TrackedMessage(
        index=index,
        type="track",
        name=name,
        message_id=_id(item.get("message_id"), field="message_id") or f"masivo-{uuid.uuid4()}",
        occurred_at=when,
        user_id=user_id,
        anonymous_id=anonymous_id,
        customer_id=customer_id,
        properties=normalize.clean_object(item.get("properties"), field="properties"),
        context=context,
    )
