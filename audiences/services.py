"""Writes on audiences: create, update (a new version), delete, "recalculate now", add/remove
list members.

Creating an audience and changing its rules queue their own recalculation: the run's row is
written in the caller's transaction and the worker is woken by task name once it commits
(masivo.tenancy.wakeups), so every caller (API, dashboard, CLI) gets the whole action.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audiences.dependencies import rules_dependencies
from audiences.membership import cause_list, membership_apply
from audiences.models import Audience, Recalculation
from audiences.rules.ast import InvalidRules, Rules, parse_rules
from masivo.tenancy.errors import Conflict, InvalidInput
from masivo.tenancy.models import Workspace
from masivo.tenancy.wakeups import task_wake_on_commit

GRAPH_LOCK_NAMESPACE = 7302  # pg_advisory_xact_lock(namespace, workspace id)
RECALCULATE_TASK = "audiences.recalculate"  # audiences.tasks.recalculate_audience
DESCRIPTION_MAX_LENGTH = 5000  # the API and the dashboard form take at most this
NAME_MAX_LENGTH = Audience._meta.get_field("name").max_length
LIST_MEMBERS_CHANGE_MAX = 10_000  # customer ids added or removed by hand in one request
SCHEDULE_STEP = {
    Audience.Schedule.HOURLY: timedelta(hours=1),
    Audience.Schedule.DAILY: timedelta(days=1),
    Audience.Schedule.WEEKLY: timedelta(weeks=1),
    Audience.Schedule.MONTHLY: timedelta(days=30),
    Audience.Schedule.QUARTERLY: timedelta(days=91),
    Audience.Schedule.YEARLY: timedelta(days=365),
}


class RulesError(InvalidInput):
    """Invalid rules: `errors` lists (JSON path, sentence)."""

    def __init__(self, errors: list[tuple[str, str]]):
        first_path, first_message = errors[0]
        super().__init__(f"{first_path}: {first_message}", field="rules", code="invalid_rules")
        self.errors = errors


def validated_rules(document) -> Rules:
    try:
        return parse_rules(document)
    except InvalidRules as error:
        raise RulesError(error.errors) from error


def next_run(schedule: str, now: datetime) -> datetime | None:
    step = SCHEDULE_STEP.get(schedule)
    return now + step if step else None


def audience_rules_validated(
    *, workspace: Workspace, document, audience: Audience | None = None
) -> Rules:
    """Rules checked exactly as saving checks them: well-formed, every referenced audience exists
    in this workspace (a foreign one reads as missing), and no reference cycle back to `audience`.
    Saving and the preview both call it, so a preview never accepts what a save would refuse."""
    rules = validated_rules(document)
    _check_references(workspace, audience, rules)
    return rules


def _check_references(workspace: Workspace, audience: Audience | None, rules: Rules) -> None:
    """Referenced audiences exist here, and no reference cycle forms."""
    referenced = rules.audience_ids
    if not referenced:
        return
    graph = {a.id: set(a.depends_on) for a in Audience.objects.only("id", "depends_on")}
    missing = referenced - set(graph)
    if missing:
        raise RulesError([("$.root", f"audience {sorted(missing)[0]} does not exist")])
    this = audience.id if audience else None
    if this in referenced:
        raise RulesError([("$.root", "an audience cannot reference itself")])
    stack, seen = list(referenced), set()
    while stack:
        current = stack.pop()
        if current == this:
            raise RulesError([("$.root", "the references form a cycle back to this audience")])
        if current not in seen:
            seen.add(current)
            stack.extend(graph.get(current, ()))


def _apply_rules(audience: Audience, rules: Rules) -> None:
    audience.event_names = sorted(rules.event_names)
    audience.profile_fields = sorted(rules.profile_fields)
    audience.depends_on = sorted(rules.audience_ids)
    audience.dependencies = rules_dependencies(rules)
    audience.is_time_based = rules.is_time_based


def _lock_graph(workspace_id: int) -> None:
    """Serialize changes to a workspace's audience references (cycle and dependents checks)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [GRAPH_LOCK_NAMESPACE, workspace_id])


@transaction.atomic
def audience_create(*, workspace: Workspace, data: dict, now: datetime | None = None) -> Audience:
    now = now or timezone.now()
    _lock_graph(workspace.id)
    kind = data.get("kind", Audience.Kind.RULES)
    audience = Audience(
        workspace=workspace,
        name=data["name"],
        description=data.get("description", ""),
        kind=kind,
        schedule=data.get("schedule", Audience.Schedule.DAILY),
        is_realtime=data.get("is_realtime", False),
        created_at=now,
        updated_at=now,
    )
    if kind == Audience.Kind.RULES:
        if data.get("rules") is None:
            raise InvalidInput("a rules audience needs rules", field="rules")
        rules = audience_rules_validated(workspace=workspace, document=data["rules"])
        audience.rules = data["rules"]
        _apply_rules(audience, rules)
        audience.next_run_at = now  # a first calculation right away
    else:
        audience.schedule = Audience.Schedule.NEVER
        audience.is_realtime = False
    try:
        with transaction.atomic():
            audience.save()
    except IntegrityError as error:
        raise Conflict("an audience with this name exists", field="name") from error
    if kind == Audience.Kind.RULES:
        _recalculation_request(audience, reason="created")
    return audience


