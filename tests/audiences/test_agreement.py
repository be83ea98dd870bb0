"""The SQL compiler, the per-customer evaluator and real time must agree on every customer.

Hypothesis builds two small workspaces (customers with random fields, tags, traits, consent,
devices, events and decimal metrics; some anonymous) and two random rule trees over the same
small value domains, so that conditions match some customers and not others. In each workspace
the trees become real-time audiences: `main`, and a `companion` that names an event `main` never
does (so real time loads more event names than either needs) and may reference `main`. Real time
(`audiences_reevaluate`) judges every customer of both workspaces from a random starting
membership; then, on the state it left, these must all give the same member set:
- the compiled statement,
- the evaluator on facts loaded for the one rule,
- the evaluator on facts loaded the real-time way (events pruned by `event_windows`, loaded for
  both audiences and filtered to each one's names by `_with_events_named`),
- the memberships real time wrote (and its entered/exited counts, and `size`).
Anonymous customers and the other workspace's customers are never members on any path.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences.facts import event_windows, facts_for_customers
from audiences.membership import CAUSE_REALTIME, membership_apply
from audiences.models import Audience, Membership
from audiences.realtime import (
    _Needs,
    _with_events_named,
    audiences_reevaluate,
    realtime_memberships_update,
)
from audiences.recalculation import compiler_for_workspace
from audiences.rules.ast import parse_rules
from audiences.rules.evaluator import Evaluator
from audiences.services import audience_create, list_members_change
from masivo.tenancy.context import workspace_scope
from profiles.changes import ANYTHING
from profiles.models import Customer, Device, Event
from profiles.services.settings import profile_settings_get

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
WORDS = ["", "a", "A", "ab", "Ab", "b", "MX", "mx", "x_%", "ñ"]
# 0.1 + 0.2 + 0.3 is 0.6 or 0.6000000000000001 as doubles, by the order they are added in: the
# aggregates must add exactly (tests/audiences/test_agreement_findings.py).
NUMBERS = [-1, 0, 0.1, 0.2, 0.5, 0.6, 1, 2, 2.5, 10, 100]
PRESENT = st.one_of(st.sampled_from(WORDS), st.sampled_from(NUMBERS), st.booleans())
SCALARS = st.one_of(PRESENT, st.none())
JSONS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.sampled_from(["k", "n"]), inner, max_size=2)
    ),
    max_leaves=4,
)
KEYS = ["plan", "score", "flag", "nested.k"]
OFFSETS = st.integers(min_value=-60, max_value=60)
EVENT_NAMES = ["purchase", "view", "signup"]
# Amounts in cents, and thresholds around them: 10.005 falls between two cents, and
# 0.30000000000000004 (0.1 + 0.2 as a double) is not the double 0.30 converts to.
MONEY = st.sampled_from(
    [Decimal(v) for v in ("0.00", "0.10", "0.30", "9.99", "10.00", "10.01", "10.10", "99.95")]
)
AMOUNTS = [0, 1, 2, 3, 0.1, 0.3, 0.30000000000000004, 9.99, 10, 10.005, 10.01, 10.1, 99.95, 100]
METRIC_NUMBERS = [
    "metrics.purchase_count",
    "metrics.purchase_total",
    "metrics.purchases_30d_count",
    "metrics.purchases_30d_total",
    "metrics.purchases_month_count",
    "metrics.purchases_month_total",
]
MOMENTS = st.one_of(st.none(), OFFSETS.map(lambda d: NOW + timedelta(days=d)))


TRAIT_KEYS = st.lists(st.sampled_from(["plan", "score", "flag", "nested"]), unique=True)
NESTED = st.fixed_dictionaries({"k": SCALARS})


@st.composite
def traits(draw):
    return {key: draw(NESTED if key == "nested" else JSONS) for key in draw(TRAIT_KEYS)}


# Strategies built once: hypothesis is far slower drawing from one built anew on every draw.
CUSTOMERS = st.fixed_dictionaries(
    {
        "workspace": st.sampled_from([0, 1]),
        "is_anonymous": st.integers(0, 3).map(lambda n: n == 0),
        "country": st.sampled_from(["", "MX", "US", "AR"]),
        "tier": st.sampled_from(["", "gold", "Gold", "silver"]),
        "first_name": st.sampled_from(WORDS),
        "birth_date": st.one_of(st.none(), st.dates(date(1980, 1, 1), date(2005, 12, 31))),
        "last_seen_at": MOMENTS,
        "purchase_count": st.integers(0, 3),
        "purchase_total": MONEY,
        "last_purchase_at": MOMENTS,
        "purchases_30d_count": st.integers(0, 3),
        "purchases_30d_total": MONEY,
        "purchases_month_count": st.integers(0, 3),
        "purchases_month_total": MONEY,
        "traits": traits(),
        "tags": st.dictionaries(st.sampled_from(["vip", "seg"]), PRESENT, max_size=2),
        "consent": st.dictionaries(
            st.sampled_from(["email_marketing", "advertising"]),
            st.sampled_from(["granted", "denied"]).map(lambda s: {"status": s}),
            max_size=2,
        ),
        "devices": st.lists(
            st.tuples(st.sampled_from(["ios", "android"]), st.booleans(), OFFSETS), max_size=2
        ),
        "events": st.lists(
            st.tuples(
                st.sampled_from(EVENT_NAMES),
                st.dictionaries(
                    st.sampled_from(["value", "category", "meta"]),
                    st.one_of(SCALARS, st.dictionaries(st.just("k"), SCALARS, max_size=1)),
                    max_size=3,
                ),
                OFFSETS,
            ),
            max_size=4,
        ),
        "in_other": st.booleans(),
        # The real-time audiences this customer is in before real time runs (if known).
        "was_in": st.sets(st.sampled_from(["main", "companion"])),
    }
)

NOT_COLUMNS = ("workspace", "devices", "events", "in_other", "was_in")


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
        name = draw(st.sampled_from(METRIC_NUMBERS))
        op = draw(
            st.sampled_from(
                ["eq", "neq", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists"]
            )
        )
        if op == "exists":
            return {"profile": {"field": name, "op": op}}
        if op == "between":
            low, high = sorted(draw(st.lists(st.sampled_from(AMOUNTS), min_size=2, max_size=2)))
            return {"profile": {"field": name, "op": op, "value": [low, high]}}
        if op in ("in", "not_in"):
            amounts = draw(st.lists(st.sampled_from(AMOUNTS), min_size=1, max_size=3))
            return {"profile": {"field": name, "op": op, "value": amounts}}
        return {"profile": {"field": name, "op": op, "value": draw(st.sampled_from(AMOUNTS))}}
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
    name = draw(st.sampled_from(["last_seen_at", "metrics.last_purchase_at"]))
    op = draw(
        st.sampled_from(
            ["before", "after", "on", "within_last", "within_next", "exists", "not_exists"]
        )
    )
    if op in ("exists", "not_exists"):
        return {"profile": {"field": name, "op": op}}
    if op in ("within_last", "within_next"):
        return {"profile": {"field": name, "op": op, "value": draw(st.integers(1, 60))}}
    moment = NOW + timedelta(days=draw(OFFSETS))
    value = moment.date().isoformat() if op == "on" else moment.isoformat()
    return {"profile": {"field": name, "op": op, "value": value}}


@st.composite
def event_leaf(draw, names=("purchase", "view")):
    body = {"name": draw(st.sampled_from(names))}
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


def rule_trees(referable):
    """Random rule trees; audience conditions name one of `referable` (resolved to ids later)."""
    leaves = st.one_of(
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
        st.builds(
            lambda name, member: {"audience": {"id": name, "in": member}},
            st.sampled_from(referable),
            st.booleans(),
        ),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda c: {"all": c}),
            st.lists(inner, min_size=1, max_size=3).map(lambda c: {"any": c}),
            inner.map(lambda c: {"not": c}),
        ),
        max_leaves=5,
    )


TREES = rule_trees(["other"])
# Always names `signup`, which `main` never does; may reference `main`, so real time must judge
# it after `main`, on `main`'s new membership.
COMPANIONS = st.builds(
    lambda kind, signup, on_main, rest: {kind: [signup, *on_main, rest]},
    st.sampled_from(["all", "any"]),
    event_leaf(names=("signup",)),
    st.lists(
        st.booleans().map(lambda member: {"audience": {"id": "main", "in": member}}), max_size=1
    ),
    rule_trees(["other", "main"]),
)


def with_audience_ids(node, ids: dict[str, int]):
    if isinstance(node, dict):
        if "audience" in node:
            return {"audience": {**node["audience"], "id": ids[node["audience"]["id"]]}}
        return {key: with_audience_ids(value, ids) for key, value in node.items()}
    if isinstance(node, list):
        return [with_audience_ids(item, ids) for item in node]
    return node


@dataclass
class Planted:
    """One workspace's customers: all of them, the known ones, and who was in which audience."""

    ids: list[int] = field(default_factory=list)
    known: set[int] = field(default_factory=set)
    was_in: dict[str, set[int]] = field(default_factory=lambda: {"main": set(), "companion": set()})


