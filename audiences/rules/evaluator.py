"""The per-customer evaluator: the reference semantics of the rule language.

The compiler (compiler.py) must give the same membership for every customer; a property test
holds them to it. The evaluator also explains: every node reports its result and the values
that decided it.

Semantics shared with the compiler:
- A missing value (NULL, a blank text column, a missing or JSON-null path) fails every test
  except `exists`-family tests and the negative ones (`neq`, `not_in`), which it passes.
- JSON values (tags, traits, event properties) compare by type: a string equals only a string,
  a number only a number, a boolean only a boolean; `gt`/`lt`/`between` and aggregates use
  JSON numbers only (a numeric-looking string does not count). Numbers compare as doubles,
  except in aggregates: `sum`/`avg`/`min`/`max` are exact decimals (`exact_number`), so that
  neither side's result depends on the order it adds the events in.
- An event window `{"last": N}` ends at `now` (inclusive, like `within_last`): an event
  stamped ahead of the clock counts once its time has come.
- `contains`/`starts_with`/`ends_with` ignore the case of ASCII letters only.
- Dates and times are compared in UTC; `now` is passed in, so both sides see the same clock.
- Consent is THE consent policy of `profiles.consent`, in its two forms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal
from typing import Any

from audiences.rules.ast import (
    AudienceCondition,
    Comparison,
    ConsentCondition,
    DeviceCondition,
    EventCondition,
    Group,
    ProfileCondition,
    Rules,
    count_holds,
)
from audiences.rules.fields import BOOLEAN, DATE, DATETIME, JSON, NUMBER, TEXT
from profiles.consent import consent_allows, recorded_consent_status

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass
class Facts:
    """What the evaluator needs to know about one customer."""

    profile: dict[str, Any]  # column name → value (tags/traits as dicts)
    events: list[tuple[str, dict, datetime]] = field(default_factory=list)  # (name, props, at)
    devices: list[tuple[str, bool, datetime]] = field(default_factory=list)  # (platform, on, exp)
    memberships: set[int] = field(default_factory=set)
    consent_opt_out: bool = False  # the workspace regime: not recorded means allowed


@dataclass
class Outcome:
    result: bool
    node: str
    detail: dict = field(default_factory=dict)
    children: list[Outcome] = field(default_factory=list)

    def as_dict(self) -> dict:
        body = {"node": self.node, "result": self.result, **self.detail}
        if self.children:
            body["children"] = [child.as_dict() for child in self.children]
        return body


def json_type(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def json_path(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(document, dict) or key not in document:
            return None
        document = document[key]
    return document


def _fold(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _as_date(value) -> date:
    return value.astimezone(UTC).date() if isinstance(value, datetime) else value


def _json_equal(a, b) -> bool:
    kind = json_type(a)
    if kind != json_type(b):
        return False
    if kind == "number":
        return json_number(a) is not None and json_number(a) == float(b)
    return a == b


def _text_of(value, kind: str) -> str | None:
    if kind == JSON:
        return value if isinstance(value, str) else None
    return value


MAX_ABS_NUMBER = 1e300  # beyond it a JSON number does not compare (it would overflow a double)


def json_number(value) -> float | None:
    if json_type(value) != "number" or abs(value) >= MAX_ABS_NUMBER:
        return None
    return float(value)


# Enough digits that adding numbers below 1e300 down to 1e-324 (every double) never rounds.
_EXACT = Context(prec=2000)


def exact_number(value) -> Decimal:
    """A JSON number (or a rule's value) as the decimal its JSON text spells: what Postgres
    stores it as in jsonb, and what the compiler's aggregates add."""
    return Decimal(str(value))


def _number_of(value, kind: str) -> float | None:
    if kind == JSON:
        return json_number(value)
    return None if value is None else float(value)


def compare(value: Any, test: Comparison, kind: str, now: datetime) -> bool:
    """Apply one comparison to one (possibly missing) value."""
    op, expected = test.op, test.value
    if kind == TEXT and value == "":
        value = None
    if op == "exists":
        return value is not None
    if op == "not_exists":
        return value is None
    if op == "is_empty":
        return value is None or value == "" or value == [] or value == {}
    if op in ("is_true", "is_false"):
        return value is (op == "is_true") if kind in (BOOLEAN, JSON) else False
    if op == "neq":
        return value is None or not compare(value, Comparison("eq", expected), kind, now)
    if op == "not_in":
        return value is None or not compare(value, Comparison("in", expected), kind, now)
    if value is None:
        return False
    if op == "eq":
        if kind == JSON:
            return _json_equal(value, expected)
        if kind == NUMBER:
            return float(value) == expected
        return value == expected
    if op == "in":
        return any(compare(value, Comparison("eq", item), kind, now) for item in expected)
    if op in ("contains", "starts_with", "ends_with"):
        text = _text_of(value, kind)
        if text is None:
            return False
        text, needle = _fold(text), _fold(expected)
        if op == "contains":
            return needle in text
        return text.startswith(needle) if op == "starts_with" else text.endswith(needle)
    if op in ("gt", "gte", "lt", "lte") or (op == "between" and kind in (NUMBER, JSON)):
        number = _number_of(value, kind)
        if number is None:
            return False
        if op == "between":
            return expected[0] <= number <= expected[1]
        return {"gt": number > expected, "gte": number >= expected,
                "lt": number < expected, "lte": number <= expected}[op]  # fmt: skip
    if kind in (DATE, DATETIME):
        return _compare_time(value, op, expected, kind, now)
    return False


def _compare_time(value, op: str, expected, kind: str, now: datetime) -> bool:
    if op == "on":
        return _as_date(value) == _as_date(expected)
    if op in ("before", "after", "between"):
        if kind == DATE:
            value = _as_date(value)
            expected = (
                tuple(_as_date(v) for v in expected) if op == "between" else _as_date(expected)
            )
        if op == "between":
            return expected[0] <= value <= expected[1]
        return value < expected if op == "before" else value > expected
    if op in ("within_last", "within_next"):
        days = timedelta(days=expected)
        if kind == DATE:
            today = now.astimezone(UTC).date()
            if op == "within_last":
                return today - days <= value <= today
            return today <= value <= today + days
        if op == "within_last":
            return now - days <= value <= now
        return now <= value <= now + days
    today = now.astimezone(UTC).date()
    if op == "anniversary_this_month":
        return value.month == today.month
    if op == "anniversary_today":
        return (value.month, value.day) == (today.month, today.day)
    return False


def _event_matches(condition: EventCondition, name, properties, at, now) -> bool:
    if name != condition.name:
        return False
    window = condition.window
    if window is not None:
        if window.seconds is not None and not now - timedelta(seconds=window.seconds) <= at <= now:
            return False
        if window.start is not None and not (window.start <= at < window.end):
            return False
    return all(compare(json_path(properties, f.path), f.test, JSON, now) for f in condition.where)


def _aggregate(fn: str, values: list[Decimal]) -> Decimal | None:
    """For the explanation; whether it holds is `_aggregate_holds`."""
    if not values:
        return None
    if fn in ("min", "max"):
        return min(values) if fn == "min" else max(values)
    total = _EXACT.create_decimal(0)
    for value in values:
        total = _EXACT.add(total, value)
    return total if fn == "sum" else _EXACT.divide(total, len(values))


def _aggregate_holds(fn: str, values: list[Decimal], test: Comparison) -> bool:
    """Exact, like the compiler: `avg op v` is `sum op v * count`, so no rounding of the
    quotient can decide it."""
    if not values:
        return False
    total = _aggregate("sum" if fn == "avg" else fn, values)
    times = len(values) if fn == "avg" else 1

    def bound(value) -> Decimal:
        return _EXACT.multiply(exact_number(value), times)

    if test.op == "between":
        return bound(test.value[0]) <= total <= bound(test.value[1])
    expected = bound(test.value)
    return {"eq": total == expected, "neq": total != expected,
            "gt": total > expected, "gte": total >= expected,
            "lt": total < expected, "lte": total <= expected}[test.op]  # fmt: skip


class Evaluator:
    def __init__(self, rules: Rules, *, now: datetime):
        self.rules = rules
        self.now = now

    def matches(self, facts: Facts) -> bool:
        return self.explain(facts).result

    def explain(self, facts: Facts) -> Outcome:
        return self._node(self.rules.root, facts)

    def _node(self, node, facts: Facts) -> Outcome:
        if isinstance(node, Group):
            children = [self._node(child, facts) for child in node.children]
            if node.kind == "all":
                result = all(c.result for c in children)
            elif node.kind == "any":
                result = any(c.result for c in children)
            else:
                result = not children[0].result
            return Outcome(result, node.kind, children=children)
        handler = {
            ProfileCondition: self._profile,
            EventCondition: self._event,
            AudienceCondition: self._audience,
            ConsentCondition: self._consent,
            DeviceCondition: self._device,
        }[type(node)]
        return handler(node, facts)

    def _profile(self, node: ProfileCondition, facts: Facts) -> Outcome:
        ref = node.field
        value = facts.profile.get(ref.column)
        if ref.is_json:
            value = json_path(value or {}, ref.path)
        result = compare(value, node.test, ref.type, self.now)
        detail = {"field": ref.name, "op": node.test.op, "value": _plain(value)}
        if node.test.value is not None:
            detail["expected"] = _plain(node.test.value)
        return Outcome(result, "profile", detail)

    def _event(self, node: EventCondition, facts: Facts) -> Outcome:
        matching = [
            (properties, at)
            for name, properties, at in facts.events
            if _event_matches(node, name, properties, at, self.now)
        ]
        count = len(matching)
        result = count_holds(node.count, count)
        detail = {"event": node.name, "count": count, "count_test": _plain(node.count)}
        if node.aggregate:
            values = [
                exact_number(value)
                for properties, _ in matching
                if json_number(value := json_path(properties, node.aggregate.path)) is not None
            ]
            total = _aggregate(node.aggregate.fn, values)
            detail["aggregate"] = {"fn": node.aggregate.fn, "value": _plain(total)}
            result = result and _aggregate_holds(node.aggregate.fn, values, node.aggregate.test)
        for name, bound, pick in (("first", node.first, min), ("last", node.last, max)):
            if bound is None:
                continue
            moment = pick((at for _, at in matching), default=None)
            detail[name] = moment.isoformat() if moment else None
            ok = moment is not None and (
                moment < bound.value if bound.op == "before" else moment > bound.value
            )
            result = result and ok
        return Outcome(result, "event", detail)

    def _audience(self, node: AudienceCondition, facts: Facts) -> Outcome:
        member = node.audience_id in facts.memberships
        return Outcome(
            member == node.is_member, "audience", {"audience": node.audience_id, "member": member}
        )

    def _consent(self, node: ConsentCondition, facts: Facts) -> Outcome:
        consent = facts.profile.get("consent")
        allowed = consent_allows(consent, node.purpose, opt_out=facts.consent_opt_out)
        status = recorded_consent_status(consent, node.purpose)
        return Outcome(
            allowed == node.allowed,
            "consent",
            {"purpose": node.purpose, "status": status, "allowed": allowed},
        )

    def _device(self, node: DeviceCondition, facts: Facts) -> Outcome:
        active = [
            platform
            for platform, push_enabled, expires_at in facts.devices
            if push_enabled and expires_at > self.now and node.platform in (None, platform)
        ]
        return Outcome(
            bool(active) == node.has_active,
            "device",
            {"platform": node.platform, "active_devices": len(active)},
        )


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Comparison):
        return {"op": value.op, "value": _plain(value.value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "is_finite"):  # Decimal
        return float(value)
    return value