@transaction.atomic
def audience_update(*, audience: Audience, data: dict, now: datetime | None = None) -> Audience:
    """Changing the rules makes a new version and queues its recalculation (older running
    recalculations become no-ops)."""
    now = now or timezone.now()
    _lock_graph(audience.workspace_id)
    audience = Audience.objects.select_for_update().get(id=audience.id)
    version_before = audience.version
    for name in ("name", "description", "schedule", "is_realtime"):
        if name in data:
            setattr(audience, name, data[name])
    if "rules" in data:
        if audience.kind != Audience.Kind.RULES:
            raise InvalidInput("an uploaded list has no rules", field="rules")
        rules = audience_rules_validated(
            workspace=audience.workspace, document=data["rules"], audience=audience
        )
        if data["rules"] != audience.rules:
            audience.rules = data["rules"]
            _apply_rules(audience, rules)
            audience.version += 1
            audience.next_run_at = now
    if audience.kind == Audience.Kind.LIST:
        audience.is_realtime = False
        audience.schedule = Audience.Schedule.NEVER
    elif "schedule" in data and audience.version == version_before:
        audience.next_run_at = next_run(audience.schedule, now)
    audience.updated_at = now
    try:
        with transaction.atomic():
            audience.save()
    except IntegrityError as error:
        raise Conflict("an audience with this name exists", field="name") from error
    if audience.version != version_before:
        _recalculation_request(audience, reason="rules changed")
    return audience


def _recalculation_request(audience: Audience, *, reason: str) -> Recalculation:
    """A queued run of the audience's current version; its worker wakes after commit.

    The row is the record of the work: if the wake-up is lost, audiences.scheduling's sweep
    re-queues runs left queued.
    """
    run = Recalculation.objects.create(
        workspace_id=audience.workspace_id,
        audience=audience,
        version=audience.version,
        reason=reason,
    )
    task_wake_on_commit(RECALCULATE_TASK, workspace_id=run.workspace_id, recalculation_id=run.id)
    return run


@transaction.atomic
def audience_recalculate_request(*, audience: Audience, reason: str) -> Recalculation:
    """Recalculate now, for whoever asks: a queued run for the worker (uploaded lists are never
    recalculated)."""
    if audience.kind != Audience.Kind.RULES:
        # The request is valid; the audience's kind refuses it (as members by hand do).
        raise Conflict("an uploaded list is not recalculated: its members are added", field="kind")
    return _recalculation_request(audience, reason=reason)


@transaction.atomic
def audience_delete(*, audience: Audience) -> None:
    _lock_graph(audience.workspace_id)
    dependents = [
        a.name for a in Audience.objects.only("name", "depends_on") if audience.id in a.depends_on
    ]
    if dependents:
        raise Conflict(f"used by {', '.join(sorted(dependents))}; change those rules first")
    Audience.objects.filter(id=audience.id).delete()


@transaction.atomic
def list_members_change(
    *, audience: Audience, add: list[int], remove: list[int], actor: str = "api"
) -> tuple[int, int]:
    """Add/remove customers of an uploaded list; logged as enters/exits. Returns the counts."""
    from profiles.models import Customer

    if audience.kind != Audience.Kind.LIST:
        raise Conflict("only uploaded lists take members by hand; rules decide the others")
    found = dict(Customer.objects.filter(id__in=add).values_list("id", "is_anonymous"))
    unknown = sorted(set(add) - set(found))
    if unknown:
        raise InvalidInput(f"no customer {unknown[0]} in this workspace", field="add")
    anonymous = sorted(customer_id for customer_id, is_anonymous in found.items() if is_anonymous)
    if anonymous:  # as in every audience: identify them first
        raise InvalidInput(
            f"customer {anonymous[0]} is anonymous, and anonymous customers are never members",
            field="add",
        )
    known = set(found)
    both = sorted(set(add) & set(remove))
    if both:
        raise InvalidInput(f"customer {both[0]} is both added and removed", field="remove")
    return membership_apply(
        workspace_id=audience.workspace_id,
        audience_id=audience.id,
        entering=known,
        leaving=remove,
        cause=cause_list(actor),
        now=timezone.now(),
    )
