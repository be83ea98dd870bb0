"""Real-time membership: after events and profile changes are processed, re-evaluate exactly
the real-time audiences whose dependencies changed, for exactly the customers concerned.

The follow-up gives, per customer, the keys that changed (`event:<name>` for each event name
that arrived, and the profile-change outbox's keys: fields, traits, tags, consent, devices,
metrics, `*` for anything). Audiences are selected by the dependencies computed when their
rules were saved (audiences.dependencies), through each worker's copy of the index
(audiences.realtime_cache). When an audience's membership changes for a customer, the
real-time audiences that reference it are judged next for that customer, in dependency order,
on the membership as changed. The customers are judged set-based, by the compiled rules
restricted to them (the same compiler as recalculation), and the differences are applied by
`audiences.membership`, under the per-audience advisory lock (taken in id order, so two
batches cannot deadlock). Time-based conditions keep their scheduled sweep
(audiences.scheduling).

`audiences_reevaluate` is the per-customer form (the evaluator on loaded facts) for callers
that name their audiences (a merge judges the winner against every rules audience).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from audiences.facts import event_windows, facts_for_customers
from audiences.membership import (
    CAUSE_REALTIME,
    Cause,
    membership_apply,
    memberships_apply_many,
    memberships_lock,
)
from audiences.models import Audience
from audiences.realtime_cache import (
    FINGERPRINT_SQL,
    IndexedAudience,
    RealtimeIndex,
    execute_prepared,
    realtime_index_cached,
    realtime_index_fingerprint,
    realtime_index_load,
)
from audiences.recalculation import in_dependency_order
from audiences.rules.ast import AudienceCondition, Rules, parse_rules
from audiences.rules.batch import BatchCompiler
from audiences.rules.evaluator import Evaluator, Facts
from masivo.tenancy.models import Workspace
from profiles.changes import ANYTHING, event_key


def realtime_memberships_update(
    *,
    workspace: Workspace,
    changes: dict[int, set[str]],
    now: datetime | None = None,
) -> dict[int, tuple[int, int]]:
    """Apply enters/exits for the customers in `changes` (customer id → changed keys);
    returns audience id → (entered, exited) for every audience the keys touched.

    Set-based: one statement judges every touched audience for every customer of the batch
    (the compiled rules restricted to these customers, `BatchCompiler.batch_sql`), after one that
    takes the audiences' locks. Which audiences, and their rules, come from this process's
    copy of the workspace's index (audiences.realtime_cache), checked against the fingerprint
    the evaluation statement computes: a stale copy is rebuilt and the batch judged again, so
    no batch is ever judged with old rules."""
    if not changes:
        return {}
    now = now or timezone.now()
    keys = set().union(*changes.values())
    index, is_fresh = realtime_index_cached(workspace.id), False
    for _ in range(_ATTEMPTS):
        if index is None:
            index, is_fresh = realtime_index_load(workspace.id), True
        touched = index.touched(keys)
        if not touched:
            # Nothing to judge, if the copy says so truly (most workspaces have no real-time
            # audience: one small statement, not the customers' rows).
            if is_fresh or realtime_index_fingerprint(workspace.id) == index.fingerprint:
                return {}
            index = None
            continue
        memberships_lock([audience.id for audience in touched])
        judged = _judge_batch(index, touched, sorted(changes), now)
        if judged is not None:
            break
        index = None  # the copy was stale: never judge with it
    else:
        raise RealtimeIndexUnstable(f"workspace {workspace.id}: audiences kept changing")
    concerned = {
        audience.id: {
            customer_id
            for customer_id, changed in changes.items()
            if ANYTHING in changed or changed & audience.dependencies
        }
        for audience in touched
    }
    return _apply_judged(index, touched, judged, concerned, workspace.id, now)


_ATTEMPTS = 5  # a copy rebuilt this often in one batch means audiences change continuously


class RealtimeIndexUnstable(RuntimeError):
    """The workspace's real-time audiences changed under every attempt (the follow-up's
    transaction rolls back and the sweep retries it)."""


@dataclass
class _Judged:
    """One evaluation statement's answer: per known customer, the audiences it matches and
    the ones it is a member of now."""

    matching: dict[int, set[int]]
    members: dict[int, set[int]]


def _judge_batch(
    index: RealtimeIndex, audiences: list[IndexedAudience], customer_ids: list[int], now
) -> _Judged | None:
    """Judge these customers against these audiences in one statement; None when the
    fingerprint computed by the same statement says `index` is stale."""
    compiler = BatchCompiler(
        workspace_id=index.workspace_id, now=now, consent_opt_out=index.consent_opt_out
    )
    sql, params = compiler.batch_sql(
        [audience.rules for audience in audiences], customer_ids=customer_ids
    )
    params["workspace"] = index.workspace_id
    with connection.cursor() as cursor:
        if len(customer_ids) > 1:
            # A batch's estimated cost passes jit_above_cost, and compiling the statement took
            # longer (~130 ms for 100 customers) than running it (as for recalculation).
            cursor.execute("SELECT set_config('jit', 'off', true)")
        # The fingerprint rides on the same statement (an InitPlan, computed once) and so
        # describes the rules as of the snapshot the customers were judged in.
        execute_prepared(
            cursor,
            f"SELECT {FINGERPRINT_SQL}, b.* FROM (SELECT 1) one LEFT JOIN ({sql}) b ON true",  # noqa: S608 (compiled: every value is a parameter)
            params,
        )
        rows = cursor.fetchall()
    if rows[0][0] != index.fingerprint:
        return None
    judged = _Judged(matching={}, members={})
    ids = [audience.id for audience in audiences]
    for _, customer_id, is_anonymous, members, *results in rows:
        if customer_id is None or is_anonymous:  # no customers, or never a member
            continue
        judged.members[customer_id] = set(members)
        judged.matching[customer_id] = {
            id_ for id_, holds in zip(ids, results, strict=True) if holds
        }
    return judged


def _apply_judged(index, touched, judged: _Judged, concerned, workspace_id: int, now):
    """Write the differences, referenced audiences first, in as few statements as the
    references allow: usually one for the whole batch. An audience that references one whose
    membership just moved for a customer is judged again for that customer, on the
    membership as changed: from memory when its rules read nothing but memberships, else by
    a statement, before which the differences so far are written. The audiences' locks are
    held (realtime_memberships_update took them)."""
    moved: dict[int, set[int]] = defaultdict(set)
    results = {}
    unwritten: dict[int, tuple[set[int], set[int]]] = {}

    def write():
        results.update(
            memberships_apply_many(
                workspace_id=workspace_id,
                changes=unwritten,
                cause=CAUSE_REALTIME,
                now=now,
                locked=True,
            )
        )
        unwritten.clear()

    for audience in touched:
        customers = concerned.get(audience.id, set())
        stale = set()
        for reference in audience.references:
            customers |= moved[reference]
            stale |= moved[reference]
        customers &= set(judged.members)
        stale &= customers
        matching = {cid for cid in customers if audience.id in judged.matching[cid]}
        if stale and _references_only(audience.rules):
            # Nothing but memberships to read, and they are known: no statement.
            evaluator = Evaluator(audience.rules, now=now)
            again = {
                c for c in stale if evaluator.matches(Facts({}, memberships=judged.members[c]))
            }
            matching = (matching - stale) | again
        elif stale:
            if unwritten:
                write()
            again = _judge_batch(index, [audience], sorted(stale), now)
            if again is None:
                raise RealtimeIndexUnstable(f"audience {audience.id} changed during a batch")
            matching = (matching - stale) | {c for c in stale if again.matching.get(c)}
        current = {cid for cid in customers if audience.id in judged.members[cid]}
        entering, leaving = matching - current, current - matching
        results[audience.id] = (0, 0)
        if entering or leaving:
            unwritten[audience.id] = (entering, leaving)
        moved[audience.id] = entering | leaving
        for cid in entering:
            judged.members[cid].add(audience.id)
        for cid in leaving:
            judged.members[cid].discard(audience.id)
    if unwritten:
        write()
    return results


def _references_only(rules: Rules) -> bool:
    return all(isinstance(leaf, AudienceCondition) for leaf in rules.leaves())


def realtime_evaluate_events(
    *, workspace: Workspace, customer_ids: list[int], event_names: set[str], now=None
) -> dict[int, tuple[int, int]]:
    """The same, for customers who all received events of these names."""
    keys = {event_key(name) for name in event_names}
    return realtime_memberships_update(
        workspace=workspace, changes={cid: keys for cid in customer_ids}, now=now
    )


def audiences_reevaluate(
    *,
    workspace: Workspace,
    audiences: list[Audience],
    customer_ids: list[int],
    cause: Cause,
    now: datetime,
    concerned: dict[int, set[int]] | None = None,
) -> dict[int, tuple[int, int]]:
    """Judge customers against these rules audiences with the evaluator and apply the
    differences; returns audience id → (entered, exited).

    `concerned` narrows each audience to the customers whose changes it depends on (None: all
    of `customer_ids` for every audience). Audiences are judged referenced-first, and each
    judgement updates the facts the next ones read: an audience that references another sees
    the other's membership after this change, and is judged for every customer whose
    membership of the other moved. Anonymous customers are never members."""
    if not audiences or not customer_ids:
        return {}
    audiences = in_dependency_order(audiences)
    parsed = {audience.id: parse_rules(audience.rules) for audience in audiences}
    names = set().union(*(rules.event_names for rules in parsed.values()))
    referenced = set().union(*(rules.audience_ids for rules in parsed.values()))
    # Locked before the memberships are read, so no other writer moves them in between.
    memberships_lock([audience.id for audience in audiences])
    facts = facts_for_customers(
        workspace=workspace,
        rules=_Needs(names, referenced | set(parsed)),
        customer_ids=customer_ids,
        event_since=event_windows(parsed.values(), now),
    )
    known = {cid: fact for cid, fact in facts.items() if not fact.profile["is_anonymous"]}
    moved: dict[int, set[int]] = defaultdict(set)  # audience id → customers who entered/left
    results = {}
    for audience in audiences:
        rules = parsed[audience.id]
        judged = set(known) if concerned is None else concerned.get(audience.id, set()) & set(known)
        for dependency in rules.audience_ids:
            judged |= moved[dependency]
        evaluator = Evaluator(rules, now=now)
        current = {cid for cid in judged if audience.id in known[cid].memberships}
        matching = {
            cid
            for cid in judged
            if evaluator.matches(_with_events_named(known[cid], rules.event_names, names))
        }
        entering, leaving = matching - current, current - matching
        results[audience.id] = membership_apply(
            workspace_id=workspace.id,
            audience_id=audience.id,
            entering=entering,
            leaving=leaving,
            cause=cause,
            now=now,
        )
        moved[audience.id] = entering | leaving
        for cid in entering:
            known[cid].memberships.add(audience.id)
        for cid in leaving:
            known[cid].memberships.discard(audience.id)
    return results


def _with_events_named(fact: Facts, wanted: set[str], loaded: set[str]) -> Facts:
    """The customer's facts with only the events this audience's conditions name (the
    evaluator walks every loaded event for every event condition)."""
    if wanted >= loaded:
        return fact
    return dataclasses.replace(fact, events=[e for e in fact.events if e[0] in wanted])


class _Needs:
    """The slice of Rules that facts_for_customers reads."""

    def __init__(self, event_names: set[str], audience_ids: set[int]):
        self.event_names = event_names
        self.audience_ids = audience_ids
