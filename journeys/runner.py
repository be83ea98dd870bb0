"""What moves enrollments: the feeds the ingestion follow-up and audiences write (events,
membership changes, profile changes), each read with a cursor of the journeys app, and the
tick that advances due enrollments. Each consumer applies its effects and advances its cursor
in one transaction (masivo.feeds), so nothing is lost or done twice across crashes; the tick
claims due enrollments with FOR UPDATE SKIP LOCKED, so workers never take the same one.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q

from audiences.apps import MEMBERSHIP_CHANGES_FEED
from journeys.batch import advance_claimed, can_enroll_many, enroll_many
from journeys.engine import (
    OPEN,
    NotEnrolled,
    advance,
    consent_changed,
    enroll,
    enrollment_exit,
    entry_key_of,
    event_arrived,
    filters_match,
    membership_changed,
    reacting_versions,
)
from journeys.graph import audience_ids, event_names
from journeys.models import Enrollment, Journey
from masivo.feeds.services import feed_consume, feed_cursor_create
from profiles.apps import PROCESSED_EVENTS_FEED, PROFILE_CHANGES_FEED
from profiles.models import Customer, Event

logger = logging.getLogger(__name__)

EVENTS = "journeys.events"
MEMBERSHIPS = "journeys.memberships"
PROFILES = "journeys.profiles"
CONSUMERS = ((PROCESSED_EVENTS_FEED, EVENTS), (MEMBERSHIP_CHANGES_FEED, MEMBERSHIPS),
             (PROFILE_CHANGES_FEED, PROFILES))  # fmt: skip
FEED_BATCH = 1000
ADVANCE_BATCH = 500
ENGINE_GROUP = 25  # enrollments the engine advances in one transaction
RETRY_AFTER_ERROR = timedelta(minutes=5)
GONE = ("deleted", "erased", "merged_away")


def consumers_start(workspace_id: int) -> None:
    """Follow the feeds from now (a journey was published; idempotent)."""
    for feed, consumer in CONSUMERS:
        feed_cursor_create(workspace_id=workspace_id, feed=feed, consumer=consumer, from_now=True)


def _open_enrollments(customer_ids):
    return (Enrollment.objects.select_for_update(of=("self",))
            .filter(customer_id__in=customer_ids, state__in=OPEN)
            .select_related("version").order_by("id"))  # fmt: skip


def _try_enroll(journey, customer, now, open_by_customer, **kwargs) -> None:
    """Enroll if the entry rules and re-entry allow it; the new enrollment joins the customer's
    open ones, so their later changes in the same feed batch reach it."""
    with contextlib.suppress(NotEnrolled):
        enrollment = enroll(journey=journey, customer=customer, now=now, **kwargs)
        open_by_customer[customer.id].append(enrollment)


def consume_events(*, workspace_id: int, now: datetime, limit: int = FEED_BATCH) -> int:
    """Events just followed up: goals, exits and waits of open enrollments, then triggers."""
    with feed_consume(workspace_id=workspace_id, feed=PROCESSED_EVENTS_FEED, consumer=EVENTS,
                      limit=limit) as batch:  # fmt: skip
        versions = reacting_versions()
        names = set().union(*(event_names(v.graph) for v in versions)) if versions else set()
        rows = [row for row in batch.rows if row["name"] in names and row["customer_id"]]
        if not rows:
            return len(batch.rows)
        times = [row["occurred_at"] for row in rows]
        events = {e.id: e for e in Event.objects.filter(
            id__in=[row["event_id"] for row in rows], occurred_at__gte=min(times),
            occurred_at__lte=max(times))}  # fmt: skip
        customers = {c.id: c for c in Customer.objects.filter(
            id__in={row["customer_id"] for row in rows})}  # fmt: skip
        open_by_customer = defaultdict(list)
        for enrollment in _open_enrollments(list(customers)):
            open_by_customer[enrollment.customer_id].append(enrollment)
        triggers = defaultdict(list)
        for version in versions:
            trigger = version.graph["trigger"]
            journey = version.journey
            if (trigger["type"] == "event" and journey.status == Journey.Status.ACTIVE
                    and journey.live_version_id == version.id):  # fmt: skip
                triggers[trigger["event"]].append(version)
        for row in rows:
            event, customer = events.get(row["event_id"]), customers.get(row["customer_id"])
            if event is None or customer is None:
                continue
            properties = event.properties or {}
            for enrollment in open_by_customer[customer.id]:
                if enrollment.is_open:
                    key = entry_key_of(enrollment.version.graph, properties)
                    event_arrived(enrollment=enrollment, name=event.name, properties=properties,
                                  entry_key=key, now=now)  # fmt: skip
            for version in triggers.get(event.name, []):
                trigger = version.graph["trigger"]
                if filters_match(trigger.get("where", []), properties, now):
                    context = {"event": event.name, "event_id": event.id,
                               "properties": properties}  # fmt: skip
                    _try_enroll(version.journey, customer, now, open_by_customer,
                                context=context,
                                entry_key=entry_key_of(version.graph, properties))  # fmt: skip
        return len(batch.rows)


def consume_memberships(*, workspace_id: int, now: datetime, limit: int = FEED_BATCH) -> int:
    """Audience entries and exits: triggers, audience waits and exits."""
    with feed_consume(workspace_id=workspace_id, feed=MEMBERSHIP_CHANGES_FEED,
                      consumer=MEMBERSHIPS, limit=limit) as batch:  # fmt: skip
        versions = reacting_versions()
        watched = set().union(*(audience_ids(v.graph) for v in versions)) if versions else set()
        rows = [row for row in batch.rows if row["audience_id"] in watched]
        if not rows:
            return len(batch.rows)
        customers = {c.id: c for c in Customer.objects.filter(
            id__in={row["customer_id"] for row in rows})}  # fmt: skip
        open_by_customer = defaultdict(list)
        for enrollment in _open_enrollments(list(customers)):
            open_by_customer[enrollment.customer_id].append(enrollment)
        # A customer with one change in the batch enters set-based (the order of their
        # changes cannot matter); one with several goes row by row, as they happened.
        changes = defaultdict(int)
        for row in rows:
            changes[row["customer_id"]] += 1
        entering = defaultdict(list)  # (version, kind) → customers entering set-based
        for row in rows:
            entered = row["kind"] == "enter"
            for enrollment in open_by_customer[row["customer_id"]]:
                if enrollment.is_open:
                    membership_changed(enrollment=enrollment, audience_id=row["audience_id"],
                                       entered=entered, now=now)  # fmt: skip
            customer = customers.get(row["customer_id"])
            if customer is None:
                continue
            wanted = "audience_entered" if entered else "audience_exited"
            for version in versions:
                trigger, journey = version.graph["trigger"], version.journey
                if (trigger["type"] == wanted and trigger["audience_id"] == row["audience_id"]
                        and journey.status == Journey.Status.ACTIVE
                        and journey.live_version_id == version.id):  # fmt: skip
                    if changes[customer.id] == 1 and can_enroll_many(version):
                        entering[version, wanted].append(customer.id)
                        continue
                    _try_enroll(
                        journey,
                        customer,
                        now,
                        open_by_customer,
                        context={"audience_id": row["audience_id"], "kind": wanted},
                    )
        for (version, wanted), ids in entering.items():
            enroll_many(version=version, customer_ids=ids, now=now,
                        context={"audience_id": version.graph["trigger"]["audience_id"],
                                 "kind": wanted})  # fmt: skip
        return len(batch.rows)


def consume_profiles(*, workspace_id: int, now: datetime, limit: int = FEED_BATCH) -> int:
    """Consent changes (consent exits) and removed customers (their enrollments end)."""
    with feed_consume(workspace_id=workspace_id, feed=PROFILE_CHANGES_FEED, consumer=PROFILES,
                      limit=limit) as batch:  # fmt: skip
        gone = {row["customer_id"] for row in batch.rows if row["kind"] in GONE}
        consent = {
            row["customer_id"]
            for row in batch.rows
            if row["kind"] not in GONE
            and any(str(k).startswith("consent:") for k in row["keys"] or [])
        }
        if gone:
            for enrollment in _open_enrollments(list(gone)):
                enrollment_exit(enrollment=enrollment, reason="customer removed", now=now)
        if consent - gone:
            customers = {c.id: c for c in Customer.objects.filter(id__in=consent - gone)}
            for enrollment in _open_enrollments(list(customers)):
                consent_changed(enrollment=enrollment, customer=customers[enrollment.customer_id],
                                now=now)  # fmt: skip
        return len(batch.rows)


def advance_due(*, workspace_id: int, now: datetime, limit: int = ADVANCE_BATCH) -> int:
    """Claim due enrollments of active journeys (SKIP LOCKED) and advance each as far as it
    goes. Plain moves (a delay or wait over, into an exit, a delay or a wait) are made for the
    whole batch in the claim's statement (journeys.batch); the others are claimed again in
    small groups and advanced by the engine, each group in a short transaction (a long one
    would hold back every feed consumer on the server), one enrollment that fails retried
    later without holding the others. Returns how many were claimed."""
    with transaction.atomic():
        claimed, rest = advance_claimed(
            workspace_id=workspace_id, versions=reacting_versions(), now=now, limit=limit
        )
    for start in range(0, len(rest), ENGINE_GROUP):
        with transaction.atomic():
            due = (
                Enrollment.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(id__in=rest[start : start + ENGINE_GROUP], state__in=OPEN,
                        next_run_at__lte=now, journey__status=Journey.Status.ACTIVE)
                .select_related("version")
                .order_by("next_run_at")
            )  # fmt: skip
            for enrollment in due:
                try:
                    with transaction.atomic():
                        advance(enrollment, now=now)
                except Exception:
                    logger.exception("enrollment %s could not advance; again later", enrollment.id)
                    Enrollment.objects.filter(id=enrollment.id).update(
                        next_run_at=now + RETRY_AFTER_ERROR
                    )
    return claimed


_ANNIVERSARY_SQL = """
SELECT c.id FROM profiles_customer c
 WHERE c.workspace_id = %(workspace)s AND NOT c.is_anonymous
   AND extract(month FROM c.birth_date) = %(month)s AND extract(day FROM c.birth_date) = %(day)s
