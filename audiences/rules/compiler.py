"""Compiles rules into one set-based SQL statement over a workspace's customers.

Every user value is a bound parameter; identifiers come only from the field catalog. Each leaf
is wrapped in COALESCE(..., false) so that NULLs never leak into NOT/OR logic: the SQL is
two-valued like the evaluator (evaluator.py holds the reference semantics).

Event and audience conditions are LEFT JOINs of one row per customer (the grouped events, the
membership row), and the leaf tests the joined id with IS [NOT] NULL, which is never NULL. In the
top-level AND, Postgres turns such a join into an inner join (and can then start from a small
event set instead of reading every customer) or an anti join; anywhere else it stays a hash
join, linear in both sides. (`c.id IN (subquery)` inside COALESCE was a SubPlan: hashed only
while the planner believed it fits in work_mem, and otherwise re-scanned for every customer.)
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from audiences.rules.ast import (
    Aggregate,
    AudienceCondition,
    Comparison,
    ConsentCondition,
    DeviceCondition,
    EventCondition,
    Group,
    ProfileCondition,
    Rules,
)
from audiences.rules.evaluator import exact_number
from audiences.rules.fields import BOOLEAN, DATE, DATETIME, JSON, NUMBER, TEXT
from profiles.consent import consent_allows_sql

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
MAX_ABS_NUMBER = "1e300"


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _fold(text: str) -> str:
    return text.translate(str.maketrans(_UPPER, _LOWER))


def _only_a_string_renders_as(text: str) -> bool:
    """True when no JSON value but the string `text` has `text` as its `#>>` rendering.

    Postgres renders numbers, booleans, objects and arrays as JSON text, which parses back to
    a non-string; anything that does not parse can only have come from a string.
    """
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError:
        return True
    except (ValueError, RecursionError):  # e.g. Python's limit on integer digits: be careful
        return False
    return isinstance(decoded, str)


class JsonValue(str):
    """A JSON value expression (`NULLIF(doc #> path, 'null')`) that also knows its `#>>` text
    form, the cheap way to test it against strings that nothing else renders as."""

    text: str


class Compiler:
    def __init__(self, *, workspace_id: int, now: datetime, consent_opt_out: bool):
        self.workspace_id = workspace_id
        self.now = now
        self.consent_opt_out = consent_opt_out
        self.params: dict = {}
        self.joins: list[str] = []

    def p(self, value) -> str:
        """A named placeholder: expressions that embed it may be repeated safely."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    # -- statement --------------------------------------------------------------------------

    def members_sql(self, rules: Rules) -> tuple[str, dict]:
        """SELECT of the matching customers' ids (known customers only)."""
        self.params, self.joins = {}, []
        workspace = self.p(self.workspace_id)
        condition = self.node(rules.root)
        sql = (
            f"SELECT c.id FROM profiles_customer c{''.join(self.joins)} "
            f"WHERE c.workspace_id = {workspace} AND NOT c.is_anonymous AND {condition}"
        )
        return sql, self.params

    def join(self, source: str) -> str:
        """LEFT JOIN a derived table with at most one row per customer; returns its alias."""
        alias = f"j{len(self.joins)}"
        self.joins.append(f" LEFT JOIN {source} {alias} ON {alias}.customer_id = c.id")
        return alias

    def node(self, node) -> str:
        if isinstance(node, Group):
            parts = [self.node(child) for child in node.children]
            if node.kind == "not":
                return f"(NOT {parts[0]})"
            joiner = " AND " if node.kind == "all" else " OR "
            return "(" + joiner.join(parts) + ")"
        handler = {
            ProfileCondition: self.profile,
            EventCondition: self.event,
            AudienceCondition: self.audience,
            ConsentCondition: self.consent,
            DeviceCondition: self.device,
        }[type(node)]
        if isinstance(node, EventCondition | AudienceCondition):
            return handler(node)  # IS [NOT] NULL on a joined id: never NULL
        return f"COALESCE({handler(node)}, false)"

    # -- values and comparisons ------------------------------------------------------------

    def json_value(self, document: str, path: tuple[str, ...]) -> str:
        placeholder = self.p(list(path))
        value = JsonValue(f"NULLIF({document} #> {placeholder}::text[], 'null'::jsonb)")
        value.text = f"({document} #>> {placeholder}::text[])"
        return value

    @staticmethod
    def json_number(value: str) -> str:
        # jsonb -> numeric is a copy of the stored number (no text round trip); the CASE arms
        # run in order, so the cast only sees numbers.
        return (
            f"(CASE WHEN jsonb_typeof({value}) <> 'number' THEN NULL "
            f"WHEN abs(({value})::numeric) < {MAX_ABS_NUMBER} "
            f"THEN ({value})::numeric::float8 END)"
        )

    @staticmethod
    def json_numeric(value: str) -> str:
        """The JSON number as the exact `numeric` it is stored as (aggregates add these)."""
        return (
            f"(CASE WHEN jsonb_typeof({value}) <> 'number' THEN NULL "
            f"WHEN abs(({value})::numeric) < {MAX_ABS_NUMBER} THEN ({value})::numeric END)"
        )

    @staticmethod
    def json_text(value: str) -> str:
        return f"(CASE WHEN jsonb_typeof({value}) = 'string' THEN {value} #>> '{{}}' END)"

    def compare(self, value: str, test: Comparison, kind: str) -> str:
        op, expected = test.op, test.value
        if op == "exists":
            return f"({value} IS NOT NULL)"
        if op == "not_exists":
            return f"({value} IS NULL)"
        if op == "is_empty":
            if kind == JSON:
                return (
                    f"({value} IS NULL OR {value} IN ('\"\"'::jsonb, '[]'::jsonb, '{{}}'::jsonb))"
                )
            return f"({value} IS NULL)"
        if op in ("is_true", "is_false"):
            literal = "true" if op == "is_true" else "false"
            if kind == JSON:
                return f"({value} = '{literal}'::jsonb)"
            return f"({value} IS {literal.upper()})" if kind == BOOLEAN else "false"
        if op in ("neq", "not_in"):
            positive = self.compare(
                value, Comparison("eq" if op == "neq" else "in", expected), kind
            )
            return f"({value} IS NULL OR NOT COALESCE({positive}, false))"
        if op == "eq":
            return self.equals(value, [expected], kind)
        if op == "in":
            return self.equals(value, list(expected), kind)
        if op in ("contains", "starts_with", "ends_with"):
            text = self.json_text(value) if kind == JSON else value
            needle = _like_escape(_fold(expected))
            pattern = {
                "contains": f"%{needle}%",
                "starts_with": f"{needle}%",
                "ends_with": f"%{needle}",
            }[op]
            return f"(translate({text}, '{_UPPER}', '{_LOWER}') LIKE {self.p(pattern)})"
        if kind in (NUMBER, JSON) and op in ("gt", "gte", "lt", "lte", "between"):
            number = self.json_number(value) if kind == JSON else value
            if op == "between":
                low, high = self.p(expected[0]), self.p(expected[1])
                return f"({number} BETWEEN {low}::float8 AND {high}::float8)"
            symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
            return f"({number} {symbol} {self.p(expected)}::float8)"
        if kind in (DATE, DATETIME):
            return self.time(value, op, expected, kind)
        return "false"

    def equals(self, value: str, expected: list, kind: str) -> str:
        if kind == TEXT:
            return f"({value} = ANY({self.p(expected)}::text[]))"
        if kind == NUMBER:
            return f"({value} = ANY({self.p([float(v) for v in expected])}::float8[]))"
        strings = [v for v in expected if isinstance(v, str)]
        booleans = [v for v in expected if isinstance(v, bool)]
        numbers = [
            float(v) for v in expected if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        parts = []
        plain = isinstance(value, JsonValue) and all(map(_only_a_string_renders_as, strings))
        if strings and plain:
            parts.append(f"({value.text} = ANY({self.p(strings)}::text[]))")
        elif strings:
            parts.append(f"({self.json_text(value)} = ANY({self.p(strings)}::text[]))")
        if numbers:
            parts.append(f"({self.json_number(value)} = ANY({self.p(numbers)}::float8[]))")
        if booleans:
            parts.append(
                f"(jsonb_typeof({value}) = 'boolean' "
                f"AND ({value} #>> '{{}}')::boolean = ANY({self.p(booleans)}::boolean[]))"
            )
        return "(" + " OR ".join(parts) + ")"

    def time(self, value: str, op: str, expected, kind: str) -> str:
        cast = "date" if kind == DATE else "timestamptz"
        if op == "on":
            day = expected.astimezone(UTC).date() if isinstance(expected, datetime) else expected
            column_day = value if kind == DATE else f"({value} AT TIME ZONE 'UTC')::date"
            return f"({column_day} = {self.p(day)}::date)"
        if op in ("before", "after"):
            symbol = "<" if op == "before" else ">"
            return f"({value} {symbol} {self.p(_for_kind(expected, kind))}::{cast})"
        if op == "between":
            low, high = (_for_kind(v, kind) for v in expected)
            return f"({value} BETWEEN {self.p(low)}::{cast} AND {self.p(high)}::{cast})"
        today = self.now.astimezone(UTC).date()
        if op in ("within_last", "within_next"):
            span = timedelta(days=expected)
            if kind == DATE:
                low, high = (today - span, today) if op == "within_last" else (today, today + span)
            else:
                low, high = (
                    (self.now - span, self.now)
                    if op == "within_last"
                    else (self.now, self.now + span)
                )
            return f"({value} BETWEEN {self.p(low)}::{cast} AND {self.p(high)}::{cast})"
        if op == "anniversary_this_month":
            return f"(EXTRACT(MONTH FROM {value}) = {self.p(today.month)})"
        if op == "anniversary_today":
            return (
                f"(EXTRACT(MONTH FROM {value}) = {self.p(today.month)} "
                f"AND EXTRACT(DAY FROM {value}) = {self.p(today.day)})"
            )
        return "false"

    # -- leaves -------------------------------------------------------------------------------

    def profile(self, node: ProfileCondition) -> str:
        ref = node.field
        if ref.is_json:
            value = self.json_value(f"c.{ref.column}", ref.path)
        elif ref.type == TEXT:
            value = f"NULLIF(c.{ref.column}, '')"
        elif ref.type == NUMBER:
            value = f"c.{ref.column}::float8"
        else:
            value = f"c.{ref.column}"
        return self.compare(value, node.test, ref.type)

    def event(self, node: EventCondition) -> str:
        filters = self.event_scan_filters(node.name) + self.event_own_filters(node)
        having = self.event_having(node)
        where = " AND ".join(filters)
        source = f"SELECT e.customer_id FROM profiles_event e WHERE {where} GROUP BY e.customer_id"
        if node.matches_without_events:  # true unless the customer's events fail the tests
            return f"({self.join(f'({source} HAVING NOT {having})')}.customer_id IS NULL)"
        return f"({self.join(f'({source} HAVING {having})')}.customer_id IS NOT NULL)"

    def event_scan_filters(self, name: str) -> list[str]:
        """Which rows are the customer's events of this name."""
        return [
            f"e.workspace_id = {self.p(self.workspace_id)}",
            "e.customer_id IS NOT NULL",
            f"e.name = {self.p(name)}",
        ]

    def event_own_filters(self, node: EventCondition) -> list[str]:
        """Which of those the condition counts: its window and property filters."""
        filters = []
        window = node.window
        if window is not None and window.seconds is not None:  # the last N units, up to now
            filters.append(
                f"e.occurred_at >= {self.p(self.now - timedelta(seconds=window.seconds))}"
            )
            filters.append(f"e.occurred_at <= {self.p(self.now)}")
        elif window is not None:
            filters.append(f"e.occurred_at >= {self.p(window.start)}")
            filters.append(f"e.occurred_at < {self.p(window.end)}")
        for item in node.where:
            prop = self.json_value("e.properties", item.path)
            filters.append(f"COALESCE({self.compare(prop, item.test, JSON)}, false)")
        return filters

    def event_having(self, node: EventCondition, over=lambda call: call) -> str:
        """The condition's tests on the aggregates of its events; `over` rewrites each
        aggregate call (batch.py adds a FILTER to it)."""
        tests = [self.count_test(over("count(*)"), node.count)]
        if node.aggregate:
            tests.append(self.aggregate_test(node.aggregate, over))
        for name, bound in (("min", node.first), ("max", node.last)):
            if bound is not None:
                symbol = "<" if bound.op == "before" else ">"
                tests.append(f"({over(f'{name}(e.occurred_at)')} {symbol} {self.p(bound.value)})")
        # Never NULL (counts, and aggregates tested only when NOT NULL), so no COALESCE: the
        # planner estimates bare comparisons better (and then may start from the few matches).
        return f"({' AND '.join(tests)})"

    def aggregate_test(self, aggregate: Aggregate, over=lambda call: call) -> str:
        """Exact, like the evaluator: `numeric` values (never doubles, whose sum depends on the
        order the plan reads the events in), compared with the rule's value as `numeric`; and
        `avg op v` as `sum op v * count`, which no rounding of the quotient can change."""
        number = self.json_numeric(self.json_value("e.properties", aggregate.path))
        if aggregate.fn == "avg":
            total, times_count = over(f"sum({number})"), f" * {over(f'count({number})')}"
        else:
            total, times_count = over(f"{aggregate.fn}({number})"), ""

        def bound(value) -> str:
            return f"{self.p(exact_number(value))}::numeric{times_count}"

        test = aggregate.test
        if test.op == "between":
            holds = f"{total} BETWEEN {bound(test.value[0])} AND {bound(test.value[1])}"
        else:
            symbol = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
            holds = f"{total} {symbol[test.op]} {bound(test.value)}"
        return f"({total} IS NOT NULL AND {holds})"

    def count_test(self, count: str, test: Comparison) -> str:
        if test.op == "between":
            return f"({count} BETWEEN {self.p(test.value[0])} AND {self.p(test.value[1])})"
        symbol = {"gte": ">=", "gt": ">", "eq": "=", "lte": "<=", "lt": "<"}[test.op]
        return f"({count} {symbol} {self.p(test.value)})"

    def audience(self, node: AudienceCondition) -> str:
        workspace, audience = self.p(self.workspace_id), self.p(node.audience_id)
        members = (  # one row per customer at most (membership_unique)
            "(SELECT m.customer_id FROM audiences_membership m "
            f"WHERE m.workspace_id = {workspace} AND m.audience_id = {audience})"
        )
        return f"({self.join(members)}.customer_id IS {'NOT ' if node.is_member else ''}NULL)"

    def consent(self, node: ConsentCondition) -> str:
        allowed = consent_allows_sql(
            "c.consent", self.p(node.purpose), opt_out=self.consent_opt_out, bind=self.p
        )
        return f"({allowed} = {self.p(node.allowed)})"

    def device(self, node: DeviceCondition) -> str:
        checks = [
            f"d.workspace_id = {self.p(self.workspace_id)}",
            "d.customer_id = c.id",
            "d.push_enabled",
            f"d.expires_at > {self.p(self.now)}",
        ]
        if node.platform:
            checks.append(f"d.platform = {self.p(node.platform)}")
        exists = f"EXISTS (SELECT 1 FROM profiles_device d WHERE {' AND '.join(checks)})"
        return exists if node.has_active else f"(NOT {exists})"


def _for_kind(value, kind: str):
    if kind == DATE:
        return value.astimezone(UTC).date() if isinstance(value, datetime) else value
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value
