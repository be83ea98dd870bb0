"""Aggregates are exact decimals on both sides: the compiled `numeric` sum and the evaluator's
`Decimal` one; `avg op v` is decided as `sum op v * count`. Non-numeric values are ignored."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from audiences.recalculation import compiler_for_workspace
from audiences.rules.ast import parse_rules
from audiences.rules.evaluator import Evaluator, Facts
from masivo.tenancy.context import workspace_scope
from profiles.models import Customer, Event

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
# With doubles: (0.1 + 0.2) / 2 is 0.15000000000000002, 0.1 + 0.2 is 0.30000000000000004.
VALUES = [0.1, 0.2, "7", None, True]


def aggregate(fn: str, op: str, value):
    return parse_rules(
        {
            "version": 1,
            "root": {
                "event": {
                    "name": "purchase",
                    "aggregate": {"fn": fn, "property": "value", "op": op, "value": value},
                }
            },
        }
    )


CASES = [
    ("sum", "eq", 0.3, True),
    ("sum", "gt", 0.3, False),
    ("sum", "neq", 0.3, False),
    ("avg", "eq", 0.15, True),
    ("avg", "gt", 0.15, False),
    ("avg", "lte", 0.15, True),
    ("avg", "between", [0.15, 0.15], True),
    ("avg", "between", [0.1500001, 1], False),
    ("min", "eq", 0.1, True),
    ("max", "lt", 0.2, False),
]


@pytest.mark.parametrize(("fn", "op", "value", "expected"), CASES)
def test_the_evaluator(fn, op, value, expected):
    events = [("purchase", {"value": v}, NOW - timedelta(days=i)) for i, v in enumerate(VALUES)]
    evaluator = Evaluator(aggregate(fn, op, value), now=NOW)
    assert evaluator.matches(Facts(profile={}, events=events)) is expected
    assert evaluator.matches(Facts(profile={}, events=events[::-1])) is expected


@pytest.mark.parametrize(("fn", "op", "value", "expected"), CASES)
def test_the_compiled_statement(workspace, fn, op, value, expected):
    with workspace_scope(workspace.id):
        customer = Customer.objects.create(workspace=workspace, external_id="buyer")
        for number, v in enumerate(VALUES):
            Event.objects.create(
                workspace=workspace,
                customer=customer,
                name="purchase",
                properties={"value": v},
                occurred_at=NOW - timedelta(days=number),
                message_id=f"m{number}",
                source="test",
            )
        compiler = compiler_for_workspace(workspace=workspace, now=NOW)
        sql, params = compiler.members_sql(aggregate(fn, op, value))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            assert [row[0] for row in cursor.fetchall()] == ([customer.id] if expected else [])


def test_explain_reports_the_exact_average():
    events = [("purchase", {"value": v}, NOW) for v in (0.1, 0.2)]
    outcome = Evaluator(aggregate("avg", "eq", 0.15), now=NOW).explain(
        Facts(profile={}, events=events)
    )
    assert outcome.detail["aggregate"] == {"fn": "avg", "value": 0.15}
