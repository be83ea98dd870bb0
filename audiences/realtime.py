"""Real-time membership: after events and profile changes are processed, re-evaluate exactly
the real-time audiences whose dependencies changed, for exactly the customers concerned.

The follow-up gives, per customer, the keys that changed (`event:<name>` for each event name
that arrived, and the profile-change outbox's keys: fields, traits, tags, consent, devices,
metrics, `*` for anything). Audiences are selected by the dependencies computed when their
rules were saved (audiences.dependencies). When an audience's membership changes for a
customer, the real-time audiences that reference it are judged next for that customer, in
dependency order, on facts that include the change. Each customer is judged by the evaluator
and the differences are applied by `audiences.membership`, under the per-audience advisory
lock (taken in id order, so two batches cannot deadlock). Time-based conditions keep their
scheduled sweep (audiences.scheduling).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime

from django.utils import timezone

from audiences.facts import event_windows, facts_for_customers
from audiences.membership import CAUSE_REALTIME, Cause, membership_apply, memberships_lock
from audiences.models import Audience
from audiences.recalculation import in_dependency_order
from audiences.rules.ast import parse_rules
from audiences.rules.evaluator import Evaluator, Facts
from masivo.tenancy.models import Workspace
from profiles.changes import ANYTHING, event_key


def realtime_audiences_for(keys: set[str]) -> list[Audience]:
    """The real-time audiences that depend on any of these keys, and the real-time audiences
    that reference those (transitively). The graph is read without the rules; only the chosen
    audiences are loaded whole."""
    if not keys:
        return []
    realtime = Audience.objects.filter(is_realtime=True, kind=Audience.Kind.RULES)
    if ANYTHING in keys:
        return list(realtime.order_by("id"))
    graph = list(realtime.values_list("id", "depends_on", "dependencies"))
    chosen = {id_ for id_, _, dependencies in graph if keys & set(dependencies)}
    grew = bool(chosen)
    while grew:
        grew = False
        for id_, depends_on, _ in graph:
            if id_ not in chosen and set(depends_on) & chosen:
                chosen.add(id_)
                grew = True
    return list(realtime.filter(id__in=sorted(chosen)).order_by("id")) if chosen else []


def realtime_memberships_update(
    *,
    workspace: Workspace,
    changes: dict[int, set[str]],
    now: datetime | None = None,
) -> dict[int, tuple[int, int]]:
    """Apply enters/exits for the customers in `changes` (customer id → changed keys);
    returns audience id → (entered, exited)."""
    now = now or timezone.now()
    audiences = realtime_audiences_for(set().union(*changes.values()) if changes else set())
    concerned = {
        audience.id: {
            customer_id
            for customer_id, keys in changes.items()
            if ANYTHING in keys or keys & set(audience.dependencies)
        }
        for audience in audiences
    }
    return audiences_reevaluate(
        workspace=workspace,
        audiences=audiences,
        customer_ids=sorted(changes),
        concerned=concerned,
        cause=CAUSE_REALTIME,
        now=now,
    )


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
