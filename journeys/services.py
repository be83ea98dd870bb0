"""Journeys: create, edit the draft, validate, publish, pause, resume, archive; enroll and exit
by hand. The one owner of `Journey` and `JourneyVersion` rows (enrollments and their step log
are written by journeys.engine, one at a time, and by journeys.batch, its set-based twin).
Editing journeys is marketing work (`Permission.EDIT_MARKETING`)."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from destinations.models import Destination
from journeys.engine import NotEnrolled, enroll, enrollment_exit
from journeys.graph import InvalidGraph, graph_validate
from journeys.models import Enrollment, Journey, JourneyVersion
from journeys.runner import consumers_start
from masivo.tenancy.actors import Actor
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed
from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Permission
from messaging.models import Template
from profiles.models import Customer

MOVE_WAITING_STEP_TYPES = {"delay", "wait_event", "wait_audience"}


def _require(actor: Actor) -> None:
    if not actor.can(Permission.EDIT_MARKETING):
        raise NotAllowed("your role may not change journeys")


def graph_check(graph) -> dict:
    """The graph, valid and referring only to this workspace's templates; InvalidInput naming
    the first problem's field (all of them are in `InvalidGraph.errors`)."""
    try:
        graph_validate(graph)
    except InvalidGraph as error:
        first = error.errors[0]
        raise InvalidInput(first.message, field=f"graph.{first.path}") from error
    for step_id, step in graph["steps"].items():
        if (
            step["type"] == "webhook"
            and not Destination.objects.filter(id=step["destination_id"], kind="webhook").exists()
        ):
            raise InvalidInput("no such webhook endpoint",
                               field=f"graph.steps.{step_id}.destination_id")  # fmt: skip
        if step["type"] == "send":
            template = Template.objects.filter(id=step["template_id"]).first()
            if template is None:
                raise InvalidInput("no such template", field=f"graph.steps.{step_id}.template_id")
            if template.channel != step["channel"]:
                raise InvalidInput(f"a {template.channel} template, not {step['channel']}",
                                   field=f"graph.steps.{step_id}.template_id")  # fmt: skip
    return graph


def journey_create(
    *,
    workspace: Workspace,
    name: str,
    description: str = "",
    graph: dict | None = None,
    actor: Actor,
) -> Journey:
    """A draft journey with its first (draft) version; the graph may be incomplete until
    publishing (it is checked then)."""
    _require(actor)
    with transaction.atomic():
        journey = Journey.objects.create(workspace=workspace, name=name, description=description,
                                         created_by=actor.label)  # fmt: skip
        JourneyVersion.objects.create(workspace=workspace, journey=journey, number=1,
                                      graph=graph or {})  # fmt: skip
    return journey


def journey_draft(journey: Journey) -> JourneyVersion:
    """The draft version, made from the latest one when there is none (it carries on that
    one's revision: an edit made from the published graph still matches)."""
    draft = JourneyVersion.objects.filter(journey=journey, published_at__isnull=True).first()
    if draft is not None:
        return draft
    latest = JourneyVersion.objects.filter(journey=journey).order_by("-number").first()
    number = (JourneyVersion.objects.filter(journey=journey).aggregate(n=Max("number"))["n"]
              or 0) + 1  # fmt: skip
    return JourneyVersion.objects.create(workspace_id=journey.workspace_id, journey=journey,
                                         number=number, graph=latest.graph if latest else {},
                                         revision=latest.revision if latest else 1)  # fmt: skip


def _draft_locked(journey: Journey, *, make: bool) -> JourneyVersion | None:
    """The draft row, locked until the transaction ends (with `make`, made when there is
    none). Only the draft is locked before the journey row is written: publishing takes the
    same order, so the two never wait on each other in a cycle."""
    draft = JourneyVersion.objects.select_for_update().filter(
        journey=journey, published_at__isnull=True).first()  # fmt: skip
    if draft is not None or not make:
        return draft
    try:
        with transaction.atomic():
            return journey_draft(journey)
    except IntegrityError:
        # Another editor made the draft (the same number) meanwhile: theirs is the one to lock.
        return JourneyVersion.objects.select_for_update().get(
            journey=journey, published_at__isnull=True)  # fmt: skip


def _revision_check(journey: Journey, draft: JourneyVersion | None, revision: int) -> None:
    """With no draft, the revision read was the latest version's (the next draft's start)."""
    current = draft.revision if draft is not None else (
        JourneyVersion.objects.filter(journey=journey).order_by("-number")
        .values_list("revision", flat=True).first())  # fmt: skip
    if revision != current:
        raise Conflict(f"someone else changed this draft (it is at revision {current}, not "
                       f"{revision}); reload it and edit again", field="revision")  # fmt: skip


def journey_update(
    *,
    journey: Journey,
    actor: Actor,
    name: str | None = None,
    description: str | None = None,
    graph: dict | None = None,
    revision: int | None = None,
) -> Journey:
    """Rename, describe, or replace the draft's graph (a live journey keeps running on its
    published version until the draft is published). With `revision` (the draft's, as the
    caller read it), a draft changed since is a Conflict naming `revision` and nothing is
    saved; each change of the graph adds 1 to the draft's revision."""
    _require(actor)
    if journey.status == Journey.Status.ARCHIVED:
        raise Conflict("the journey is archived", field="status")
    if graph is not None and not isinstance(graph, dict):
        raise InvalidInput("a journey graph is a JSON object", field="graph")
    with transaction.atomic():
        draft = _draft_locked(journey, make=graph is not None)
        if revision is not None:
            _revision_check(journey, draft, revision)
        if graph is not None and graph != draft.graph:
            draft.graph = graph
            draft.revision += 1
            draft.save(update_fields=["graph", "revision"])
        if name is not None:
            journey.name = name
        if description is not None:
            journey.description = description
        journey.updated_at = timezone.now()
        journey.save()
    return journey


