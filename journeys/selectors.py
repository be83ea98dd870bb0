"""Journeys, read: lists, a customer's journeys with their step history, and the statistics
per step and per journey. Every query runs in the workspace in context (the ORM's tenant
manager; the SQL names the workspace too) and is a fixed number of queries whatever the
number of steps, enrollments or messages.

Messaging's feedback is read the way its campaign statistics read it: a journey's message
counts as delivered, opened or clicked when its status history (or its status now) reached
that stage, so a message delivered and then bounced still counts as delivered.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from journeys.models import Enrollment, Journey, JourneyVersion, StepRun
from messaging.campaigns import STAT_STATUSES
from profiles.models import Customer

STEP_STAT_KEYS = ("entered", "waiting_now", "passed", "sent", "delivered", "opened", "clicked",
                  "exited", "converted")  # fmt: skip
FEEDBACK_STAGES = ("delivered", "opened", "clicked")
DAYS_OVER_TIME = 30
OPEN = (Enrollment.State.ACTIVE, Enrollment.State.WAITING)


def journeys_list() -> QuerySet[Journey]:
    """Each with its live version, its draft's number, graph and revision (`draft_number`,
    None: no draft; `draft_graph`, `draft_revision`), in one query."""
    drafts = JourneyVersion.objects.filter(journey=OuterRef("pk"), published_at__isnull=True)
    return Journey.objects.select_related("live_version").annotate(
        draft_number=Subquery(drafts.values("number")[:1]),
        draft_graph=Subquery(drafts.values("graph")[:1]),
        draft_revision=Subquery(drafts.values("revision")[:1]),
    )


def journey_edited_graph(journey: Journey) -> dict:
    """What the builder edits: the draft's graph, else the live version's."""
    draft = journey_draft_version(journey)
    if draft is not None:
        return draft.graph
    return journey.live_version.graph if journey.live_version_id else {}


def journey_versions(journey: Journey) -> QuerySet[JourneyVersion]:
    return JourneyVersion.objects.filter(journey=journey).order_by("-number")


def journey_draft_version(journey: Journey) -> JourneyVersion | None:
    return JourneyVersion.objects.filter(journey=journey, published_at__isnull=True).first()


def enrollments_list(
    journey: Journey, *, state: str | None = None, customer_id: int | None = None
) -> QuerySet[Enrollment]:
    enrollments = Enrollment.objects.filter(journey=journey).select_related("version")
    if state:
        enrollments = enrollments.filter(state=state)
    if customer_id is not None:
        enrollments = enrollments.filter(customer_id=customer_id)
    return enrollments


def _graph_of(journey: Journey, version: JourneyVersion | None) -> dict:
    if version is not None:
        return version.graph or {}
    if journey.live_version_id is not None:
        return JourneyVersion.objects.get(id=journey.live_version_id).graph or {}
    latest = journey_versions(journey).first()
    return latest.graph if latest else {}


_STEP_SQL = """
SELECT sr.step,
       count(*),
       count(*) FILTER (WHERE sr.finished_at IS NOT NULL),
       count(*) FILTER (WHERE sr.outcome = 'sent'),
       count(*) FILTER (WHERE reached.delivered),
       count(*) FILTER (WHERE reached.opened),
       count(*) FILTER (WHERE reached.clicked),
       count(*) FILTER (WHERE sr.outcome = 'exited')
  FROM journeys_steprun sr
  JOIN journeys_enrollment e ON e.id = sr.enrollment_id AND e.workspace_id = sr.workspace_id
  LEFT JOIN messaging_message m ON m.id = sr.message_id AND m.workspace_id = sr.workspace_id
  LEFT JOIN LATERAL (
       SELECT m.status = ANY(%(delivered)s) OR bool_or(sc.status = ANY(%(delivered)s))
                  AS delivered,
              m.status = ANY(%(opened)s) OR bool_or(sc.status = ANY(%(opened)s)) AS opened,
              m.status = ANY(%(clicked)s) OR bool_or(sc.status = ANY(%(clicked)s)) AS clicked
         FROM messaging_messagestatuschange sc
        WHERE sc.message_id = m.id AND sc.workspace_id = m.workspace_id
  ) reached ON m.id IS NOT NULL
 WHERE sr.workspace_id = %(ws)s AND sr.journey_id = %(journey)s
   AND (%(version)s::bigint IS NULL OR e.version_id = %(version)s::bigint)
 GROUP BY sr.step
