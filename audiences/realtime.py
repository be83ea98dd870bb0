"""Real-time membership: after events are processed, re-evaluate only the audiences they could
change, for the identified customers they touched.

Which audiences: real-time rules audiences whose rules mention one of the event names that
arrived, or, when profile data changed (identify), any profile field. Each customer is judged by
the evaluator and the differences are applied with the change log, under the same per-audience
advisory lock as recalculation (taken in id order, so two batches cannot deadlock).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime

from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from audiences.facts import event_windows, facts_for_customers
from audiences.models import Audience, Membership, MembershipChange
from audiences.rules.ast import parse_rules
from audiences.rules.evaluator import Evaluator, Facts
from audiences.services import MEMBERSHIP_LOCK_NAMESPACE
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
    if not audiences or not customer_ids:
        return {}
    parsed = {audience.id: parse_rules(audience.rules) for audience in audiences}
    names = set().union(*(rules.event_names for rules in parsed.values()))
    referenced = set().union(*(rules.audience_ids for rules in parsed.values()))
    facts = facts_for_customers(
        workspace=workspace,
        rules=_Needs(names, referenced),
        customer_ids=customer_ids,
        event_since=event_windows(parsed.values(), now),
    )
    known = {cid: fact for cid, fact in facts.items() if not fact.profile["is_anonymous"]}
    if not known:  # anonymous activity: nothing to read or write
        return {audience.id: (0, 0) for audience in audiences}
    _lock_memberships([audience.id for audience in audiences])
    # Every membership of these customers in one read, filtered here: by customer only, so
    # the plan is always the customer index (a customer is in a few dozen audiences at most),
    # whatever the statistics say about an audience (`audience_id = X` alone was planned as a
    # walk of all X's members: 255 ms for a 300,000-member audience).
    current = defaultdict(set)
    for audience_id, customer_id in Membership.objects.filter(
        customer_id__in=list(known)
    ).values_list("audience_id", "customer_id"):
        current[audience_id].add(customer_id)
    results = {}
    for audience in audiences:
        rules = parsed[audience.id]
        evaluator = Evaluator(rules, now=now)
        matching = {
            cid
            for cid, fact in known.items()
            if evaluator.matches(_with_events_named(fact, rules.event_names, names))
        }
        entering = sorted(matching - current[audience.id])
        leaving = sorted(current[audience.id] - matching)
        if entering or leaving:
            _apply(audience, entering, leaving, now)
        results[audience.id] = (len(entering), len(leaving))
    return results


def _lock_memberships(audience_ids: list[int]) -> None:
    """`services.membership_lock` for several audiences in one round trip, in the given (id)
    order, so that concurrent batches lock in the same order and cannot deadlock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, a) FROM unnest(%s::int[]) AS a",
            [MEMBERSHIP_LOCK_NAMESPACE, audience_ids],
        )


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


def _apply(audience: Audience, entering: list[int], leaving: list[int], now: datetime) -> None:
    Membership.objects.bulk_create(
        [
            Membership(workspace_id=audience.workspace_id, audience=audience, customer_id=c,
                       since=now, source=Membership.Source.REALTIME)
            for c in entering
        ],
        ignore_conflicts=True,
    )  # fmt: skip
    Membership.objects.filter(audience=audience, customer_id__in=leaving).delete()
    MembershipChange.objects.bulk_create(
        [MembershipChange(workspace_id=audience.workspace_id, audience=audience, customer_id=c,
                          kind=MembershipChange.Kind.ENTER, source="realtime", changed_at=now)
         for c in entering]
        + [MembershipChange(workspace_id=audience.workspace_id, audience=audience, customer_id=c,
                            kind=MembershipChange.Kind.EXIT, source="realtime", changed_at=now)
           for c in leaving]
    )  # fmt: skip
    Audience.objects.filter(id=audience.id).update(size=F("size") + len(entering) - len(leaving))