def journey_publish(
    *,
    journey: Journey,
    actor: Actor,
    note: str = "",
    move_waiting: bool = False,
    revision: int | None = None,
    now: datetime | None = None,
) -> JourneyVersion:
    """Freeze the draft as the live version and switch the journey on. With `move_waiting`,
    enrollments waiting at a step that still exists (same id and type) move to the new
    version; the others finish on the version they entered. With `revision` (the draft's as
    the caller saw it), a draft changed since is a Conflict naming `revision`: what is
    published is what they looked at."""
    _require(actor)
    now = now or timezone.now()
    if journey.status == Journey.Status.ARCHIVED:
        raise Conflict("the journey is archived", field="status")
    with transaction.atomic():
        draft = _draft_locked(journey, make=False)
        if draft is None:
            raise Conflict("nothing to publish: no draft", field="graph")
        if revision is not None:
            _revision_check(journey, draft, revision)
        graph_check(draft.graph)
        draft.published_at, draft.published_by, draft.note = now, actor.label, note[:500]
        draft.save(update_fields=["published_at", "published_by", "note"])
        previous = journey.live_version
        journey.live_version = draft
        if journey.status == Journey.Status.DRAFT:
            journey.status = Journey.Status.ACTIVE
        journey.updated_at = now
        journey.save()
        consumers_start(journey.workspace_id)
        if move_waiting and previous is not None:
            steps = draft.graph["steps"]
            for enrollment in Enrollment.objects.select_for_update().filter(
                journey=journey, version=previous, state=Enrollment.State.WAITING
            ):
                old = previous.graph["steps"].get(enrollment.current_step, {})
                new = steps.get(enrollment.current_step)
                if new and new["type"] == old.get("type") in MOVE_WAITING_STEP_TYPES:
                    enrollment.version = draft
                    enrollment.save(update_fields=["version"])
    return draft


def journey_set_status(
    *, journey: Journey, status: str, actor: Actor, now: datetime | None = None
) -> Journey:
    """pause (enrollments hold where they are, nothing is sent), resume, archive (open
    enrollments exit)."""
    _require(actor)
    now = now or timezone.now()
    allowed = {
        Journey.Status.PAUSED: {Journey.Status.ACTIVE},
        Journey.Status.ACTIVE: {Journey.Status.PAUSED},
        Journey.Status.ARCHIVED: {
            Journey.Status.DRAFT,
            Journey.Status.ACTIVE,
            Journey.Status.PAUSED,
        },
    }
    if journey.status not in allowed[status]:
        raise Conflict(f"a {journey.status} journey cannot become {status}", field="status")
    with transaction.atomic():
        journey.status = status
        journey.updated_at = now
        journey.save(update_fields=["status", "updated_at"])
        if status == Journey.Status.ARCHIVED:
            for enrollment in Enrollment.objects.select_for_update().filter(
                journey=journey, state__in=[Enrollment.State.ACTIVE, Enrollment.State.WAITING]
            ):
                enrollment_exit(enrollment=enrollment, reason="journey archived", now=now)
    return journey


def journey_delete(*, journey: Journey, actor: Actor) -> None:
    """Only a draft (never published) journey goes; the others are archived instead."""
    _require(actor)
    with transaction.atomic():
        journey = Journey.objects.select_for_update().get(id=journey.id)
        if journey.status != Journey.Status.DRAFT:
            raise Conflict(f"the journey is {journey.status}; only a draft journey can be "
                           "deleted (archive it instead)", field="status")  # fmt: skip
        journey.delete()


def enrollment_end(*, enrollment: Enrollment, actor: Actor, reason: str,
                   now: datetime | None = None) -> Enrollment:  # fmt: skip
    """End an open enrollment by hand; an ended one is a Conflict."""
    _require(actor)
    with transaction.atomic():
        locked = Enrollment.objects.select_for_update().get(id=enrollment.id)
        if not locked.is_open:
            raise Conflict(f"the enrollment is {locked.state}; only an open one can exit",
                           field="state")  # fmt: skip
        return enrollment_exit(enrollment=locked, reason=reason, now=now or timezone.now())


def enrollment_create(
    *,
    journey: Journey,
    customer: Customer,
    actor: Actor,
    context: dict | None = None,
    entry_key: str = "",
    idempotency_key: str = "",
    now: datetime | None = None,
) -> Enrollment:
    """Enroll through the API (any trigger: the journey's entry rules and re-entry apply)."""
    _require(actor)
    try:
        return enroll(journey=journey, customer=customer, now=now or timezone.now(),
                      context=context, entry_key=entry_key,
                      idempotency_key=idempotency_key)  # fmt: skip
    except NotEnrolled as error:
        raise Conflict(str(error), field="customer_id") from None
