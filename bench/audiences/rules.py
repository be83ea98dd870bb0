"""The benchmarked rules, each with the best hand-written SQL for the same member set.

Hand-written SQL takes `%(w)s` (the workspace), `%(now)s` and cut-offs computed from it in
Python (so both sides use the same clock to the microsecond), and `%(ref_N)s` for the baseline's
own copy of a referenced audience. It is written for this data model the way a person who knows
Postgres would write it, as the superuser (no row-level security): plain `->>` instead of the
compiler's type-checked JSON accessors where the result is the same, joins and anti-joins
instead of `IN` inside `COALESCE`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

DAY = timedelta(days=1)


@dataclass
class Rule:
    key: str
    title: str
    root: dict  # the rules' root node; {"audience": {"ref": "r1"}} is resolved at creation
    sql: str  # hand-written SELECT of the member ids
    refs: tuple[str, ...] = field(default=())

    def document(self, ids: dict[str, int]) -> dict:
        return {"version": 1, "root": _resolve(self.root, ids)}


def _resolve(node, ids: dict[str, int]):
    if isinstance(node, dict):
        if set(node) == {"audience"} and "ref" in node["audience"]:
            body = dict(node["audience"])
            return {"audience": {"id": ids[body.pop("ref")], **body}}
        return {key: _resolve(value, ids) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, ids) for item in node]
    return node


def sql_params(*, workspace: int, now: datetime, refs: dict[str, int]) -> dict:
    return {
        "w": workspace, "now": now, "since_30d": now - 30 * DAY, "since_90d": now - 90 * DAY,
        **{f"ref_{key}": audience_id for key, audience_id in refs.items()},
    }  # fmt: skip


KNOWN = "c.workspace_id = %(w)s AND NOT c.is_anonymous"

RULES = [
    Rule(
        "r1",
        "trait only: `traits.plan` eq gold and country in MX, CO, AR",
        {
            "all": [
                {"profile": {"field": "traits.plan", "op": "eq", "value": "gold"}},
                {"profile": {"field": "country", "op": "in", "value": ["MX", "CO", "AR"]}},
            ]
        },
        f"""SELECT c.id FROM profiles_customer c
             WHERE {KNOWN} AND c.traits ->> 'plan' = 'gold' AND c.country IN ('MX', 'CO', 'AR')""",
    ),
    Rule(
        "r2",
        "event count: purchase ≥ 2 in the last 30 days",
        {
            "event": {
                "name": "purchase",
                "count": {"op": "gte", "value": 2},
                "within": {"last": 30, "unit": "days"},
            }
        },
        f"""SELECT c.id FROM profiles_customer c
              JOIN (SELECT customer_id FROM profiles_event
                     WHERE workspace_id = %(w)s AND name = 'purchase'
                       AND occurred_at >= %(since_30d)s
                     GROUP BY customer_id HAVING count(*) >= 2) e ON e.customer_id = c.id
             WHERE {KNOWN}""",
    ),
    Rule(
        "r3",
        "aggregate: sum of purchase `value` ≥ 1000 in the last 90 days",
        {
            "event": {
                "name": "purchase",
                "within": {"last": 90, "unit": "days"},
                "aggregate": {"fn": "sum", "property": "value", "op": "gte", "value": 1000},
            }
        },
        f"""SELECT c.id FROM profiles_customer c
              JOIN (SELECT customer_id FROM profiles_event
                     WHERE workspace_id = %(w)s AND name = 'purchase'
                       AND occurred_at >= %(since_90d)s
                       AND jsonb_typeof(properties -> 'value') = 'number'
                     GROUP BY customer_id
                    HAVING sum((properties ->> 'value')::float8) >= 1000) e
                ON e.customer_id = c.id
             WHERE {KNOWN}""",
    ),
    Rule(
        "r4",
        "nested: any[all[country MX, not purchase in 90 days], all[tier gold, email consent]]",
        {
            "any": [
                {
                    "all": [
                        {"profile": {"field": "country", "op": "eq", "value": "MX"}},
                        {
                            "not": {
                                "event": {
                                    "name": "purchase",
                                    "within": {"last": 90, "unit": "days"},
                                }
                            }
                        },
                    ]
                },
                {
                    "all": [
                        {"profile": {"field": "tier", "op": "eq", "value": "gold"}},
                        {"consent": {"purpose": "email_marketing", "allowed": True}},
                    ]
                },
            ]
        },
        # The workspace is opt-in (the default): allowed means recorded as granted.
        f"""SELECT c.id FROM profiles_customer c
              LEFT JOIN (SELECT DISTINCT customer_id FROM profiles_event
                          WHERE workspace_id = %(w)s AND name = 'purchase'
                            AND occurred_at >= %(since_90d)s) p ON p.customer_id = c.id
             WHERE {KNOWN}
               AND ((c.country = 'MX' AND p.customer_id IS NULL)
                    OR (c.tier = 'gold'
                        AND c.consent -> 'email_marketing' ->> 'status' = 'granted'))""",
    ),
    Rule(
        "r5",
        "audience reference: in audience (2) and not in audience (1)",
        {
            "all": [
                {"audience": {"ref": "r2", "in": True}},
                {"audience": {"ref": "r1", "in": False}},
            ]
        },
        f"""SELECT c.id FROM audiences_membership m
              JOIN profiles_customer c ON c.id = m.customer_id
             WHERE m.workspace_id = %(w)s AND m.audience_id = %(ref_r2)s AND {KNOWN}
               AND NOT EXISTS (SELECT 1 FROM audiences_membership x
                                WHERE x.workspace_id = %(w)s AND x.audience_id = %(ref_r1)s
                                  AND x.customer_id = m.customer_id)""",
        refs=("r2", "r1"),
    ),
]

# The difference applied by hand: one full join of the new set with the current members finds
# both the entering and the leaving; then the delete, the insert, the change log and the size.
APPLY = """
WITH target AS MATERIALIZED ({members}),
diff AS MATERIALIZED (
    SELECT t.id AS entering, m.customer_id AS leaving
      FROM target t
      FULL JOIN (SELECT customer_id FROM audiences_membership
                  WHERE workspace_id = %(w)s AND audience_id = %(audience)s) m
        ON m.customer_id = t.id
     WHERE t.id IS NULL OR m.customer_id IS NULL
),
exited AS (
    DELETE FROM audiences_membership m
     WHERE m.workspace_id = %(w)s AND m.audience_id = %(audience)s
       AND m.customer_id IN (SELECT leaving FROM diff WHERE leaving IS NOT NULL)
    RETURNING m.customer_id
),
entered AS (
    INSERT INTO audiences_membership (workspace_id, audience_id, customer_id, since, source)
    SELECT %(w)s, %(audience)s, entering, %(now)s, 'recalculation'
      FROM diff WHERE entering IS NOT NULL
    RETURNING customer_id
),
logged AS (
    INSERT INTO audiences_membershipchange
        (workspace_id, audience_id, customer_id, kind, source, reason, actor, changed_at)
    SELECT %(w)s, %(audience)s, customer_id, 'exit', 'recalculation', 'no_longer_matches', '',
           %(now)s FROM exited
    UNION ALL
    SELECT %(w)s, %(audience)s, customer_id, 'enter', 'recalculation', 'matches', '', %(now)s
      FROM entered
),
sized AS (
    UPDATE audiences_audience
       SET size = (SELECT count(*) FROM target)
     WHERE workspace_id = %(w)s AND id = %(audience)s
)
SELECT (SELECT count(*) FROM target), (SELECT count(*) FROM entered), (SELECT count(*) FROM exited)
"""

# Memory: the same trait rule at two sizes (about 500,000 and 5,000 members).
MEMORY_RULES = [
    ("about 500k members", {"profile": {"field": "traits.score", "op": "gte", "value": 44.5}}),
    ("about 5k members", {"profile": {"field": "traits.score", "op": "gte", "value": 99.45}}),
]


def _event(name, *, count=None, days=None, hours=None, where=None, aggregate=None, last=None):
    body: dict = {"name": name}
    if where:
        body["where"] = where
    if count:
        body["count"] = {"op": count[0], "value": count[1]}
    if days:
        body["within"] = {"last": days, "unit": "days"}
    if hours:
        body["within"] = {"last": hours, "unit": "hours"}
    if aggregate:
        fn, prop, op, value = aggregate
        body["aggregate"] = {"fn": fn, "property": prop, "op": op, "value": value}
    if last:
        body["last"] = {"op": "after", "value": last}
    return {"event": body}


def _profile(field_name, op, value=None):
    body = {"field": field_name, "op": op}
    if value is not None:
        body["value"] = value
    return {"profile": body}


def realtime_rules(now: datetime) -> list[tuple[str, dict]]:
    """Twenty real-time audiences mixing the five shapes over different events and thresholds.
    `{"audience": {"ref": N}}` names the N-th audience of this list (resolved at creation)."""
    month_ago = (now - 30 * DAY).isoformat()
    category = [{"property": "category", "op": "in", "value": ["electronics", "home"]}]
    return [
        ("rt01 bought this week", _event("purchase", days=7)),
        ("rt02 frequent buyers", _event("purchase", count=("gte", 2), days=30)),
        ("rt03 MX loyal buyers", {"all": [
            _event("purchase", count=("gte", 5), days=90), _profile("country", "eq", "MX")]}),
        ("rt04 spent 500 in 30 days",
         _event("purchase", days=30, aggregate=("sum", "value", "gte", 500))),
        ("rt05 spent 1000 in 90 days",
         _event("purchase", days=90, aggregate=("sum", "value", "gte", 1000))),
        ("rt06 high average basket", _event("purchase", aggregate=("avg", "value", "gte", 150))),
        ("rt07 big order in 60 days",
         _event("Order Completed", days=60, aggregate=("max", "revenue", "gte", 300))),
        ("rt08 cart abandoners", {"all": [
            _event("Product Added", count=("gte", 3), days=7),
            {"not": _event("purchase", days=7)}]}),
        ("rt09 browsing shoes", _event(
            "Product Viewed", count=("gte", 3), days=14,
            where=[{"property": "category", "op": "eq", "value": "shoes"}])),
        ("rt10 binge browsers", _event("Page Viewed", count=("gte", 10), hours=24)),
        ("rt11 win-back or gold", {"any": [
            {"all": [_profile("country", "eq", "MX"), {"not": _event("purchase", days=90)}]},
            {"all": [_profile("tier", "eq", "gold"),
                     {"consent": {"purpose": "email_marketing", "allowed": True}}]},
        ]}),
        ("rt12 engaged by email", {"all": [
            _event("Email Opened", days=30),
            {"consent": {"purpose": "email_marketing", "allowed": True}}]}),
        ("rt13 frequent, not this week",
         {"all": [{"audience": {"ref": 2}}, {"audience": {"ref": 1, "in": False}}]}),
        ("rt14 gold plan buyers",
         {"all": [_profile("traits.plan", "eq", "gold"), _event("purchase", days=30)]}),
        ("rt15 active app users", _event("Session Started", count=("gte", 5), days=7)),
        ("rt16 electronics and home spenders",
         _event("purchase", days=90, where=category, aggregate=("sum", "value", "gte", 300))),
        ("rt17 lapsed high scorers", {"all": [
            {"not": _event("Page Viewed", days=30)}, _profile("traits.score", "gte", 50)]}),
        ("rt18 apparel in cart, with push", {"all": [
            _event("Product Added", days=3,
                   where=[{"property": "category", "op": "eq", "value": "apparel"}]),
            {"device": {"has_active": True}}]}),
        ("rt19 searchers", _event("Search", count=("gte", 3), days=7)),
        ("rt20 ordered recently", _event("Order Completed", last=month_ago)),
    ]  # fmt: skip
