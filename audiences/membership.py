"""The one writer of audience membership.

Every path that changes who is in an audience (recalculation, real time, list uploads, the list
API, customers deleted, erased or merged) calls this module, and nothing else writes
`Membership` or `MembershipChange`. Each write, in the caller's transaction and under the
audience's advisory lock:

- deletes the leaving members and inserts the entering ones (an entering member who is already
  in, or a leaving one who is not, changes nothing and is not logged),
- writes one change row per real enter or exit, with its source, reason and cause,
- moves the audience's `size` by exactly the entered minus the exited.

So `size` equals the member count and replaying the change log from empty gives exactly the
current membership: tests/audiences/test_membership_state_machine.py checks both after random
sequences of every kind of write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from audiences.models import Membership, MembershipChange

MEMBERSHIP_LOCK_NAMESPACE = 7301  # pg_advisory_xact_lock(namespace, audience id)

Source = MembershipChange.Source
Reason = MembershipChange.Reason


@dataclass(frozen=True)
class Cause:
    """Why members enter and leave: recorded on every change row."""

    source: str
    enter_reason: str
    exit_reason: str
    membership_source: str  # Membership.source of the members who enter
    recalculation_id: int | None = None
    upload_id: int | None = None
    actor: str = ""


def cause_recalculation(recalculation_id: int) -> Cause:
    return Cause(
        Source.RECALCULATION,
        Reason.MATCHES,
        Reason.NO_LONGER_MATCHES,
        Membership.Source.RECALCULATION,
        recalculation_id=recalculation_id,
    )


CAUSE_REALTIME = Cause(
    Source.REALTIME, Reason.MATCHES, Reason.NO_LONGER_MATCHES, Membership.Source.REALTIME
)
CAUSE_MERGE = Cause(Source.MERGE, Reason.MATCHES, Reason.NO_LONGER_MATCHES, Membership.Source.MERGE)
# A merged-away customer's uploaded-list memberships, kept on the winner.
CAUSE_MERGE_LIST = Cause(Source.MERGE, Reason.MERGED, Reason.MERGED, Membership.Source.LIST)


def cause_list(actor: str) -> Cause:
    return Cause(Source.LIST, Reason.ADDED, Reason.REMOVED, Membership.Source.LIST, actor=actor)


def cause_upload(upload_id: int, actor: str) -> Cause:
    return Cause(
        Source.UPLOAD,
        Reason.ADDED,
        Reason.REMOVED,
        Membership.Source.LIST,
        upload_id=upload_id,
        actor=actor,
    )


def memberships_lock(audience_ids) -> None:
    """Hold these audiences' membership for this transaction: one writer at a time each.
    Taken in id order, so two writers of overlapping audiences cannot deadlock."""
    ids = sorted(set(audience_ids))
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, a) FROM unnest(%s::int[]) AS a",
            [MEMBERSHIP_LOCK_NAMESPACE, ids],
        )


# The shared tail of every write. The head defines two CTEs: `entering (customer_id)` and
# `leaving (membership_id)`, disjoint by construction.
_APPLY_TAIL = """
exited AS (
    DELETE FROM audiences_membership m
     WHERE m.id IN (SELECT membership_id FROM leaving)
    RETURNING m.customer_id
),
entered AS (
    INSERT INTO audiences_membership (workspace_id, audience_id, customer_id, since, source)
    SELECT %(workspace)s, %(audience)s, customer_id, %(now)s, %(membership_source)s
      FROM entering
    {on_conflict}
    RETURNING customer_id
),
logged AS (
    INSERT INTO audiences_membershipchange
        (workspace_id, audience_id, customer_id, kind, source, reason, actor,
         recalculation_id, upload_id, changed_at)
    SELECT %(workspace)s, %(audience)s, customer_id, 'exit', %(source)s, %(exit_reason)s,
           %(actor)s, %(recalculation)s::bigint, %(upload)s::bigint, %(now)s FROM exited
    UNION ALL
    SELECT %(workspace)s, %(audience)s, customer_id, 'enter', %(source)s, %(enter_reason)s,
           %(actor)s, %(recalculation)s::bigint, %(upload)s::bigint, %(now)s FROM entered
),
sized AS (
    UPDATE audiences_audience
       SET size = size + (SELECT count(*) FROM entered) - (SELECT count(*) FROM exited)
     WHERE workspace_id = %(workspace)s AND id = %(audience)s
)
SELECT (SELECT count(*) FROM entered), (SELECT count(*) FROM exited)
"""

_BY_IDS = """
WITH entering AS (SELECT unnest(%(entering)s::bigint[]) AS customer_id),
leaving AS (
    SELECT id AS membership_id FROM audiences_membership
     WHERE workspace_id = %(workspace)s AND audience_id = %(audience)s
       AND customer_id = ANY(%(leaving)s::bigint[])
),
"""

# The difference is one FULL JOIN of the target with the current members: Postgres can run a
# full join only as a hash or merge join, so its cost stays linear even when the planner's idea
# of the membership's size is far off (right after a large first run, before ANALYZE). The
# leaving rows are then deleted by primary key. (An anti join of the membership against the
# target CTE, which has no index, became a nested loop: still running after 15 minutes for
# 300,000 members when it was stopped.)
_TO_TARGET = """
WITH target AS MATERIALIZED ({members}),
diff AS MATERIALIZED (
    SELECT t.id AS entering, m.id AS membership_id
      FROM target t
      FULL JOIN (SELECT id, customer_id FROM audiences_membership
                  WHERE workspace_id = %(workspace)s AND audience_id = %(audience)s) m
        ON m.customer_id = t.id
     WHERE t.id IS NULL OR m.id IS NULL
),
entering AS (SELECT entering AS customer_id FROM diff WHERE entering IS NOT NULL),
leaving AS (SELECT membership_id FROM diff WHERE membership_id IS NOT NULL),
"""


def statement_params(*, workspace_id: int, audience_id: int, cause: Cause, now: datetime) -> dict:
    return {
        "workspace": workspace_id,
        "audience": audience_id,
        "now": now,
        "source": cause.source,
        "enter_reason": cause.enter_reason,
        "exit_reason": cause.exit_reason,
        "membership_source": cause.membership_source,
        "actor": cause.actor[:100],
        "recalculation": cause.recalculation_id,
        "upload": cause.upload_id,
    }


def membership_apply(
    *,
    workspace_id: int,
    audience_id: int,
    entering,
    leaving,
    cause: Cause,
    now: datetime,
) -> tuple[int, int]:
    """Add `entering` and remove `leaving` customer ids; returns (entered, exited), counting
    only real changes. Takes the audience's lock; call inside a transaction."""
    entering, leaving = sorted(set(entering)), sorted(set(leaving))
    if set(entering) & set(leaving):
        raise ValueError("a customer cannot both enter and leave in one change")
    if not entering and not leaving:
        return 0, 0
    memberships_lock([audience_id])
    params = statement_params(
        workspace_id=workspace_id, audience_id=audience_id, cause=cause, now=now
    )
    params |= {"entering": entering, "leaving": leaving}
    with connection.cursor() as cursor:
        cursor.execute(_BY_IDS + _APPLY_TAIL.format(on_conflict=_SKIP_MEMBERS), params)
        entered, exited = cursor.fetchone()
    return entered, exited