def plant(workspace, people, *, opt_out: bool) -> Planted:
    """The workspace's regime, its uploaded list `other`, and its people (numbered across both
    workspaces, so external ids, tokens and message ids never collide)."""
    settings_row = profile_settings_get(workspace=workspace)
    settings_row.consent_regime = "opt_out" if opt_out else "opt_in"
    settings_row.save()
    other = audience_create(workspace=workspace, data={"name": "other", "kind": Audience.Kind.LIST})
    customers = Customer.objects.bulk_create(
        Customer(
            workspace=workspace,
            external_id=None if person["is_anonymous"] else f"c{number}",
            **{k: v for k, v in person.items() if k not in NOT_COLUMNS},
        )
        for number, person in people
    )
    Device.objects.bulk_create(
        Device(
            workspace=workspace,
            customer=customer,
            token=f"t{number}-{index}",
            platform=platform,
            push_enabled=enabled,
            expires_at=NOW + timedelta(days=offset),
        )
        for customer, (number, person) in zip(customers, people, strict=True)
        for index, (platform, enabled, offset) in enumerate(person["devices"])
    )
    Event.objects.bulk_create(
        Event(
            workspace=workspace,
            customer=customer,
            name=name,
            properties=properties,
            occurred_at=NOW + timedelta(days=offset),
            message_id=f"m{number}-{index}",
            source="test",
        )
        for customer, (number, person) in zip(customers, people, strict=True)
        for index, (name, properties, offset) in enumerate(person["events"])
    )
    planted, in_other = Planted(ids=[customer.id for customer in customers]), []
    for customer, (_, person) in zip(customers, people, strict=True):
        if person["is_anonymous"]:  # never a member of anything, so never was one
            continue
        planted.known.add(customer.id)
        if person["in_other"]:
            in_other.append(customer.id)
        for name in person["was_in"]:
            planted.was_in[name].add(customer.id)
    list_members_change(audience=other, add=in_other, remove=[])
    return planted


