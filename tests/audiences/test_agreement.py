"""The SQL compiler and the per-customer evaluator must agree on every customer.

Hypothesis builds a small workspace (customers with random fields, tags, traits, consent,
devices, events) and a random rule tree over the same small value domains, so that conditions
match some customers and not others; then it compares the compiled statement's member set with
the evaluator's verdict for each customer, all read back from Postgres.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences.facts import facts_for_customers
from audiences.models import Audience, Membership
from audiences.rules.ast import parse_rules
from audiences.rules.compiler import Compiler
from audiences.rules.evaluator import Evaluator
from masivo.tenancy.context import workspace_scope
from profiles.models import Customer, Device, Event
from profiles.services.settings import profile_settings_get

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
WORDS = ["", "a", "A", "ab", "Ab", "b", "MX", "mx", "x_%", "ñ"]
NUMBERS = [-1, 0, 0.5, 1, 2, 2.5, 10, 100]
SCALARS = st.one_of(st.sampled_from(WORDS), st.sampled_from(NUMBERS), st.booleans(), st.none())
JSONS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.sampled_from(["k", "n"]), inner, max_size=2)
    ),
    max_leaves=4,
)
KEYS = ["plan", "score", "flag", "nested.k"]
OFFSETS = st.integers(min_value=-60, max_value=60)


def json_doc(draw):
    document = {}
    for key in draw(st.lists(st.sampled_from(["plan", "score", "flag", "nested"]), unique=True)):
        document[key] = draw(JSONS) if key != "nested" else {"k": draw(SCALARS)}
    return document


@st.composite
def customers(draw):
    return {
        "country": draw(st.sampled_from(["", "MX", "US", "AR"])),
        "tier": draw(st.sampled_from(["", "gold", "Gold", "silver"])),
        "first_name": draw(st.sampled_from(WORDS)),
        "birth_date": draw(st.one_of(st.none(), st.dates(date(1980, 1, 1), date(2005, 12, 31)))),
        "last_seen_at": draw(st.one_of(st.none(), OFFSETS.map(lambda d: NOW + timedelta(days=d)))),
        "purchase_count": draw(st.integers(0, 3)),
        "traits": json_doc(draw),
        "tags": draw(
            st.dictionaries(
                st.sampled_from(["vip", "seg"]), SCALARS.filter(lambda v: v is not None), max_size=2
            )
        ),
        "consent": draw(
            st.dictionaries(
                st.sampled_from(["email_marketing", "advertising"]),
                st.sampled_from(["granted", "denied"]).map(lambda s: {"status": s}),
                max_size=2,
            )
        ),
        "devices": draw(
            st.lists(
                st.tuples(st.sampled_from(["ios", "android"]), st.booleans(), OFFSETS),
                max_size=2,
            )
        ),
        "events": draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["purchase", "view"]),
                    st.dictionaries(
                        st.sampled_from(["value", "category", "meta"]),
                        st.one_of(SCALARS, st.dictionaries(st.just("k"), SCALARS, max_size=1)),
                        max_size=3,
                    ),
                    OFFSETS,
                ),
                max_size=4,
            )
        ),
        "in_other": draw(st.booleans()),
    }


JSON_OPS = [
    "eq",
    "neq",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "exists",
    "not_exists",
    "is_empty",
    "is_true",
    "is_false",
]


@st.composite
def json_test(draw):
    op = draw(st.sampled_from(JSON_OPS))
    if op in ("exists", "not_exists", "is_empty", "is_true", "is_false"):
        return {"op": op}
    scalar = st.one_of(st.sampled_from(WORDS), st.sampled_from(NUMBERS), st.booleans())
    if op in ("eq", "neq"):
        return {"op": op, "value": draw(scalar)}
    if op in ("in", "not_in"):
        return {"op": op, "value": draw(st.lists(scalar, min_size=1, max_size=3))}
    if op in ("contains", "starts_with", "ends_with"):
        return {"op": op, "value": draw(st.sampled_from(WORDS))}
    if op == "between":
        low, high = sorted(draw(st.lists(st.sampled_from(NUMBERS), min_size=2, max_size=2)))
        return {"op": op, "value": [low, high]}
    return {"op": op, "value": draw(st.sampled_from(NUMBERS))}


@st.composite
def profile_leaf(draw):
    kind = draw(st.sampled_from(["text", "json", "date", "datetime", "number"]))
    if kind == "json":
        field = draw(
            st.sampled_from(
                [
                    "traits.plan",
                    "traits.score",
                    "traits.flag",
                    "traits.nested.k",
                    "tags.vip",
                    "tags.seg",
                ]
            )
        )
        return {"profile": {"field": field, **draw(json_test())}}
    if kind == "text":
        field = draw(st.sampled_from(["country", "tier", "first_name"]))
        op = draw(
            st.sampled_from(
                [
                    "eq",
                    "neq",
                    "in",
                    "not_in",
                    "contains",
                    "starts_with",
                    "ends_with",
                    "exists",
                    "not_exists",
                    "is_empty",
                ]
            )
        )
        words = st.sampled_from(["MX", "US", "gold", "Gold", "a", "A", ""])
        if op in ("exists", "not_exists", "is_empty"):
            return {"profile": {"field": field, "op": op}}
        if op in ("in", "not_in"):
            return {
                "profile": {
                    "field": field,
                    "op": op,
                    "value": draw(st.lists(words, min_size=1, max_size=3)),
                }
            }
        return {"profile": {"field": field, "op": op, "value": draw(words)}}
    if kind == "number":
        op = draw(
            st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "between", "in", "exists"])
        )
        if op == "exists":
            return {"profile": {"field": "metrics.purchase_count", "op": op}}
        if op == "between":
            return {"profile": {"field": "metrics.purchase_count", "op": op, "value": [1, 2]}}
        if op == "in":
            return {"profile": {"field": "metrics.purchase_count", "op": op, "value": [0, 2]}}
        return {
            "profile": {
                "field": "metrics.purchase_count",
                "op": op,
                "value": draw(st.integers(0, 3)),
            }
        }
    if kind == "date":
        op = draw(
            st.sampled_from(
                [
                    "before",
                    "after",
                    "on",
                    "between",
                    "within_last",
                    "within_next",
                    "anniversary_this_month",
                    "anniversary_today",
                    "exists",
                ]
            )
        )
        if op in ("anniversary_this_month", "anniversary_today", "exists"):
            return {"profile": {"field": "birth_date", "op": op}}
        if op in ("within_last", "within_next"):
            return {
                "profile": {"field": "birth_date", "op": op, "value": draw(st.integers(1, 10000))}
            }
        day = draw(st.dates(date(1980, 1, 1), date(2005, 12, 31))).isoformat()
        if op == "between":
            return (
                {"profile": {"field": "birth_date", "op": op, "value": ["1990-01-01", day]}}
                if day >= "1990-01-01"
                else {"profile": {"field": "birth_date", "op": op, "value": [day, "1990-01-01"]}}
            )
        return {"profile": {"field": "birth_date", "op": op, "value": day}}
    op = draw(
        st.sampled_from(["before", "after", "on", "within_last", "within_next", "not_exists"])
    )
    if op == "not_exists":
        return {"profile": {"field": "last_seen_at", "op": op}}
    if op in ("within_last", "within_next"):
        return {"profile": {"field": "last_seen_at", "op": op, "value": draw(st.integers(1, 60))}}
    moment = NOW + timedelta(days=draw(OFFSETS))
    value = moment.date().isoformat() if op == "on" else moment.isoformat()
    return {"profile": {"field": "last_seen_at", "op": op, "value": value}}


@st.composite
def event_leaf(draw):
    body = {"name": draw(st.sampled_from(["purchase", "view"]))}
    if draw(st.booleans()):
        body["where"] = [
            {
                "property": draw(st.sampled_from(["value", "category", "meta.k"])),
                **draw(json_test()),
            }
        ]
    op = draw(st.sampled_from(["gte", "gt", "eq", "lte", "lt", "between"]))
    body["count"] = {"op": op, "value": [0, 2] if op == "between" else draw(st.integers(0, 3))}
    window = draw(st.sampled_from([None, "last", "between"]))
    if window == "last":
        body["within"] = {
            "last": draw(st.integers(1, 60)),
            "unit": draw(st.sampled_from(["days", "hours"])),
        }
    elif window == "between":
        start = NOW + timedelta(days=draw(st.integers(-60, 0)))
        body["within"] = {"between": [start.isoformat(), (start + timedelta(days=30)).isoformat()]}
    if draw(st.booleans()):
        fn = draw(st.sampled_from(["sum", "avg", "min", "max"]))
        op = draw(st.sampled_from(["gt", "gte", "lt", "lte", "eq", "neq"]))
        body["aggregate"] = {
            "fn": fn,
            "property": "value",
            "op": op,
            "value": draw(st.sampled_from(NUMBERS)),
        }
    for bound in ("first", "last"):
        if draw(st.integers(0, 4)) == 0:
            moment = NOW + timedelta(days=draw(OFFSETS))
            body[bound] = {
                "op": draw(st.sampled_from(["before", "after"])),
                "value": moment.isoformat(),
            }
    return {"event": body}


LEAVES = st.one_of(
    profile_leaf(),
    event_leaf(),
    st.builds(
        lambda allowed, purpose: {"consent": {"purpose": purpose, "allowed": allowed}},
        st.booleans(),
        st.sampled_from(["email_marketing", "advertising"]),
    ),
    st.builds(
        lambda has, platform: {"device": {"has_active": has, "platform": platform}},
        st.booleans(),
        st.sampled_from([None, "ios", "android"]),
    ),
    st.booleans().map(lambda member: {"audience": {"id": 0, "in": member}}),
)
TREES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda c: {"all": c}),
        st.lists(inner, min_size=1, max_size=3).map(lambda c: {"any": c}),
        inner.map(lambda c: {"not": c}),
    ),
    max_leaves=5,
)


def with_audience_id(node, audience_id):
    if isinstance(node, dict):
        if "audience" in node:
            return {"audience": {**node["audience"], "id": audience_id}}
        return {key: with_audience_id(value, audience_id) for key, value in node.items()}
    if isinstance(node, list):
        return [with_audience_id(item, audience_id) for item in node]
    return node


def plant(workspace, people, other):
    ids = []
    for number, person in enumerate(people):
        customer = Customer.objects.create(
            workspace=workspace,
            external_id=f"c{number}",
            **{k: v for k, v in person.items() if k not in ("devices", "events", "in_other")},
        )
        ids.append(customer.id)
        for index, (platform, enabled, offset) in enumerate(person["devices"]):
            Device.objects.create(
                workspace=workspace,
                customer=customer,
                token=f"t{number}-{index}",
                platform=platform,
                push_enabled=enabled,
                expires_at=NOW + timedelta(days=offset),
            )
        for index, (name, properties, offset) in enumerate(person["events"]):
            Event.objects.create(
                workspace=workspace,
                customer=customer,
                name=name,
                properties=properties,
                occurred_at=NOW + timedelta(days=offset),
                message_id=f"m{number}-{index}",
                source="test",
            )
        if person["in_other"]:
            Membership.objects.create(
                workspace=workspace, audience=other, customer=customer, source="api"
            )
    return ids


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    people=st.lists(customers(), min_size=1, max_size=5),
    tree=TREES,
    opt_out=st.booleans(),
)
def test_compiler_and_evaluator_agree(workspace, people, tree, opt_out):
    with workspace_scope(workspace.id), transaction.atomic():
        settings_row = profile_settings_get(workspace=workspace)
        settings_row.consent_regime = "opt_out" if opt_out else "opt_in"
        settings_row.save()
        other = Audience.objects.create(workspace=workspace, name="other")
        ids = plant(workspace, people, other)
        rules = parse_rules({"version": 1, "root": with_audience_id(tree, other.id)})

        sql, params = Compiler(
            workspace_id=workspace.id, now=NOW, consent_opt_out=opt_out
        ).members_sql(rules)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            by_sql = {row[0] for row in cursor.fetchall()}

        evaluator = Evaluator(rules, now=NOW)
        facts = facts_for_customers(workspace=workspace, rules=rules, customer_ids=ids)
        by_evaluator = {cid for cid, fact in facts.items() if evaluator.matches(fact)}

        assert by_sql == by_evaluator, {
            cid: evaluator.explain(facts[cid]).as_dict() for cid in by_sql ^ by_evaluator
        }
        transaction.set_rollback(True)
