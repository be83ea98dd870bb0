"""How an enrollment walks its journey: entering, each step, waits, goals and exits.

Everything takes `now` (the injected clock: tests move time, the engine never reads it behind
their back). An enrollment is advanced under its row lock, through immediate steps, until it
waits (a delay, an event, an audience) or ends; each step visit is logged once
(`StepRun`, unique (enrollment, step, visit)), and a send's dedupe key is
`journey:<enrollment>:<step>:<visit>`, so advancing again after a crash never sends twice or
skips a step: the visit's log row and the message are written in the same transaction as the
enrollment's move.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction

from audiences.facts import event_windows, facts_for_customers
from audiences.models import Membership
from audiences.rules.ast import parse_rules
from audiences.rules.evaluator import JSON, Evaluator, compare, json_path
from journeys.models import Enrollment, Journey, JourneyVersion, StepRun
from messaging.models import Template
from messaging.outbox import message_enqueue
from profiles.consent import consent_allows, consent_opt_out
from profiles.models import Customer
from profiles.services.settings import profile_settings_get

logger = logging.getLogger(__name__)

MAX_STEPS_AN_ADVANCE = 50  # a guard against loops through immediate steps
OPEN = (Enrollment.State.ACTIVE, Enrollment.State.WAITING)


def duration(spec: dict) -> timedelta:
    return timedelta(minutes=spec.get("minutes", 0), hours=spec.get("hours", 0),
                     days=spec.get("days", 0), weeks=spec.get("weeks", 0))  # fmt: skip


def dedupe_key(enrollment: Enrollment, step: str, visit: int) -> str:
    return f"journey:{enrollment.id}:{step}:{visit}"


def bucket(*parts) -> int:
    """A number in 0-99, the same for the same parts: deterministic splits and holdouts."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def filters_match(where: list[dict], properties: dict, now: datetime) -> bool:
    """Event property filters in the rule language's syntax, by its evaluator."""
    if not where:
        return True
    rules = parse_rules({"version": 1, "root": {"event": {"name": "_", "where": where}}})
    condition = rules.root
    return all(compare(json_path(properties, f.path), f.test, JSON, now)
               for f in condition.where)  # fmt: skip


def rules_match(document: dict, customer: Customer, now: datetime) -> bool:
    """A rule-language condition for one customer, by the per-customer evaluator."""
    rules = parse_rules(document)
    facts = facts_for_customers(workspace=customer.workspace, rules=rules,
                                customer_ids=[customer.id],
                                event_since=event_windows([rules], now))  # fmt: skip
    found = facts.get(customer.id)
    return found is not None and Evaluator(rules, now=now).matches(found)


def entry_key_of(graph: dict, properties: dict) -> str:
    path = (graph.get("trigger") or {}).get("entry_key")
    if not path:
        return ""
    value = json_path(properties or {}, tuple(path.split(".")))
    return "" if value is None else str(value)[:255]


# Entering -------------------------------------------------------------------------------------


class NotEnrolled(Exception):
    """Why a customer did not enter (the API says it; triggers count it)."""


