"""What the builder says about a graph, in words: each step's summary, the trigger, who may
enter, the exit rules; with the names of the templates and audiences they refer to."""

from __future__ import annotations

from audiences.models import Audience
from journeys.views.forms import CHANNEL_NAMES, duration_words
from messaging.models import Template
from profiles.models import ConsentPurpose


def step_summary(step: dict, names: dict) -> str:
    kind = step.get("type")
    if kind == "send":
        template = names["templates"].get(step.get("template_id"), "no template chosen")
        return f"{CHANNEL_NAMES.get(step.get('channel'), step.get('channel'))}: {template}"
    if kind == "delay":
        if "until" in step:
            return f"Until {step['until'].get('time')} in the customer's zone"
        if "until_date" in step:
            spec = step["until_date"]
            return f"Until {spec.get('field')} {spec.get('offset_days', 0):+d} days"
        return f"Wait {duration_words(step.get('duration'))}"
    if kind == "wait_event":
        return (
            f"Wait for {step.get('event') or '(no event chosen)'}, "
            f"at most {duration_words(step.get('timeout'))}"
        )
    if kind == "wait_audience":
        audience = names["audiences"].get(step.get("audience_id"), "(no audience chosen)")
        verb = "to enter" if step.get("member", True) else "to leave"
        return f"Wait {verb} {audience}, at most {duration_words(step.get('timeout'))}"
    if kind == "branch":
        count = len(step.get("conditions", []))
        return f"{count} condition{'s' if count != 1 else ''}, the first that holds"
    if kind == "split":
        return " · ".join(
            f"{p.get('name') or '?'} {p.get('percent')}%" for p in step.get("paths", [])
        )
    if kind == "update_profile":
        changed = [
            *step.get("set_traits", {}),
            *step.get("remove_traits", []),
            *step.get("set_tags", {}),
            *step.get("remove_tags", []),
        ]
        return f"Changes {', '.join(changed)}" if changed else "Changes nothing yet"
    return "The end of the journey"


def graph_names(graph: dict) -> dict:
    """The names of the templates and audiences the graph refers to (two queries)."""
    steps = (graph.get("steps") or {}).values()
    template_ids = {s.get("template_id") for s in steps if s.get("type") == "send"}
    audience_ids = {s.get("audience_id") for s in steps if s.get("type") == "wait_audience"}
    audience_ids |= {e.get("audience_id") for e in exit_rules(graph)} | {graph.get("audience_id")}
    return {
        "templates": dict(
            Template.objects.filter(id__in=template_ids - {None}).values_list("id", "name")
        ),
        "audiences": dict(
            Audience.objects.filter(id__in=audience_ids - {None}).values_list("id", "name")
        ),
    }


def exit_rules(graph: dict) -> list[dict]:
    """The exit rules, those of a draft not yet valid included (as objects)."""
    rules = graph.get("exits")
    return [rule for rule in rules if isinstance(rule, dict)] if isinstance(rules, list) else []


def _audience(names: dict, audience_id) -> str:
    return names["audiences"].get(audience_id) or f"audience #{audience_id} (not found)"


def who_may_enter(graph: dict, names: dict) -> str:
    audience_id = graph.get("audience_id")
    words = f"Members of {_audience(names, audience_id)}" if audience_id else "All customers"
    words += ", anonymous ones too" if graph.get("allow_anonymous") else ", identified only"
    if graph.get("entry_rules"):
        words += ", when the entry conditions hold"
    return words


def exit_words(rule: dict, names: dict) -> str:
    kind = rule.get("type")
    if kind == "event":
        count = len(rule.get("where") or [])
        filters = f" ({count} filter{'s' if count != 1 else ''})" if count else ""
        return f"When {rule.get('event') or '(no event chosen)'} happens{filters}"
    if kind == "audience_exited":
        return f"When they leave {_audience(names, rule.get('audience_id'))}"
    if kind == "consent_withdrawn":
        purpose = rule.get("purpose")
        label = dict(ConsentPurpose.choices).get(purpose, purpose)
        return f"When they withdraw consent to {label}"
    return f"An exit of unknown type {kind!r}"


def trigger_words(graph: dict, names: dict) -> str:
    trigger = graph.get("trigger") or {}
    kind = trigger.get("type")
    if kind == "event":
        return f"When {trigger.get('event') or '(no event chosen)'} happens"
    if kind in ("audience_entered", "audience_exited"):
        verb = "enters" if kind == "audience_entered" else "leaves"
        return f"When a customer {verb} audience #{trigger.get('audience_id')}"
    if kind == "date_anniversary":
        return f"Every year on {trigger.get('field')}"
    if kind == "api":
        return "When the API enrolls a customer"
    return "No trigger yet"
