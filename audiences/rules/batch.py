"""The compiled rules for a few customers at once: real time's set-based form.

`Compiler` (compiler.py) writes one statement over every customer of a workspace, with each
event condition a LEFT JOIN of every customer's grouped events. Real time judges the handful of
customers a batch touched, against every audience the batch touched, so here:

- the outer query reads only those customers (`c.id = ANY(batch)`);
- every condition on one event name shares one scan of the customer's events of that name
  (an ungrouped aggregate: one row even for no events), each condition's count, aggregate,
  first and last computed over its own window and property filters with `FILTER`. A purchase
  touched ten audiences: one index scan per customer instead of ten, and one row-level-security
  InitPlan instead of ten (about 0.1 ms each on this machine);
- audience conditions read the customer's memberships, fetched once per customer (by the
  customer index, as the answer also needs them);
- the per-customer subqueries sit in a subquery with OFFSET 0, so the planner cannot inline
  them into every rule that reads them.

The tests keep the compiler's semantics: a condition needs at least one matching event unless
it `matches_without_events`, aggregates are exact numerics, and the values are the
compiler's bound parameters. tests/audiences/test_realtime_set_based.py holds this form to the
per-customer evaluator's answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from audiences.rules.ast import AudienceCondition, EventCondition, Rules
from audiences.rules.compiler import Compiler

_MEMBERS = "_rt_members"


@dataclass
class _EventScan:
    """The conditions on one event name, sharing one scan of each customer's events."""

    column: str
    name: str
    tests: list[str] = field(default_factory=list)
    # Per condition, the earliest event it can count (None: any). The scan reads from the
    # earliest of them; no upper bound, which would make the generic plan of a prepared
    # statement prefer the (workspace, customer, occurred_at) index over one with the name.
    since: list[datetime | None] = field(default_factory=list)


class BatchCompiler(Compiler):
    def __init__(self, *, workspace_id: int, now: datetime, consent_opt_out: bool):
        super().__init__(workspace_id=workspace_id, now=now, consent_opt_out=consent_opt_out)
        self.scans: dict[str, _EventScan] = {}

    def batch_sql(self, rules: list[Rules], *, customer_ids: list[int]) -> tuple[str, dict]:
        """For exactly these customers of the workspace (anonymous ones included): id,
        is_anonymous, the ids of every audience they are a member of now, then one never-NULL
        boolean per rule, in order."""
        self.params, self.joins, self.scans = {}, [], {}
        workspace = self.p(self.workspace_id)
        conditions = [self.node(document.root) for document in rules]
        per_customer = [  # SQL from catalog identifiers; every value is a bound parameter
            "ARRAY(SELECT m.audience_id FROM audiences_membership m "  # noqa: S608
            f"WHERE m.workspace_id = {workspace} AND m.customer_id = c.id) AS {_MEMBERS}"
        ]
        for scan in self.scans.values():
            filters = [
                f"e.workspace_id = {workspace}",
                "e.customer_id = c.id",
                f"e.name = {_text_literal(scan.name)}",
            ]
            if None not in scan.since:
                filters.append(f"e.occurred_at >= {self.p(min(scan.since))}")
            per_customer.append(
                f"(SELECT ARRAY[{', '.join(scan.tests)}] FROM profiles_event e "  # noqa: S608
                f"WHERE {' AND '.join(filters)}) AS {scan.column}"
            )
        inner = (
            f"SELECT c.*, {', '.join(per_customer)} FROM profiles_customer c "  # noqa: S608
            f"WHERE c.workspace_id = {workspace} "
            f"AND c.id = ANY({self.p(list(customer_ids))}::bigint[]) OFFSET 0"
        )
        columns = ", ".join(["c.id", "c.is_anonymous", f"c.{_MEMBERS}", *conditions])
        return f"SELECT {columns} FROM ({inner}) c", self.params  # noqa: S608

    def event(self, node: EventCondition) -> str:
        scan = self.scans.get(node.name)
        if scan is None:
            scan = self.scans[node.name] = _EventScan(f"_rt_events_{len(self.scans)}", node.name)
        own = self.event_own_filters(node)
        if own:
            where = " AND ".join(own)

            def over(call: str) -> str:
                return f"{call} FILTER (WHERE {where})"
        else:

            def over(call: str) -> str:
                return call

        having, count = self.event_having(node, over), over("count(*)")
        # As the grouped form: a customer without a matching event has no group.
        if node.matches_without_events:
            test = f"NOT ({count} > 0 AND NOT {having})"
        else:
            test = f"({count} > 0 AND {having})"
        scan.tests.append(f"COALESCE({test}, false)")
        scan.since.append(self._since(node))
        return f"(c.{scan.column}[{len(scan.tests)}])"

    def _since(self, node: EventCondition) -> datetime | None:
        """The earliest `occurred_at` the condition can count (None: any)."""
        window = node.window
        if window is None:
            return None
        if window.seconds is not None:
            return self.now - timedelta(seconds=window.seconds)
        return window.start

    def audience(self, node: AudienceCondition) -> str:
        member = f"({self.p(node.audience_id)}::bigint = ANY(c.{_MEMBERS}))"
        return member if node.is_member else f"(NOT {member})"


def _text_literal(text: str) -> str:
    """A string constant in the escape syntax (E'...', which reads backslashes the same way
    whatever standard_conforming_strings says). Event names are written into the statement,
    not bound: a prepared statement's generic plan then knows which name it reads and picks
    the index that has it (with the name bound it chose the customer/time index and read every
    event of the window: 776 ms for 100 customers instead of about 100)."""
    if "\x00" in text:
        raise ValueError("an event name cannot hold NUL")
    escaped = text.replace("\\", "\\\\").replace("'", "''").replace("%", "%%")
    return f"E'{escaped}'"  # % doubled: the statement is run with bound parameters
