"""Parsing and validation of audience rules (version 1) into a typed tree.

Every problem is reported with the JSON path of the node at fault and a sentence for people,
e.g. `$.all[1].event.count.value: must be a whole number ≥ 0`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime

from audiences.rules.fields import (
    BOOLEAN,
    DATE,
    DATETIME,
    JSON,
    NUMBER,
    TEXT,
    FieldRef,
    resolve_field,
)
from profiles.normalize import unstorable_reason

VERSION = 1
MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_LIST_VALUES = 1000
TIME_UNITS = {"minutes": 60, "hours": 3600, "days": 86400}
CONSENT_PURPOSES = (
    "email_marketing", "push_notifications", "whatsapp_marketing", "sms_marketing",
    "advertising", "behavioral_campaigns", "link_tracking",
)  # fmt: skip
COUNT_OPS = ("gte", "gt", "eq", "lte", "lt", "between")
AGGREGATES = ("sum", "avg", "min", "max")

OPERATORS: dict[str, tuple[str, ...]] = {
    TEXT: ("eq", "neq", "in", "not_in", "contains", "starts_with", "ends_with",
           "exists", "not_exists", "is_empty"),
    NUMBER: ("eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between",
             "exists", "not_exists"),
    DATE: ("on", "before", "after", "between", "within_last", "within_next",
           "anniversary_this_month", "anniversary_today", "exists", "not_exists"),
    DATETIME: ("on", "before", "after", "between", "within_last", "within_next",
               "exists", "not_exists"),
    BOOLEAN: ("is_true", "is_false"),
    JSON: ("eq", "neq", "in", "not_in", "contains", "starts_with", "ends_with", "gt", "gte",
           "lt", "lte", "between", "exists", "not_exists", "is_empty", "is_true", "is_false"),
}  # fmt: skip
NO_VALUE = {
    "exists", "not_exists", "is_empty", "is_true", "is_false", "anniversary_this_month",
    "anniversary_today",
}  # fmt: skip


class InvalidRules(ValueError):
    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))
        self.errors = errors


# -- the tree --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    kind: str  # all | any | not
    children: tuple


@dataclass(frozen=True)
class Comparison:
    """A field/property test: `op` with a `value` already typed for the field."""

    op: str
    value: Any = None


@dataclass(frozen=True)
class ProfileCondition:
    field: FieldRef
    test: Comparison


@dataclass(frozen=True)
class PropertyFilter:
    path: tuple[str, ...]
    test: Comparison


@dataclass(frozen=True)
class Window:
    seconds: int | None = None  # the last N seconds
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class Aggregate:
    fn: str
    path: tuple[str, ...]
    test: Comparison


@dataclass(frozen=True)
class EventCondition:
    name: str
    where: tuple[PropertyFilter, ...] = ()
    count: Comparison = field(default_factory=lambda: Comparison("gte", 1))
    window: Window | None = None
    aggregate: Aggregate | None = None
    first: Comparison | None = None  # before/after on the first occurrence
    last: Comparison | None = None

    @property
    def matches_without_events(self) -> bool:
        """True when a customer with no matching event satisfies the condition."""
        if self.aggregate or self.first or self.last:
            return False
        return count_holds(self.count, 0)


@dataclass(frozen=True)
class AudienceCondition:
    audience_id: int
    is_member: bool


@dataclass(frozen=True)
class ConsentCondition:
    purpose: str
    allowed: bool


@dataclass(frozen=True)
class DeviceCondition:
    has_active: bool
    platform: str | None = None


LEAF_KEYS = {
    "profile": {"field", "op", "value"},
    "event": {"name", "where", "count", "within", "aggregate", "first", "last"},
    "audience": {"id", "in"},
    "consent": {"purpose", "allowed"},
    "device": {"platform", "has_active"},
}


@dataclass(frozen=True)
class Rules:
    root: Any

    def leaves(self):
        stack = [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, Group):
                stack.extend(node.children)
            else:
                yield node

    @property
    def event_names(self) -> set[str]:
        return {n.name for n in self.leaves() if isinstance(n, EventCondition)}

    @property
    def profile_fields(self) -> set[str]:
        return {n.field.name for n in self.leaves() if isinstance(n, ProfileCondition)}

    @property
    def audience_ids(self) -> set[int]:
        return {n.audience_id for n in self.leaves() if isinstance(n, AudienceCondition)}

    @property
    def is_time_based(self) -> bool:
        """Membership can change with the clock alone (windows, relative dates)."""
        for node in self.leaves():
            if isinstance(node, EventCondition) and node.window and node.window.seconds:
                return True
            if isinstance(node, ProfileCondition) and node.test.op in (
                "within_last", "within_next", "anniversary_this_month", "anniversary_today",
            ):  # fmt: skip
                return True
            if isinstance(node, DeviceCondition):
                return True
        return False


def count_holds(test: Comparison, count: int) -> bool:
    value = test.value
    return {
        "gte": lambda: count >= value,
        "gt": lambda: count > value,
        "eq": lambda: count == value,
        "lte": lambda: count <= value,
        "lt": lambda: count < value,
        "between": lambda: value[0] <= count <= value[1],
    }[test.op]()


# -- parsing ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self):
        self.errors: list[tuple[str, str]] = []
        self.conditions = 0

    def fail(self, path: str, message: str):
        self.errors.append((path, message))

    def node(self, raw, path: str, depth: int):
        if depth > MAX_DEPTH:
            return self.fail(path, f"groups nest deeper than {MAX_DEPTH} levels")
        if not isinstance(raw, dict) or len(raw) != 1:
            return self.fail(
                path,
                "each node is an object with one key: all, any, not, profile, event, "
                "audience, consent or device",
            )
        ((kind, body),) = raw.items()
        inner = f"{path}.{kind}"
        if kind in ("all", "any"):
            if not isinstance(body, list) or not body:
                return self.fail(inner, "must be a non-empty list of conditions")
            children = [
                self.node(child, f"{inner}[{i}]", depth + 1) for i, child in enumerate(body)
            ]
            return Group(kind, tuple(children))
        if kind == "not":
            return Group("not", (self.node(body, inner, depth + 1),))
        self.conditions += 1
        if self.conditions == MAX_CONDITIONS + 1:
            self.fail("$", f"more than {MAX_CONDITIONS} conditions")
        if not isinstance(body, dict):
            return self.fail(inner, "must be an object")
        handler = getattr(self, f"leaf_{kind}", None)
        if handler is None:
            return self.fail(path, f"unknown node {kind!r}")
        # A misspelt key would otherwise be ignored and its default used silently
        # ({"audience": {"id": 7, "member": false}} meaning "in audience 7").
        unknown = sorted(str(key) for key in set(body) - LEAF_KEYS[kind])
        if unknown:
            self.fail(
                f"{inner}.{unknown[0]}",
                f"unknown key; {kind} takes {', '.join(sorted(LEAF_KEYS[kind]))}",
            )
        return handler(body, inner)

    # comparisons ---------------------------------------------------------------------------

    def comparison(self, body: dict, path: str, kind: str) -> Comparison | None:
        op = body.get("op")
        if op not in OPERATORS[kind]:
            self.fail(
                f"{path}.op", f"for a {kind} field, op is one of {', '.join(OPERATORS[kind])}"
            )
            return None
        if op in NO_VALUE:
            return Comparison(op)
        if "value" not in body:
            self.fail(f"{path}.value", f"{op} needs a value")
            return None
        value = self.typed_value(op, body["value"], f"{path}.value", kind)
        return None if value is _BAD else Comparison(op, value)

    def typed_value(self, op: str, value, path: str, kind: str):
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value or len(value) > MAX_LIST_VALUES:
                self.fail(path, f"must be a list of 1 to {MAX_LIST_VALUES} values")
                return _BAD
            items = [self.scalar(item, f"{path}[{i}]", kind, op) for i, item in enumerate(value)]
            return _BAD if _BAD in items else tuple(items)
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                self.fail(path, "must be a list of two values [low, high]")
                return _BAD
            low, high = (
                self.scalar(item, f"{path}[{i}]", kind, op) for i, item in enumerate(value)
            )
            if _BAD in (low, high):
                return _BAD
            if low > high:
                self.fail(path, "the low value is greater than the high one")
                return _BAD
            return (low, high)
        if op in ("within_last", "within_next"):
            if not _is_int(value) or not 0 < value <= 36500:
                self.fail(path, "must be a whole number of days between 1 and 36500")
                return _BAD
            return value
        return self.scalar(value, path, kind, op)

    def scalar(self, value, path: str, kind: str, op: str):
        if kind == JSON:
            numeric_op = op in ("gt", "gte", "lt", "lte", "between")
            text_op = op in ("contains", "starts_with", "ends_with")
            if numeric_op and not _is_number(value):
                self.fail(path, f"{op} compares numbers: give a number")
                return _BAD
            if text_op and not isinstance(value, str):
                self.fail(path, f"{op} compares text: give a string")
                return _BAD
            if not isinstance(value, str | bool | int | float) or value is None:
                self.fail(path, "must be a string, number or boolean")
                return _BAD
            return float(value) if numeric_op else value
        if kind == TEXT:
            if not isinstance(value, str):
                self.fail(path, "must be a string")
                return _BAD
            return value
        if kind == NUMBER:
            if not _is_number(value):
                self.fail(path, "must be a number")
                return _BAD
            return float(value)
        if kind == DATE:
            parsed = parse_date(value) if isinstance(value, str) else None
            if parsed is None:
                self.fail(path, "must be a date YYYY-MM-DD")
                return _BAD
            return parsed
        if kind == DATETIME:
            return self.datetime_value(value, path, allow_date=op == "on")
        self.fail(path, "this field takes no value")
        return _BAD

    def datetime_value(self, value, path: str, *, allow_date: bool = False):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value)
            except ValueError:
                parsed = None
            if parsed is not None:
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            if allow_date:
                day = _date_or_none(value)
                if day is not None:
                    return day
        self.fail(path, "must be an ISO 8601 date-time" + (" or date" if allow_date else ""))
        return _BAD

    # leaves ------------------------------------------------------------------------------

    def leaf_profile(self, body: dict, path: str):
        name = body.get("field")
        ref = resolve_field(name) if isinstance(name, str) else None
        if ref is None:
            return self.fail(
                f"{path}.field",
                "unknown field; use a profile field, metrics.<name>, tags.<key> or traits.<path>",
            )
        test = self.comparison(body, path, ref.type)
        return ProfileCondition(ref, test) if test else None

    def leaf_event(self, body: dict, path: str):
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            self.fail(f"{path}.name", "the event name is a non-empty string")
        where = []
        raw_where = body.get("where", [])
        if not isinstance(raw_where, list):
            self.fail(f"{path}.where", "must be a list of property filters")
            raw_where = []
        for index, item in enumerate(raw_where):
            filter_path = f"{path}.where[{index}]"
            prop = item.get("property") if isinstance(item, dict) else None
            if not isinstance(prop, str) or not prop or not all(prop.split(".")):
                self.fail(f"{filter_path}.property", "a property name (dots for nesting)")
                continue
            test = self.comparison(item, filter_path, JSON)
            if test:
                where.append(PropertyFilter(tuple(prop.split(".")), test))
        count = Comparison("gte", 1)
        if "count" in body:
            count = self.count(body["count"], f"{path}.count")
        window = self.window(body["within"], f"{path}.within") if "within" in body else None
        aggregate = None
        if "aggregate" in body:
            aggregate = self.aggregate(body["aggregate"], f"{path}.aggregate")
        first = self.bound(body["first"], f"{path}.first") if "first" in body else None
        last = self.bound(body["last"], f"{path}.last") if "last" in body else None
        if count is None:
            return None
        return EventCondition(
            name=name if isinstance(name, str) else "",
            where=tuple(where),
            count=count,
            window=window,
            aggregate=aggregate,
            first=first,
            last=last,
        )

    def count(self, body, path: str) -> Comparison | None:
        if not isinstance(body, dict) or body.get("op") not in COUNT_OPS:
            self.fail(f"{path}.op", f"op is one of {', '.join(COUNT_OPS)}")
            return None
        value = body.get("value")
        if body["op"] == "between":
            if not (
                isinstance(value, list)
                and len(value) == 2
                and all(_is_int(v) and v >= 0 for v in value)
            ):
                self.fail(f"{path}.value", "must be [low, high], whole numbers ≥ 0")
                return None
            return Comparison("between", tuple(value))
        if not _is_int(value) or value < 0:
            self.fail(f"{path}.value", "must be a whole number ≥ 0")
            return None
        return Comparison(body["op"], value)

    def window(self, body, path: str) -> Window | None:
        if isinstance(body, dict) and "last" in body:
            unit = body.get("unit", "days")
            amount = body["last"]
            if unit not in TIME_UNITS:
                self.fail(f"{path}.unit", "minutes, hours or days")
                return None
            if not _is_int(amount) or not 0 < amount * TIME_UNITS[unit] <= 100 * 365 * 86400:
                self.fail(f"{path}.last", "a whole number > 0 (at most 100 years)")
                return None
            return Window(seconds=amount * TIME_UNITS[unit])
        if isinstance(body, dict) and "between" in body:
            pair = body["between"]
            if not isinstance(pair, list) or len(pair) != 2:
                self.fail(f"{path}.between", "must be [start, end] date-times")
                return None
            start = self.datetime_value(pair[0], f"{path}.between[0]")
            end = self.datetime_value(pair[1], f"{path}.between[1]")
            if _BAD in (start, end):
                return None
            if start >= end:
                self.fail(f"{path}.between", "the start must be before the end")
                return None
            return Window(start=start, end=end)
        self.fail(path, 'use {"last": N, "unit": "days"} or {"between": [start, end]}')
        return None

    def aggregate(self, body, path: str) -> Aggregate | None:
        if not isinstance(body, dict) or body.get("fn") not in AGGREGATES:
            self.fail(f"{path}.fn", f"fn is one of {', '.join(AGGREGATES)}")
            return None
        prop = body.get("property")
        if not isinstance(prop, str) or not prop or not all(prop.split(".")):
            self.fail(f"{path}.property", "a numeric property name")
            return None
        test = self.comparison(body, path, NUMBER)
        if test is None:
            return None
        if test.op not in ("eq", "neq", "gt", "gte", "lt", "lte", "between"):
            self.fail(f"{path}.op", "op is one of eq, neq, gt, gte, lt, lte, between")
            return None
        return Aggregate(body["fn"], tuple(prop.split(".")), test)

    def bound(self, body, path: str) -> Comparison | None:
        if not isinstance(body, dict) or body.get("op") not in ("before", "after"):
            self.fail(f"{path}.op", "op is before or after")
            return None
        value = self.datetime_value(body.get("value"), f"{path}.value")
        return None if value is _BAD else Comparison(body["op"], value)

    def leaf_audience(self, body: dict, path: str):
        audience_id = body.get("id")
        if not _is_int(audience_id) or audience_id <= 0:
            return self.fail(f"{path}.id", "an audience id")
        is_member = body.get("in", True)
        if not isinstance(is_member, bool):
            return self.fail(f"{path}.in", "true (member of) or false (not a member of)")
        return AudienceCondition(audience_id, is_member)

    def leaf_consent(self, body: dict, path: str):
        purpose = body.get("purpose")
        if purpose not in CONSENT_PURPOSES:
            return self.fail(f"{path}.purpose", f"one of {', '.join(CONSENT_PURPOSES)}")
        allowed = body.get("allowed", True)
        if not isinstance(allowed, bool):
            return self.fail(f"{path}.allowed", "true or false")
        return ConsentCondition(purpose, allowed)

    def leaf_device(self, body: dict, path: str):
        platform = body.get("platform")
        if platform not in (None, "android", "ios", "web"):
            return self.fail(f"{path}.platform", "android, ios or web")
        has_active = body.get("has_active", True)
        if not isinstance(has_active, bool):
            return self.fail(f"{path}.has_active", "true or false")
        return DeviceCondition(has_active, platform)


_BAD = object()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value == value
        and abs(value) < 1e300
    )


def _date_or_none(value: str) -> date | None:
    try:
        return parse_date(value)
    except ValueError:
        return None


def _first_unstorable_string(document: Any) -> tuple[str, str] | None:
    """(path, reason) of the first key or string the database could not store (NUL, lone
    surrogate), anywhere in the document: it is saved whole, unknown keys included."""
    stack = [("$", document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            reason = unstorable_reason(node)
            if reason:
                return path, reason
        elif isinstance(node, dict):
            for key in node:
                reason = unstorable_reason(str(key))
                if reason:
                    return path, f"a key {reason}"
            stack.extend(reversed([(f"{path}.{key}", child) for key, child in node.items()]))
        elif isinstance(node, list):
            stack.extend(reversed([(f"{path}[{i}]", child) for i, child in enumerate(node)]))
    return None


def parse_rules(document: Any) -> Rules:
    """Validate a rules document; raise InvalidRules listing every problem with its path."""
    parser = _Parser()
    if not isinstance(document, dict):
        raise InvalidRules([("$", "rules are a JSON object with version and root")])
    unstorable = _first_unstorable_string(document)
    if unstorable:
        raise InvalidRules([unstorable])
    if document.get("version") != VERSION:
        parser.fail("$.version", f"must be {VERSION}")
    if "root" not in document:
        parser.fail("$.root", "is required")
        raise InvalidRules(parser.errors)
    root = parser.node(document["root"], "$.root", 0)
    if parser.errors:
        raise InvalidRules(parser.errors)
    return Rules(root)