"""


def journey_step_stats(journey: Journey, version: JourneyVersion | None = None) -> dict:
    """Per step id (those of the version's graph, by default the live one, then any other step
    the log names): `entered` (visits, whatever came of them, waiting ones included),
    `waiting_now` (open enrollments waiting there), `passed` (visits finished), `sent` (visits
    that queued a message), `delivered` / `opened` / `clicked` (those messages, by messaging's
    feedback), `exited` (visits of an exit step), `converted` (enrollments that reached the goal
    while at the step). With `version`, only the enrollments on that version count."""
    params = {name: [s.value for s in STAT_STATUSES[name]] for name in FEEDBACK_STAGES}
    params |= {"ws": journey.workspace_id, "journey": journey.id,
               "version": version.id if version else None}  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_STEP_SQL, params)
        rows = cursor.fetchall()
    stats = {step_id: dict.fromkeys(STEP_STAT_KEYS, 0)
             for step_id in (_graph_of(journey, version).get("steps") or {})}  # fmt: skip
    counted = ("entered", "passed", "sent", "delivered", "opened", "clicked", "exited")
    for step_id, *counts in rows:
        entry = stats.setdefault(step_id, dict.fromkeys(STEP_STAT_KEYS, 0))
        entry.update(zip(counted, counts, strict=True))
    enrollments = Enrollment.objects.filter(journey=journey)
    if version is not None:
        enrollments = enrollments.filter(version=version)
    waiting, converted = Enrollment.State.WAITING, Enrollment.State.CONVERTED
    ends = (enrollments.filter(state__in=[waiting, converted]).values("current_step")
            .annotate(waiting=Count("id", filter=Q(state=waiting)),
                      converted=Count("id", filter=Q(state=converted))))  # fmt: skip
    for row in ends:
        entry = stats.setdefault(row["current_step"], dict.fromkeys(STEP_STAT_KEYS, 0))
        entry["waiting_now"], entry["converted"] = row["waiting"], row["converted"]
    return stats


_MEDIAN_SQL = """
SELECT percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM converted_at - entered_at))
  FROM journeys_enrollment
 WHERE workspace_id = %(ws)s AND journey_id = %(journey)s AND state = 'converted'
   AND converted_at IS NOT NULL AND NOT is_holdout
   AND (%(since)s::timestamptz IS NULL OR entered_at >= %(since)s::timestamptz)
"""

_PER_DAY_SQL = """
WITH mine AS (
    SELECT (entered_at AT TIME ZONE 'UTC')::date AS entered_on,
           CASE WHEN state = 'converted' THEN (converted_at AT TIME ZONE 'UTC')::date END
               AS converted_on
      FROM journeys_enrollment
     WHERE workspace_id = %(ws)s AND journey_id = %(journey)s
       AND (entered_at >= %(first)s::date OR converted_at >= %(first)s::date)
)
SELECT day::date,
       (SELECT count(*) FROM mine WHERE entered_on = day::date),
       (SELECT count(*) FROM mine WHERE converted_on = day::date)
  FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS day
 ORDER BY day