def realtime_audience(workspace, name: str, tree, ids: dict[str, int], members) -> Audience:
    """A real-time rules audience whose members are, for a start, `members`."""
    audience = audience_create(
        workspace=workspace,
        data={
            "name": name,
            "rules": {"version": 1, "root": with_audience_ids(tree, ids)},
            "is_realtime": True,
        },
    )
    membership_apply(
        workspace_id=workspace.id,
        audience_id=audience.id,
        entering=members,
        leaving=(),
        cause=CAUSE_REALTIME,
        now=NOW,
    )
    return audience


def compiled_members(workspace, rules) -> set[int]:
    sql, params = compiler_for_workspace(workspace=workspace, now=NOW).members_sql(rules)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def evaluated_members(workspace, rules, customer_ids) -> set[int]:
    """The evaluator on facts loaded for this rule alone; anonymous customers never match (as
    `audience_explain` answers)."""
    evaluator = Evaluator(rules, now=NOW)
    facts = facts_for_customers(workspace=workspace, rules=rules, customer_ids=customer_ids)
    return {
        cid
        for cid, fact in facts.items()
        if evaluator.matches(fact) and not fact.profile["is_anonymous"]
    }


def judged_the_realtime_way(workspace, audiences, customer_ids):
    """Facts loaded once for several audiences as real time loads them (every audience's event
    names, pruned by `event_windows`), each audience judged on the events it names; returns
    (audience name → members, the customers whose facts were loaded)."""
    parsed = {audience.name: parse_rules(audience.rules) for audience in audiences}
    names = set().union(*(rules.event_names for rules in parsed.values()))
    referenced = set().union(*(rules.audience_ids for rules in parsed.values()))
    facts = facts_for_customers(
        workspace=workspace,
        rules=_Needs(names, referenced | {audience.id for audience in audiences}),
        customer_ids=customer_ids,
        event_since=event_windows(parsed.values(), NOW),
    )
    members = {
        name: {
            cid
            for cid, fact in facts.items()
            if not fact.profile["is_anonymous"]
            and Evaluator(rules, now=NOW).matches(
                _with_events_named(fact, rules.event_names, names)
            )
        }
        for name, rules in parsed.items()
    }
    return members, set(facts)