def enroll(
    *,
    journey: Journey,
    customer: Customer,
    now: datetime,
    context: dict | None = None,
    entry_key: str = "",
    idempotency_key: str = "",
) -> Enrollment:
    """Enter the customer into the journey's live version, by its entry rules and re-entry
    policy; NotEnrolled says why not. An idempotency key already used returns its enrollment."""
    if idempotency_key:
        existing = Enrollment.objects.filter(journey=journey,
                                             idempotency_key=idempotency_key).first()  # fmt: skip
        if existing is not None:
            return existing
    if journey.status != Journey.Status.ACTIVE or journey.live_version_id is None:
        raise NotEnrolled("the journey is not active")
    version = journey.live_version
    graph = version.graph
    if customer.is_anonymous and not graph.get("allow_anonymous"):
        raise NotEnrolled("anonymous customers do not enter this journey")
    audience_id = graph.get("audience_id")
    if audience_id and not Membership.objects.filter(audience_id=audience_id,
                                                     customer_id=customer.id).exists():  # fmt: skip
        raise NotEnrolled("not a member of the journey's audience")
    if graph.get("entry_rules") and not rules_match(graph["entry_rules"], customer, now):
        raise NotEnrolled("the entry conditions do not hold")
    earlier = Enrollment.objects.filter(journey=journey, customer_id=customer.id,
                                        entry_key=entry_key)  # fmt: skip
    if earlier.filter(state__in=OPEN).exists():
        raise NotEnrolled("already in the journey")
    reentry = graph.get("reentry") or {"mode": "once"}
    if reentry["mode"] == "once" and earlier.exists():
        raise NotEnrolled("already went through the journey (re-entry: once)")
    if (
        reentry["mode"] == "after_days"
        and earlier.filter(entered_at__gt=now - timedelta(days=reentry["days"])).exists()
    ):
        raise NotEnrolled(f"entered within the last {reentry['days']} days")
    holdout = bucket("holdout", journey.id, customer.id, entry_key) < graph.get(
        "holdout_percent", 0)  # fmt: skip
    try:
        with transaction.atomic():
            enrollment = Enrollment.objects.create(
                workspace_id=journey.workspace_id, journey=journey, version=version,
                customer_id=customer.id, entry_key=entry_key, current_step=graph["start"],
                next_run_at=now, visits={graph["start"]: 1}, context=context or {},
                is_holdout=holdout, idempotency_key=idempotency_key, entered_at=now,
            )  # fmt: skip
    except IntegrityError:
        raise NotEnrolled("already in the journey") from None
    return enrollment


# Advancing ------------------------------------------------------------------------------------


def _finish(enrollment: Enrollment, state: str, reason: str, now: datetime) -> None:
    enrollment.state = state
    enrollment.exit_reason = reason
    enrollment.finished_at = now
    enrollment.next_run_at = None
    enrollment.waiting_for = None
    if state == Enrollment.State.CONVERTED:
        enrollment.converted_at = now


def _log(enrollment: Enrollment, step: str, outcome: str, now: datetime, *, next_step: str = "",
         message_id: int | None = None, detail: dict | None = None) -> None:  # fmt: skip
    """The visit's row, in one statement: made, or (the step done again after a crash, or a
    wait ending) brought up to date, its start kept."""
    StepRun.objects.bulk_create(
        [StepRun(workspace_id=enrollment.workspace_id, enrollment=enrollment, step=step,
                 visit=enrollment.visits.get(step, 1), journey_id=enrollment.journey_id,
                 outcome=outcome, next_step=next_step, message_id=message_id,
                 detail=detail or {}, started_at=now,
                 finished_at=now if outcome != StepRun.Outcome.WAITING else None)],
        update_conflicts=True,
        unique_fields=["workspace", "enrollment", "step", "visit"],
        update_fields=["journey_id", "outcome", "next_step", "message_id", "detail",
                       "finished_at"],
    )  # fmt: skip


def _move(enrollment: Enrollment, to: str) -> None:
    enrollment.current_step = to
    enrollment.visits[to] = enrollment.visits.get(to, 0) + 1
    enrollment.waiting_for = None
    enrollment.state = Enrollment.State.ACTIVE


def _wait(enrollment: Enrollment, step: str, until: datetime, waiting_for: dict,
          now: datetime) -> None:  # fmt: skip
    enrollment.state = Enrollment.State.WAITING
    enrollment.next_run_at = until
    enrollment.waiting_for = {**waiting_for, "since": now.isoformat(),
                              "until": until.isoformat()}  # fmt: skip
    _log(enrollment, step, StepRun.Outcome.WAITING, now, detail={"until": until.isoformat()})