"""


def anniversaries(*, workspace_id: int, now: datetime) -> int:
    """Date-anniversary triggers: once a day per journey, the customers whose date (minus the
    offset) is today enter, with the year as the entry key (so once a year)."""
    entered = 0
    for journey in Journey.objects.filter(status=Journey.Status.ACTIVE).select_related(
        "live_version"
    ):
        graph = journey.live_version.graph if journey.live_version else {}
        trigger = graph.get("trigger", {})
        today = now.date()
        if trigger.get("type") != "date_anniversary" or journey.anniversaries_on == today:
            continue
        day = today - timedelta(days=trigger.get("offset_days", 0))
        if trigger["field"] == "birth_date":
            with connection.cursor() as cursor:
                cursor.execute(_ANNIVERSARY_SQL, {"workspace": workspace_id, "month": day.month,
                                                  "day": day.day})  # fmt: skip
                ids = [row[0] for row in cursor.fetchall()]
        else:
            field = trigger["field"].removeprefix("traits.")
            suffix = f"-{day.month:02d}-{day.day:02d}"
            ids = list(Customer.objects.filter(
                Q(**{f"traits__{field}__endswith": suffix}), is_anonymous=False,
            ).values_list("id", flat=True))  # fmt: skip
        for customer in Customer.objects.filter(id__in=ids):
            try:
                enroll(
                    journey=journey,
                    customer=customer,
                    now=now,
                    entry_key=str(today.year),
                    context={"anniversary": trigger["field"], "date": day.isoformat()},
                )
                entered += 1
            except NotEnrolled:
                pass
        Journey.objects.filter(id=journey.id).update(anniversaries_on=today)
    return entered


def workspace_tick(*, workspace_id: int, now: datetime, rounds: int = 20) -> dict:
    """One workspace: read what happened, then advance what is due (repeated while busy)."""
    counts = defaultdict(int)
    for _ in range(rounds):
        read = (consume_events(workspace_id=workspace_id, now=now)
                + consume_memberships(workspace_id=workspace_id, now=now)
                + consume_profiles(workspace_id=workspace_id, now=now))  # fmt: skip
        advanced = advance_due(workspace_id=workspace_id, now=now)
        counts["read"] += read
        counts["advanced"] += advanced
        if read < FEED_BATCH and advanced < ADVANCE_BATCH:
            break
    counts["anniversaries"] = anniversaries(workspace_id=workspace_id, now=now)
    return dict(counts)
