"""How audiences read on the dashboard: rules as sentences, explanations as checked trees, the
size sparkline, and the option lists the rule builder (rule-builder.js) offers.

Everything here is presentation: the rule language itself lives in audiences.rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from audiences.rules.ast import AGGREGATES, COUNT_OPS, NO_VALUE, OPERATORS, TIME_UNITS
from audiences.rules.fields import JSON, METRIC_COLUMNS, PROFILE_COLUMNS
from profiles.models import ConsentPurpose, Device

FIELD_LABELS = {
    "external_id": "External id", "email": "Email", "phone": "Phone",
    "first_name": "First name", "last_name": "Last name", "gender": "Gender",
    "birth_date": "Birth date", "country": "Country", "city": "City", "timezone": "Time zone",
    "locale": "Locale", "tier": "Tier", "status": "Status", "created_at": "Created",
    "updated_at": "Updated", "last_seen_at": "Last seen",
    "metrics.purchase_count": "Purchases (lifetime)",
    "metrics.purchase_total": "Purchase total (lifetime)",
    "metrics.last_purchase_at": "Last purchase",
    "metrics.purchases_30d_count": "Purchases (last 30 days)",
    "metrics.purchases_30d_total": "Purchase total (last 30 days)",
    "metrics.purchases_month_count": "Purchases (this month)",
    "metrics.purchases_month_total": "Purchase total (this month)",
}  # fmt: skip
OPERATOR_LABELS = {
    "eq": "is", "neq": "is not", "in": "is one of", "not_in": "is none of",
    "contains": "contains", "starts_with": "starts with", "ends_with": "ends with",
    "gt": "is more than", "gte": "is at least", "lt": "is less than", "lte": "is at most",
    "between": "is between", "on": "is on", "before": "is before", "after": "is after",
    "within_last": "is in the last", "within_next": "is in the next",
    "anniversary_this_month": "has its anniversary this month",
    "anniversary_today": "has its anniversary today",
    "exists": "has a value", "not_exists": "has no value", "is_empty": "is empty",
    "is_true": "is true", "is_false": "is false",
}  # fmt: skip
COUNT_LABELS = {
    "gte": "at least", "gt": "more than", "eq": "exactly", "lte": "at most", "lt": "fewer than",
    "between": "between",
}  # fmt: skip
GROUP_LABELS = {"all": "All of these", "any": "Any of these", "none": "None of these"}
CONSENT_LABELS = dict(ConsentPurpose.choices)
PLATFORM_LABELS = dict(Device.Platform.choices)


# Postgres stores JSON objects with their keys reordered (shortest first); people read a rule
# best as they would write it.
KEY_ORDER = [
    "version", "root", "field", "name", "property", "fn", "op", "value", "where", "count",
    "within", "last", "unit", "between", "aggregate", "first", "id", "in", "purpose", "allowed",
    "has_active", "platform",
]  # fmt: skip
_KEY_RANK = {key: rank for rank, key in enumerate(KEY_ORDER)}


def readable_order(document):
    """The same document with keys in KEY_ORDER (others after, alphabetically)."""
    if isinstance(document, dict):
        keys = sorted(document, key=lambda key: (_KEY_RANK.get(key, len(KEY_ORDER)), key))
        return {key: readable_order(document[key]) for key in keys}
    if isinstance(document, list):
        return [readable_order(item) for item in document]
    return document


def rules_json(document) -> str:
    return json.dumps(readable_order(document), ensure_ascii=False, indent=2)


# -- values ------------------------------------------------------------------------------------


def value_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, int | float):
        return f"{value:,}"
    if isinstance(value, str):
        return f"“{value}”"
    if value is None:
        return "no value"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(item) for item in value) or "[]"
    return str(value)


def field_label(name: str) -> str:
    if name in FIELD_LABELS:
        return FIELD_LABELS[name]
    prefix, _, rest = name.partition(".")
    return {"tags": f"Tag {rest}", "traits": f"Trait {rest}"}.get(prefix, name)


def comparison_text(op: str, value=None) -> str:
    """`is at least 3`, `is between 1 and 5`, `is in the last 7 days`, `has a value`."""
    label = OPERATOR_LABELS.get(op, op)
    if op in NO_VALUE:
        return label
    if op == "between" and isinstance(value, list | tuple) and len(value) == 2:
        return f"{label} {value_text(value[0])} and {value_text(value[1])}"
    if op in ("within_last", "within_next"):
        return f"{label} {value_text(value)} day{'' if value == 1 else 's'}"
    if op in ("on", "before", "after") and isinstance(value, str):
        return f"{label} {value}"
    return f"{label} {value_text(value)}"


def duration_text(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "—"
    if milliseconds < 1000:
        return f"{milliseconds} ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"


# -- rules as sentences ------------------------------------------------------------------------


@dataclass
class Line:
    """One node of a rule tree as read on the page; `result` is set in explanations."""

    text: str
    is_group: bool = False
    details: list[str] = field(default_factory=list)
    actual: str = ""
    result: bool | None = None
    children: list[Line] = field(default_factory=list)


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count:,} times"


def _count_text(count: dict | None) -> str:
    if not count:
        return "at least once"
    op, value = count.get("op"), count.get("value")
    if op == "between" and isinstance(value, list) and len(value) == 2:
        return f"between {value[0]:,} and {value[1]:,} times"
    if isinstance(value, int):
        return f"{COUNT_LABELS.get(op, op)} {_times(value)}"
    return f"{COUNT_LABELS.get(op, op)} {value} times"


def _window_text(within: dict) -> str:
    if "last" in within:
        amount, unit = within["last"], within.get("unit", "days")
        return f"in the last {amount} {unit[:-1] if amount == 1 else unit}"
    start, end = (within.get("between") or [None, None])[:2]
    return f"between {start} and {end}"


def event_lines(body: dict) -> tuple[str, list[str]]:
    name = value_text(body.get("name", ""))
    count = body.get("count")
    did_not = count == {"op": "eq", "value": 0}
    text = f"Did not perform {name}" if did_not else f"Performed {name} {_count_text(count)}"
    if "within" in body:
        text += f" {_window_text(body['within'])}"
    details = [
        f"where {item.get('property')} {comparison_text(item.get('op'), item.get('value'))}"
        for item in body.get("where", [])
    ]
    if "aggregate" in body:
        aggregate = body["aggregate"]
        details.append(
            f"{aggregate.get('fn')} of {aggregate.get('property')} "
            f"{comparison_text(aggregate.get('op'), aggregate.get('value'))}"
        )
    for bound in ("first", "last"):
        if bound in body:
            details.append(f"the {bound} time {body[bound].get('op')} {body[bound].get('value')}")
    return text, details


def leaf_text(kind: str, body: dict, audience_names: dict[int, str]) -> tuple[str, list[str]]:
    if kind == "profile":
        return f"{field_label(body['field'])} {comparison_text(body['op'], body.get('value'))}", []
    if kind == "event":
        return event_lines(body)
    if kind == "audience":
        name = audience_names.get(body["id"], f"audience {body['id']}")
        return f"{'Is' if body.get('in', True) else 'Is not'} a member of “{name}”", []
    if kind == "consent":
        label = CONSENT_LABELS.get(body["purpose"], body["purpose"])
        verb = "allows" if body.get("allowed", True) else "does not allow"
        return f"{label} consent {verb} contact", []
    platform = body.get("platform")
    where = f" ({PLATFORM_LABELS.get(platform, platform)})" if platform else ""
    has = "Has an active" if body.get("has_active", True) else "Has no active"
    return f"{has} push device{where}", []


def _group_children(kind: str, body, explanation: dict | None) -> tuple[list, list]:
    """A group's child nodes with their explanations. {"not": {"any": [...]}} reads as the
    builder shows it: one "none of" group over the inner list."""
    explained = (explanation or {}).get("children", [])
    if kind != "not":
        return body, explained
    inner_explained = explained[0] if explained else None
    if set(body) == {"any"}:
        return body["any"], (inner_explained or {}).get("children", [])
    return [body], [inner_explained] if inner_explained else []


def rule_lines(node: dict, audience_names: dict[int, str], explanation: dict | None = None) -> Line:
    """The rule tree as sentences; with the evaluator's explanation, each node's outcome too."""
    ((kind, body),) = node.items()
    result = explanation.get("result") if explanation else None
    if kind in ("all", "any", "not"):
        children, explained = _group_children(kind, body, explanation)
        lines = [
            rule_lines(child, audience_names, explained[i] if i < len(explained) else None)
            for i, child in enumerate(children)
        ]
        label = GROUP_LABELS["none" if kind == "not" else kind]
        return Line(text=label, is_group=True, result=result, children=lines)
    text, details = leaf_text(kind, body, audience_names)
    return Line(
        text=text, details=details, result=result, actual=actual_text(kind, explanation or {})
    )


def actual_text(kind: str, explanation: dict) -> str:
    """What the customer has, from one explained condition."""
    if not explanation:
        return ""
    if kind == "profile":
        return f"Their value: {value_text(explanation.get('value'))}"
    if kind == "event":
        parts = [f"Performed {_times(explanation['count'])}" if explanation["count"] else
                 "Never performed (with these filters)"]  # fmt: skip
        aggregate = explanation.get("aggregate")
        if aggregate:
            total = aggregate.get("value")
            shown = "no numeric values" if total is None else value_text(total)
            parts.append(f"{aggregate['fn']}: {shown}")
        for bound in ("first", "last"):
            if bound in explanation:
                parts.append(f"{bound}: {explanation[bound] or 'never'}")
        return " · ".join(parts)
    if kind == "audience":
        return "A member" if explanation.get("member") else "Not a member"
    if kind == "consent":
        status = explanation.get("status") or "not recorded"
        may = "may contact" if explanation.get("allowed") else "may not contact"
        return f"Consent {status}: {may}"
    if kind == "device":
        count = explanation.get("active_devices", 0)
        return f"{count} active push device{'' if count == 1 else 's'}"
    return ""


# -- the size sparkline ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sparkline:
    points: str
    area: str
    last_x: float
    last_y: float
    title: str
    width: int
    height: int


def sparkline(history: list[tuple[datetime, int]], *, width=120, height=28) -> Sparkline | None:
    """An SVG polyline of the size after each run, drawn on the server."""
    if not history:
        return None
    sizes = [size for _, size in history]
    low, high = min(sizes), max(sizes)
    pad = 3
    step = (width - 2 * pad) / max(len(sizes) - 1, 1)

    def y(size: int) -> float:
        if high == low:
            return height / 2
        return round(height - pad - (size - low) / (high - low) * (height - 2 * pad), 1)

    coordinates = [(round(pad + index * step, 1), y(size)) for index, size in enumerate(sizes)]
    if len(coordinates) == 1:
        coordinates = [(pad, coordinates[0][1]), (width - pad, coordinates[0][1])]
    points = " ".join(f"{x},{y}" for x, y in coordinates)
    area = f"M{coordinates[0][0]},{height} L" + " L".join(f"{x},{y}" for x, y in coordinates)
    area += f" L{coordinates[-1][0]},{height} Z"
    runs = len(sizes)
    title = f"Size after the last {runs} run{'s' if runs != 1 else ''}: {low:,} to {high:,}"
    if low == high:
        title = f"Size after the last {runs} run{'s' if runs != 1 else ''}: {low:,}"
    return Sparkline(points, area, *coordinates[-1], title, width, height)


# -- what the rule builder offers --------------------------------------------------------------


def _field_option(name: str, kind: str, json_type: str | None = None) -> dict:
    option = {"value": name, "label": field_label(name), "type": kind}
    if json_type:
        option["json_type"] = json_type
    return option


def builder_options(
    *,
    keys_seen: dict[str, list[dict]],
    event_names: list[str],
    audiences: list[dict],
    event_properties_url: str,
) -> dict:
    """Everything rule-builder.js needs to offer choices, from the rule language's own tables."""
    return {
        "fields": [
            {
                "group": "Profile",
                "options": [
                    _field_option(name, kind) for name, (_, kind) in PROFILE_COLUMNS.items()
                ],
            },
            {
                "group": "Metrics",
                "options": [
                    _field_option(f"metrics.{name}", kind)
                    for name, (_, kind) in METRIC_COLUMNS.items()
                ],
            },
            {
                "group": "Tags",
                "options": [
                    _field_option(f"tags.{key['path']}", JSON, key["type"])
                    for key in keys_seen["tags"]
                ],
            },
            {
                "group": "Traits",
                "options": [
                    _field_option(f"traits.{key['path']}", JSON, key["type"])
                    for key in keys_seen["traits"]
                ],
            },
        ],
        "operators": {kind: list(ops) for kind, ops in OPERATORS.items()},
        "operator_labels": OPERATOR_LABELS,
        "no_value": sorted(NO_VALUE),
        "count_ops": [[op, COUNT_LABELS[op]] for op in COUNT_OPS],
        "aggregates": list(AGGREGATES),
        "aggregate_ops": ["eq", "neq", "gt", "gte", "lt", "lte", "between"],
        "time_units": list(TIME_UNITS),
        "consent_purposes": [list(choice) for choice in ConsentPurpose.choices],
        "platforms": [list(choice) for choice in Device.Platform.choices],
        "events": event_names,
        "audiences": audiences,
        "event_properties_url": event_properties_url,
    }