def _local_zone(customer: Customer) -> ZoneInfo:
    try:
        return ZoneInfo(customer.timezone) if customer.timezone else ZoneInfo("UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def delay_until(step: dict, customer: Customer, since: datetime) -> datetime | None:
    """When a delay step that began at `since` ends (None: a date it cannot compute, so it
    passes at once)."""
    if "duration" in step:
        return since + duration(step["duration"])
    zone = _local_zone(customer)
    local = since.astimezone(zone)
    if "until" in step:
        hour, minute = (int(part) for part in step["until"]["time"].split(":"))
        weekdays = step["until"].get("weekdays") or list(range(7))
        for days in range(8):
            day = (local + timedelta(days=days)).date()
            candidate = datetime.combine(day, time(hour, minute), zone)
            if candidate > local and day.weekday() in weekdays:
                return candidate.astimezone(since.tzinfo)
        return None
    spec = step["until_date"]
    value = _date_field(customer, spec["field"])
    if value is None:
        return None
    hour, minute = (int(p) for p in spec.get("time", "09:00").split(":"))
    target = value + timedelta(days=spec.get("offset_days", 0))
    return datetime.combine(target, time(hour, minute), zone).astimezone(since.tzinfo)


def _date_field(customer: Customer, field: str):
    from datetime import date

    if field == "birth_date":
        return customer.birth_date
    raw = (customer.traits or {}).get(field.removeprefix("traits."))
    try:
        return date.fromisoformat(str(raw)[:10]) if raw else None
    except ValueError:
        return None


def _send(enrollment: Enrollment, step_id: str, step: dict, customer: Customer,
          now: datetime) -> tuple[str, int | None, dict]:  # fmt: skip
    if enrollment.is_holdout:
        return StepRun.Outcome.SKIPPED, None, {"reason": "holdout"}
    template = Template.objects.filter(id=step["template_id"]).first()
    if template is None:
        return StepRun.Outcome.FAILED, None, {"reason": "the template is gone"}
    visit = enrollment.visits.get(step_id, 1)
    enqueued = message_enqueue(
        customer=customer, channel=step["channel"], kind=step.get("kind", "marketing"),
        dedupe_key=dedupe_key(enrollment, step_id, visit),
        origin={"source": "journey", "journey": enrollment.journey_id,
                "enrollment": enrollment.id, "step": step_id, "visit": visit},
        template=template,
        render_input={"event": enrollment.context.get("properties", enrollment.context),
                      "journey": enrollment.context},
        at=now,
    )  # fmt: skip
    decision = enqueued.decision
    detail = {"decision": decision.code}
    message = enqueued.message
    if step.get("quiet_hours") == "skip" and message.status == "deferred" and enqueued.is_new:
        message.status = "canceled"
        message.save(update_fields=["status"])
        return StepRun.Outcome.SKIPPED, message.id, {"reason": "quiet hours", **detail}
    outcome = StepRun.Outcome.SENT if message.status in ("queued", "deferred") else \
        StepRun.Outcome.SKIPPED  # fmt: skip
    return outcome, message.id, detail


def _webhook(enrollment: Enrollment, step_id: str, step: dict, customer: Customer,
             now: datetime) -> tuple[str, dict]:  # fmt: skip
    """A signed POST to a webhook endpoint (destinations' delivery: the outbound guard,
    Standard Webhooks signing, its retry schedule), recorded once per step visit."""
    from destinations.models import Destination
    from destinations.webhooks import JOURNEY_TOPIC, webhook_enqueue

    endpoint = Destination.objects.filter(id=step["destination_id"], kind="webhook").first()
    if endpoint is None:
        return StepRun.Outcome.FAILED, {"reason": "the webhook endpoint is gone"}
    visit = enrollment.visits.get(step_id, 1)
    delivery = webhook_enqueue(
        destination=endpoint, dedupe_key=dedupe_key(enrollment, step_id, visit),
        topic=JOURNEY_TOPIC, now=now,
        data={"journey": {"id": enrollment.journey_id, "enrollment": enrollment.id,
                          "step": step_id, "visit": visit, "context": enrollment.context},
              "customer": {"id": customer.id, "external_id": customer.external_id,
                           "email": customer.email}},
    )  # fmt: skip
    return StepRun.Outcome.PASSED, {"webhook_id": delivery.webhook_id}


def _update_profile(step: dict, customer: Customer, now: datetime) -> dict:
    from profiles.services.customers import customer_tags_patch, customer_update

    traits = dict(step.get("set_traits") or {})
    for name in step.get("remove_traits") or []:
        traits[name] = None
    if traits:
        customer_update(customer=customer, data={"traits": traits}, now=now)
    tags = dict(step.get("set_tags") or {})
    for name in step.get("remove_tags") or []:
        tags[name] = None
    if tags:
        customer_tags_patch(customer=customer, tags=tags)
    return {"traits": sorted(traits), "tags": sorted(tags)}


def advance(enrollment: Enrollment, *, now: datetime) -> Enrollment:
    """Take a locked, due enrollment as far as it goes now (call inside a transaction)."""
    graph = enrollment.version.graph
    customer = Customer.objects.filter(id=enrollment.customer_id).first()
    if customer is None:
        _finish(enrollment, Enrollment.State.EXITED, "customer removed", now)
        enrollment.save()
        return enrollment
    for _ in range(MAX_STEPS_AN_ADVANCE):
        if not enrollment.is_open:
            break
        step_id = enrollment.current_step
        step = graph["steps"][step_id]
        kind = step["type"]
        waiting = enrollment.waiting_for
        if kind == "exit":
            _log(enrollment, step_id, StepRun.Outcome.EXITED, now)
            _finish(enrollment, Enrollment.State.COMPLETED, "reached an exit step", now)
            break
        if kind == "send":
            outcome, message_id, detail = _send(enrollment, step_id, step, customer, now)
            _log(enrollment, step_id, outcome, now, next_step=step["next"],
                 message_id=message_id, detail=detail)  # fmt: skip
            _move(enrollment, step["next"])
        elif kind == "delay":
            if waiting is None:
                until = delay_until(step, customer, now)
                if until is not None and until > now:
                    _wait(enrollment, step_id, until, {"delay": True}, now)
                    break
            elif datetime.fromisoformat(waiting["until"]) > now:
                enrollment.next_run_at = datetime.fromisoformat(waiting["until"])
                break
            _log(enrollment, step_id, StepRun.Outcome.PASSED, now, next_step=step["next"])
            _move(enrollment, step["next"])
        elif kind in ("wait_event", "wait_audience"):
            if waiting is None:
                if kind == "wait_audience" and _audience_holds(step, customer):
                    _log(enrollment, step_id, StepRun.Outcome.EVENT, now, next_step=step["next"],
                         detail={"already": True})  # fmt: skip
                    _move(enrollment, step["next"])
                    continue
                spec = (
                    {"event": step["event"]}
                    if kind == "wait_event"
                    else {"audience": step["audience_id"], "member": step.get("member", True)}
                )
                _wait(enrollment, step_id, now + duration(step["timeout"]), spec, now)
                break
            if waiting.get("resolved"):
                _log(enrollment, step_id, StepRun.Outcome.EVENT, now, next_step=step["next"],
                     detail={"resolved": waiting["resolved"]})  # fmt: skip
                _move(enrollment, step["next"])
            elif datetime.fromisoformat(waiting["until"]) <= now:
                _log(enrollment, step_id, StepRun.Outcome.TIMED_OUT, now,
                     next_step=step["timeout_next"])  # fmt: skip
                _move(enrollment, step["timeout_next"])
            else:
                enrollment.next_run_at = datetime.fromisoformat(waiting["until"])
                break
        elif kind == "branch":
            target = step["else"]
            chosen = "else"
            for index, condition in enumerate(step["conditions"]):
                if rules_match(condition["rules"], customer, now):
                    target, chosen = condition["next"], index
                    break
            _log(enrollment, step_id, StepRun.Outcome.BRANCHED, now, next_step=target,
                 detail={"condition": chosen})  # fmt: skip
            _move(enrollment, target)
        elif kind == "split":
            point, total = bucket("split", enrollment.id, step_id), 0
            for path in step["paths"]:
                total += path["percent"]
                if point < total:
                    break
            name = path.get("name", "")
            if name:
                enrollment.variant = name
            _log(enrollment, step_id, StepRun.Outcome.BRANCHED, now, next_step=path["next"],
                 detail={"path": name or path["next"]})  # fmt: skip
            _move(enrollment, path["next"])
        elif kind == "webhook":
            outcome, detail = _webhook(enrollment, step_id, step, customer, now)
            _log(enrollment, step_id, outcome, now, next_step=step["next"], detail=detail)
            _move(enrollment, step["next"])
        elif kind == "update_profile":
            detail = _update_profile(step, customer, now)
            customer.refresh_from_db()
            _log(enrollment, step_id, StepRun.Outcome.PASSED, now, next_step=step["next"],
                 detail=detail)  # fmt: skip
            _move(enrollment, step["next"])
    else:
        logger.warning("enrollment %s went through %s steps at once; it waits a minute",
                       enrollment.id, MAX_STEPS_AN_ADVANCE)  # fmt: skip
        enrollment.next_run_at = now + timedelta(minutes=1)
    if enrollment.is_open and enrollment.state == Enrollment.State.ACTIVE:
        enrollment.next_run_at = now
    enrollment.save()
    return enrollment


def _audience_holds(step: dict, customer: Customer) -> bool:
    member = Membership.objects.filter(audience_id=step["audience_id"],
                                       customer_id=customer.id).exists()  # fmt: skip
    return member == step.get("member", True)


# What happens to customers, from the feeds -----------------------------------------------------


def event_arrived(*, enrollment: Enrollment, name: str, properties: dict, entry_key: str,
                  now: datetime) -> str | None:  # fmt: skip
    """An event of the enrollment's customer: a goal converts, an exit ends, a wait resolves.
    Returns what it did (None: nothing)."""
    graph = enrollment.version.graph
    goal = graph.get("goal")
    if goal and goal["event"] == name and filters_match(goal.get("where", []), properties, now):
        within = goal.get("within_days")
        key_ok = not goal.get("match_entry_key") or entry_key == enrollment.entry_key
        if key_ok and (within is None or now - enrollment.entered_at <= timedelta(days=within)):
            _finish(enrollment, Enrollment.State.CONVERTED, f"goal: {name}", now)
            enrollment.save()
            return "converted"
    for exit_ in graph.get("exits", []):
        if (
            exit_["type"] == "event"
            and exit_["event"] == name
            and filters_match(exit_.get("where", []), properties, now)
        ):
            _finish(enrollment, Enrollment.State.EXITED, f"exit: {name}", now)
            enrollment.save()
            return "exited"
    waiting = enrollment.waiting_for or {}
    if enrollment.state == Enrollment.State.WAITING and waiting.get("event") == name:
        step = graph["steps"][enrollment.current_step]
        key_ok = not step.get("match_entry_key") or entry_key == enrollment.entry_key
        if key_ok and filters_match(step.get("where", []), properties, now):
            enrollment.waiting_for = {**waiting, "resolved": name}
            enrollment.next_run_at = now
            enrollment.save(update_fields=["waiting_for", "next_run_at"])
            return "resolved"
    return None


def membership_changed(*, enrollment: Enrollment, audience_id: int, entered: bool,
                       now: datetime) -> str | None:  # fmt: skip
    graph = enrollment.version.graph
    if not entered:
        for exit_ in graph.get("exits", []):
            if exit_["type"] == "audience_exited" and exit_["audience_id"] == audience_id:
                _finish(enrollment, Enrollment.State.EXITED, "left the audience", now)
                enrollment.save()
                return "exited"
    waiting = enrollment.waiting_for or {}
    if (enrollment.state == Enrollment.State.WAITING and waiting.get("audience") == audience_id
            and waiting.get("member", True) == entered):  # fmt: skip
        enrollment.waiting_for = {**waiting, "resolved": "entered" if entered else "exited"}
        enrollment.next_run_at = now
        enrollment.save(update_fields=["waiting_for", "next_run_at"])
        return "resolved"
    return None


def consent_changed(*, enrollment: Enrollment, customer: Customer, now: datetime) -> str | None:
    graph = enrollment.version.graph
    opt_out = consent_opt_out(profile_settings_get(workspace=customer.workspace))
    for exit_ in graph.get("exits", []):
        if exit_["type"] == "consent_withdrawn" and not consent_allows(
            customer.consent, exit_["purpose"], opt_out=opt_out
        ):
            _finish(enrollment, Enrollment.State.EXITED, f"consent withdrawn: "
                    f"{exit_['purpose']}", now)  # fmt: skip
            enrollment.save()
            return "exited"
    return None


def enrollment_exit(*, enrollment: Enrollment, reason: str, now: datetime) -> Enrollment:
    """End an open enrollment from outside (the API, archiving)."""
    if enrollment.is_open:
        _finish(enrollment, Enrollment.State.EXITED, reason, now)
        enrollment.save()
    return enrollment


def reacting_versions() -> list[JourneyVersion]:
    """The versions whose enrollments can react now: those of active or paused journeys (an
    enrollment stays on the version it entered, so older versions count too)."""
    return list(JourneyVersion.objects.filter(
        journey__status__in=[Journey.Status.ACTIVE, Journey.Status.PAUSED],
        published_at__isnull=False,
    ).select_related("journey"))  # fmt: skip