def assert_every_path_agrees(workspace, planted: Planted, tree, companion, everyone: list[int]):
    """Inside the workspace's scope; `everyone` holds both workspaces' customers."""
    other = Audience.objects.get(name="other")
    main = realtime_audience(workspace, "main", tree, {"other": other.id}, planted.was_in["main"])
    second = realtime_audience(
        workspace,
        "companion",
        companion,
        {"other": other.id, "main": main.id},
        planted.was_in["companion"],
    )
    audiences = [main, second]
    applied = audiences_reevaluate(
        workspace=workspace,
        audiences=audiences,
        customer_ids=everyone,
        cause=CAUSE_REALTIME,
        now=NOW,
    )

    # Every path reads the state real time left: the companion may reference main's members.
    compiled = {a.name: compiled_members(workspace, parse_rules(a.rules)) for a in audiences}
    realtime_way, loaded = judged_the_realtime_way(workspace, audiences, everyone)
    answers = {
        "evaluator": {
            a.name: evaluated_members(workspace, parse_rules(a.rules), everyone) for a in audiences
        },
        "evaluator on real-time facts": realtime_way,
        "written by real time": {
            a.name: set(Membership.objects.filter(audience=a).values_list("customer_id", flat=True))
            for a in audiences
        },
    }
    assert answers == dict.fromkeys(answers, compiled)
    assert compiled["main"] | compiled["companion"] <= planted.known
    assert loaded == set(planted.ids)
    assert applied == {
        a.id: (
            len(compiled[a.name] - planted.was_in[a.name]),
            len(planted.was_in[a.name] - compiled[a.name]),
        )
        for a in audiences
    }
    assert {a.name: Audience.objects.get(id=a.id).size for a in audiences} == {
        name: len(members) for name, members in compiled.items()
    }
    # What the ingestion follow-up calls, told that anything may have changed for everyone:
    # real time already left nothing to do.
    changes = {customer_id: {ANYTHING} for customer_id in everyone}
    assert realtime_memberships_update(workspace=workspace, changes=changes, now=NOW) == {
        main.id: (0, 0),
        second.id: (0, 0),
    }


@settings(
    max_examples=80,
    deadline=None,
    report_multiple_bugs=False,  # one bug shrunk in seconds rather than each in minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    people=st.lists(CUSTOMERS, min_size=1, max_size=8),
    tree=TREES,
    companion=COMPANIONS,
    opt_outs=st.tuples(st.booleans(), st.booleans()),
)
def test_compiler_evaluator_and_realtime_agree(
    workspace, other_workspace, people, tree, companion, opt_outs
):
    workspaces = [workspace, other_workspace]
    with transaction.atomic():
        planted = []
        for index, here in enumerate(workspaces):
            with workspace_scope(here.id):
                mine = [
                    (n, person) for n, person in enumerate(people) if person["workspace"] == index
                ]
                planted.append(plant(here, mine, opt_out=opt_outs[index]))
        everyone = sorted(planted[0].ids + planted[1].ids)
        for here, theirs in zip(workspaces, planted, strict=True):
            with workspace_scope(here.id):
                assert_every_path_agrees(here, theirs, tree, companion, everyone)
        transaction.set_rollback(True)
