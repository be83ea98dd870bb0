"""Real-time membership: after events are processed, re-evaluate only the audiences they could
change, for the identified customers they touched.

Which audiences: real-time rules audiences whose rules mention one of the event names that
arrived, or, when profile data changed (identify), any profile field. Each customer is judged by
the evaluator and the differences are applied with the change log, under the same per-audience
advisory lock as recalculation (taken in id order, so two batches cannot deadlock).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from audiences.facts import facts_for_customers
from audiences.models import Audience, Membership, MembershipChange
from audiences.rules.ast import parse_rules
from audiences.rules.evaluator import Evaluator
from audiences.services import membership_lock
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
    )
    known = {cid: fact for cid, fact in facts.items() if not fact.profile["is_anonymous"]}
    results = {}
    for audience in audiences:  # in id order: concurrent batches lock in the same order
        membership_lock(audience.id)
        current = set(
            Membership.objects.filter(
                audience_id=audience.id, customer_id__in=list(known)
            ).values_list("customer_id", flat=True)
        )
        evaluator = Evaluator(parsed[audience.id], now=now)
        matching = {cid for cid, fact in known.items() if evaluator.matches(fact)}
        entering = sorted(matching - current)
        leaving = sorted(current - matching)
        if entering or leaving:
            _apply(audience, entering, leaving, now)
        results[audience.id] = (len(entering), len(leaving))
    return results


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