_MANY = """
WITH entering AS (
    SELECT * FROM unnest(%(enter_audiences)s::bigint[], %(enter_customers)s::bigint[])
        AS e (audience_id, customer_id)
),
leaving AS (
    SELECT m.id AS membership_id
      FROM unnest(%(leave_audiences)s::bigint[], %(leave_customers)s::bigint[])
           AS l (audience_id, customer_id)
      JOIN audiences_membership m
        ON m.workspace_id = %(workspace)s AND m.audience_id = l.audience_id
       AND m.customer_id = l.customer_id
),
exited AS (
    DELETE FROM audiences_membership m
     WHERE m.id IN (SELECT membership_id FROM leaving)
    RETURNING m.audience_id, m.customer_id
),
entered AS (
    INSERT INTO audiences_membership (workspace_id, audience_id, customer_id, since, source)
    SELECT %(workspace)s, audience_id, customer_id, %(now)s, %(membership_source)s
      FROM entering
    ON CONFLICT (workspace_id, audience_id, customer_id) DO NOTHING
    RETURNING audience_id, customer_id
),
moved AS (
    SELECT audience_id, customer_id, 'exit' AS kind FROM exited
    UNION ALL
    SELECT audience_id, customer_id, 'enter' AS kind FROM entered
),
logged AS (
    INSERT INTO audiences_membershipchange
        (workspace_id, audience_id, customer_id, kind, source, reason, actor,
         recalculation_id, upload_id, changed_at)
    SELECT %(workspace)s, audience_id, customer_id, kind, %(source)s,
           CASE kind WHEN 'enter' THEN %(enter_reason)s ELSE %(exit_reason)s END,
           %(actor)s, %(recalculation)s::bigint, %(upload)s::bigint, %(now)s
      FROM moved
),
counted AS (
    SELECT audience_id, count(*) FILTER (WHERE kind = 'enter') AS entered,
           count(*) FILTER (WHERE kind = 'exit') AS exited
      FROM moved GROUP BY audience_id
),
sized AS (
    UPDATE audiences_audience a SET size = a.size + c.entered - c.exited
      FROM counted c
     WHERE a.workspace_id = %(workspace)s AND a.id = c.audience_id
)
SELECT audience_id, entered, exited FROM counted
"""


