"""Real-time membership: after events are processed, re-evaluate only the audiences they could
change, for the identified customers they touched.

Which audiences: real-time rules audiences whose rules mention one of the event names that
arrived, or, when profile data changed (identify), any profile field. Each customer is judged by
the evaluator and the differences are applied by `audiences.membership`, under the same
per-audience advisory lock as recalculation (taken in id order, so two batches cannot
deadlock).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from audiences.facts import event_windows, facts_for_customers
from audiences.membership import CAUSE_REALTIME, Cause, membership_apply, memberships_lock
from audiences.models import Audience
from audiences.recalculation import in_dependency_order
from audiences.rules.ast import parse_rules
from audiences.rules.evaluator import Evaluator, Facts
from masivo.tenancy.models import Workspace

PROFILE_EVENT_NAMES = {"Identify"}  # events whose arrival means profile fields changed


def audiences_touched_by(*, event_names: set[str], profile_changed: bool) -> list[Audience]:
    """The real-time audiences whose rules mention these events (or, any profile field)."""
    if not event_names and not profile_changed:
        return []
    mentions = Q(event_names__has_any_keys=sorted(event_names)) if event_names else Q(pk=None)
    if profile_changed:
        mentions |= ~Q(profile_fields=[])
    return list(
        Audience.objects.filter(mentions, is_realtime=True, kind=Audience.Kind.RULES).order_by("id")
    )


def realtime_evaluate(
    *,
    workspace: Workspace,
    customer_ids: list[int],
    event_names: set[str],
    now: datetime | None = None,
) -> dict[int, tuple[int, int]]:
    """Apply enters/exits for these customers; returns audience id → (entered, exited)."""
    now = now or timezone.now()
    profile_changed = bool(event_names & PROFILE_EVENT_NAMES)
    audiences = audiences_touched_by(
        event_names=event_names - PROFILE_EVENT_NAMES, profile_changed=profile_changed
    )
    return audiences_reevaluate(
        workspace=workspace,
        audiences=audiences,
        customer_ids=customer_ids,
        cause=CAUSE_REALTIME,
        now=now,
    )


def audiences_reevaluate(
    *,
    workspace: Workspace,
    audiences: list[Audience],
    customer_ids: list[int],
    cause: Cause,
    now: datetime,
) -> dict[int, tuple[int, int]]:
    """Judge these customers against these rules audiences with the evaluator and apply the
    differences; returns audience id → (entered, exited).

    Audiences are judged referenced-first, and each judgement updates the facts the next ones
    read, so an audience that references another sees the other's membership after this
    change. Anonymous customers are never members."""
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
    if not known:  # anonymous activity: nothing to read or write
        return {audience.id: (0, 0) for audience in audiences}
    results = {}
    for audience in audiences:
        rules = parsed[audience.id]
        evaluator = Evaluator(rules, now=now)
        current = {cid for cid, fact in known.items() if audience.id in fact.memberships}
        matching = {
            cid
            for cid, fact in known.items()
            if evaluator.matches(_with_events_named(fact, rules.event_names, names))
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
