"""Disagreements found while extending the agreement property test (test_agreement.py), each
kept as a small test of its own once fixed.

Aggregates added doubles in whatever order the events came: the evaluator in the order
`facts_for_customers` returned them (no ORDER BY: insertion order on a small table), the
compiled statement in its plan's order (the (workspace, customer, -occurred_at) index: newest
first). Doubles do not add associatively, so purchases of 0.1, 0.2 and 0.3 summed to 0.6 one way
and 0.6000000000000001 the other: `{"aggregate": {"fn": "sum", "property": "value", "op": "eq",
"value": 0.6}}` matched in recalculation and not in real time (or the reverse) for 4 of the 6
orders the three purchases can be recorded in. Both sides now add exact decimals.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from audiences.recalculation import compiler_for_workspace
from audiences.rules.ast import parse_rules
from audiences.rules.evaluator import Evaluator, Facts
from masivo.tenancy.context import workspace_scope
from profiles.models import Customer, Event

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
SUMS_TO_0_6 = parse_rules(
    {
        "version": 1,
        "root": {
            "event": {
                "name": "purchase",
                "aggregate": {"fn": "sum", "property": "value", "op": "eq", "value": 0.6},
            }
        },
    }
)
PURCHASES = [(0.1, NOW - timedelta(days=3)), (0.2, NOW - timedelta(days=2)), (0.3, NOW)]


def test_the_evaluator_sums_the_same_events_the_same_in_any_order():
    events = [("purchase", {"value": value}, at) for value, at in PURCHASES]
    evaluator = Evaluator(SUMS_TO_0_6, now=NOW)
    verdicts = [
        evaluator.matches(Facts(profile={}, events=events)),
        evaluator.matches(Facts(profile={}, events=events[::-1])),
    ]
    assert verdicts == [True, True]


@pytest.mark.django_db
def test_the_compiled_sum_does_not_depend_on_the_plan(workspace):
    with workspace_scope(workspace.id):
        customer = Customer.objects.create(workspace=workspace, external_id="buyer")
        for number, (value, at) in enumerate(PURCHASES):  # oldest first: the table's order
            Event.objects.create(
                workspace=workspace,
                customer=customer,
                name="purchase",
                properties={"value": value},
                occurred_at=at,
                message_id=f"m{number}",
                source="test",
            )
        sql, params = compiler_for_workspace(workspace=workspace, now=NOW).members_sql(SUMS_TO_0_6)
        members = []
        # A table scan reads the purchases oldest first; the index newest first.
        for uses_index in (False, True):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('enable_seqscan', %(seq)s, true), "
                    "set_config('enable_indexscan', %(index)s, true), "
                    "set_config('enable_bitmapscan', %(index)s, true), "
                    "set_config('enable_indexonlyscan', %(index)s, true)",
                    {"seq": "off" if uses_index else "on", "index": "on" if uses_index else "off"},
                )
                cursor.execute(sql, params)
                members.append([row[0] for row in cursor.fetchall()])
        assert members == [[customer.id], [customer.id]]