def memberships_apply_many(
    *,
    workspace_id: int,
    changes: dict[int, tuple[set[int], set[int]]],
    cause: Cause,
    now: datetime,
    locked: bool = False,
) -> dict[int, tuple[int, int]]:
    """`membership_apply` for several audiences in one statement: `changes` maps audience id
    → (entering, leaving) customer ids. Returns audience id → (entered, exited) for each
    audience in `changes`. Takes the audiences' locks unless the caller says it holds them
    (`locked`); call inside a transaction."""
    results = {audience_id: (0, 0) for audience_id in changes}
    enter_pairs, leave_pairs = [], []
    for audience_id, (entering, leaving) in sorted(changes.items()):
        if set(entering) & set(leaving):
            raise ValueError("a customer cannot both enter and leave in one change")
        enter_pairs += [(audience_id, customer_id) for customer_id in sorted(set(entering))]
        leave_pairs += [(audience_id, customer_id) for customer_id in sorted(set(leaving))]
    if not enter_pairs and not leave_pairs:
        return results
    if not locked:
        memberships_lock(changes)
    params = statement_params(workspace_id=workspace_id, audience_id=0, cause=cause, now=now)
    params |= {
        "enter_audiences": [a for a, _ in enter_pairs],
        "enter_customers": [c for _, c in enter_pairs],
        "leave_audiences": [a for a, _ in leave_pairs],
        "leave_customers": [c for _, c in leave_pairs],
    }
    with connection.cursor() as cursor:
        cursor.execute(_MANY, params)
        for audience_id, entered, exited in cursor.fetchall():
            results[audience_id] = (entered, exited)
    return results


# Customers named as entering may already be members; a diff's entering ones never are (and the
# speculative insertion would cost every entering row an extra index probe).
_SKIP_MEMBERS = "ON CONFLICT (workspace_id, audience_id, customer_id) DO NOTHING"


def replace_statement(members_sql: str) -> str:
    """The statement `membership_replace` runs (for EXPLAIN in bench/audiences)."""
    return _TO_TARGET.format(members=members_sql) + _APPLY_TAIL.format(on_conflict="")


def membership_replace(
    *,
    workspace_id: int,
    audience_id: int,
    members_sql: str,
    members_params: dict,
    cause: Cause,
    now: datetime,
) -> tuple[int, int]:
    """Make the membership exactly the ids `members_sql` selects (one column `id`), diffed
    inside Postgres: member ids never travel to Python. Returns (entered, exited). Takes the
    audience's lock (recalculation already holds it while it reads its run: locks stack)."""
    memberships_lock([audience_id])
    params = members_params | statement_params(
        workspace_id=workspace_id, audience_id=audience_id, cause=cause, now=now
    )
    with connection.cursor() as cursor:
        cursor.execute(replace_statement(members_sql), params)
        entered, exited = cursor.fetchone()
    return entered, exited


_END_FOR_CUSTOMERS = """
WITH exited AS (
    DELETE FROM audiences_membership
     WHERE workspace_id = %(workspace)s AND customer_id = ANY(%(customers)s::bigint[])
    RETURNING audience_id, customer_id
),
logged AS (
    INSERT INTO audiences_membershipchange
        (workspace_id, audience_id, customer_id, kind, source, reason, actor, changed_at)
    SELECT %(workspace)s, audience_id, customer_id, 'exit', %(source)s, %(reason)s, %(actor)s,
           %(now)s
      FROM exited
),
counted AS (SELECT audience_id, count(*) AS n FROM exited GROUP BY audience_id),
sized AS (
    UPDATE audiences_audience a SET size = a.size - counted.n
      FROM counted
     WHERE a.workspace_id = %(workspace)s AND a.id = counted.audience_id
)
SELECT count(*) FROM exited
"""


def memberships_end_for_customers(
    *,
    workspace_id: int,
    customer_ids: list[int],
    source: str,
    reason: str,
    now: datetime,
    actor: str = "",
) -> int:
    """End every membership of these customers (deleted, erased, merged away), each with an
    exit row; returns how many ended. The caller holds the customers' rows locked (FOR UPDATE
    or a pending DELETE), so no writer can add them to another audience meanwhile."""
    if not customer_ids:
        return 0
    audience_ids = Membership.objects.filter(customer_id__in=customer_ids).values_list(
        "audience_id", flat=True
    )
    memberships_lock(audience_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            _END_FOR_CUSTOMERS,
            {
                "workspace": workspace_id,
                "customers": sorted(set(customer_ids)),
                "source": source,
                "reason": reason,
                "actor": actor[:100],
                "now": now,
            },
        )
        (ended,) = cursor.fetchone()
    return ended