"""


def _rate(converted: int, total: int) -> float | None:
    return round(converted / total, 4) if total else None


def journey_stats(journey: Journey, *, since: datetime | None = None,
                  now: datetime | None = None) -> dict:  # fmt: skip
    """The journey's enrollments (`since` a time, by when they entered): how many in all, open
    (`active`: moving or waiting), completed, converted, exited; the conversion rate of the
    treatment (customers who got the messages) against the holdout (who entered but were sent
    nothing) and the uplift (treatment minus holdout, in rate points; None without both);
    the median time to convert of the treatment, in seconds; and per day (UTC) of the last 30,
    how many entered and how many converted."""
    now = now or timezone.now()
    enrollments = Enrollment.objects.filter(journey=journey)
    if since is not None:
        enrollments = enrollments.filter(entered_at__gte=since)
    converted = Q(state=Enrollment.State.CONVERTED)
    counts = enrollments.aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(state__in=OPEN)),
        completed=Count("id", filter=Q(state=Enrollment.State.COMPLETED)),
        converted=Count("id", filter=converted),
        exited=Count("id", filter=Q(state=Enrollment.State.EXITED)),
        treatment=Count("id", filter=Q(is_holdout=False)),
        treatment_converted=Count("id", filter=converted & Q(is_holdout=False)),
        holdout=Count("id", filter=Q(is_holdout=True)),
        holdout_converted=Count("id", filter=converted & Q(is_holdout=True)),
    )
    treatment_rate = _rate(counts["treatment_converted"], counts["treatment"])
    holdout_rate = _rate(counts["holdout_converted"], counts["holdout"])
    uplift = (round(treatment_rate - holdout_rate, 4)
              if treatment_rate is not None and holdout_rate is not None else None)  # fmt: skip
    today = now.astimezone(UTC).date()
    params = {"ws": journey.workspace_id, "journey": journey.id, "since": since,
              "first": today - timedelta(days=DAYS_OVER_TIME - 1), "last": today}  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_MEDIAN_SQL, params)
        median = cursor.fetchone()[0]
        cursor.execute(_PER_DAY_SQL, params)
        per_day = [{"day": day, "entered": entered, "converted": converted_count}
                   for day, entered, converted_count in cursor.fetchall()]  # fmt: skip
    return {
        "enrollments": {name: counts[name]
                        for name in ("total", "active", "completed", "converted", "exited")},
        "conversion": {
            "treatment": {"enrollments": counts["treatment"],
                          "converted": counts["treatment_converted"], "rate": treatment_rate},
            "holdout": {"enrollments": counts["holdout"],
                        "converted": counts["holdout_converted"], "rate": holdout_rate},
            "uplift": uplift,
        },
        "median_seconds_to_convert": None if median is None else round(float(median), 1),
        "per_day": per_day,
    }  # fmt: skip


def step_history(enrollment: Enrollment) -> list[dict]:
    """The enrollment's step visits in order (uses a prefetched `steps` when there is one)."""
    steps = (enrollment.steps.all() if "steps" in getattr(enrollment, "_prefetched_objects_cache",
                                                           {})
             else enrollment.steps.order_by("started_at", "id"))  # fmt: skip
    graph = (enrollment.version.graph or {}).get("steps") or {}
    return [
        {
            "step": run.step,
            "type": (graph.get(run.step) or {}).get("type", ""),
            "label": (graph.get(run.step) or {}).get("label", ""),
            "visit": run.visit,
            "outcome": run.outcome,
            "next_step": run.next_step,
            "message_id": run.message_id,
            "detail": run.detail,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
        }
        for run in steps
    ]


def enrollment_with_history(enrollment_id: int, journey: Journey) -> Enrollment | None:
    return (Enrollment.objects.filter(journey=journey, id=enrollment_id)
            .select_related("version", "journey")
            .prefetch_related(Prefetch("steps", StepRun.objects.order_by("started_at", "id")))
            .first())  # fmt: skip


def customer_journeys(customer: Customer) -> list[dict]:
    """The customer's enrollments, newest first, each with its journey, version and step
    history (for the profile panel): three queries."""
    enrollments = (
        Enrollment.objects.filter(customer_id=customer.id)
        .select_related("journey", "version")
        .prefetch_related(Prefetch("steps", StepRun.objects.order_by("started_at", "id")))
        .order_by("-entered_at", "-id")
    )
    return [
        {
            "id": enrollment.id,
            "journey_id": enrollment.journey_id,
            "journey_name": enrollment.journey.name,
            "journey_status": enrollment.journey.status,
            "version": enrollment.version.number,
            "state": enrollment.state,
            "current_step": enrollment.current_step,
            "entry_key": enrollment.entry_key,
            "is_holdout": enrollment.is_holdout,
            "variant": enrollment.variant,
            "entered_at": enrollment.entered_at,
            "next_run_at": enrollment.next_run_at,
            "finished_at": enrollment.finished_at,
            "converted_at": enrollment.converted_at,
            "exit_reason": enrollment.exit_reason,
            "steps": step_history(enrollment),
        }
        for enrollment in enrollments
    ]


def journeys_list_counts(journey_ids: list[int]) -> dict[int, dict]:
    """Per journey: enrollments in all, open ones, and the treatment's conversion (as
    journeys.selectors.journey_stats counts them), in one grouped query for the page rather
    than journey_stats' several per row."""
    rows = (
        Enrollment.objects.filter(journey_id__in=journey_ids)
        .values("journey_id")
        .annotate(
            total=Count("id"),
            active=Count("id", filter=Q(state__in=OPEN)),
            treatment=Count("id", filter=Q(is_holdout=False)),
            converted=Count("id", filter=Q(state=Enrollment.State.CONVERTED, is_holdout=False)),
        )
    )
    return {row["journey_id"]: row for row in rows}
