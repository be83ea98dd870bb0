"""The journey graph: its JSON Schema (the documented shape, served by the API) and the checks
the schema cannot say (steps that exist, a start, rule-language conditions that parse).
Errors name the step and the field: `steps.email_1.template_id: required`.

A graph, in short (docs/journeys.md has every field):

    {"trigger": {"type": "event", "event": "Product Added",
                 "where": [{"property": "cart.value", "op": "gt", "value": 50}],
                 "entry_key": "cart.id"},
     "audience_id": null, "entry_rules": null, "allow_anonymous": false,
     "reentry": {"mode": "once" | "after_days" | "always", "days": 30},
     "holdout_percent": 0,
     "goal": {"event": "Order Completed", "where": [], "within_days": 7},
     "exits": [{"type": "event", "event": "Unsubscribed"} | {"type": "audience_exited",
               "audience_id": 3} | {"type": "consent_withdrawn", "purpose": "email_marketing"}],
     "start": "wait_order",
     "steps": {"wait_order": {"type": "wait_event", "event": "Order Completed",
                              "match_entry_key": true, "timeout": {"hours": 1},
                              "next": "done", "timeout_next": "email"},
               "email": {"type": "send", "channel": "email", "template_id": 12, "next": "later"},
               "later": {"type": "delay", "duration": {"days": 1}, "next": "push"},
               "push": {"type": "send", "channel": "push", "template_id": 13, "next": "done"},
               "done": {"type": "exit"}}}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema

from audiences.rules.ast import InvalidRules, parse_rules

STEP_ID = r"^[a-z][a-z0-9_]{0,63}$"
MAX_STEPS = 200
CHANNELS = ["email", "push", "whatsapp", "sms", "in_app"]

_DURATION = {
    "type": "object",
    "properties": {
        unit: {"type": "integer", "minimum": 0, "maximum": limit}
        for unit, limit in (("minutes", 525600), ("hours", 8760), ("days", 365), ("weeks", 52))
    },
    "additionalProperties": False,
    "minProperties": 1,
}
_FILTER = {
    "type": "object",
    "required": ["property", "op"],
    "properties": {
        "property": {"type": "string", "minLength": 1, "maxLength": 200},
        "op": {"type": "string"},
        "value": {},
    },
    "additionalProperties": False,
}
_EVENT_NAME = {"type": "string", "minLength": 1, "maxLength": 200}
_NEXT = {"type": "string", "pattern": STEP_ID}
_ID = {"type": "integer", "minimum": 1}


def _step(kind: str, required: list[str], properties: dict) -> dict:
    return {
        "type": "object",
        "required": ["type", *required],
        "properties": {
            "type": {"const": kind},
            "label": {"type": "string", "maxLength": 200},
            **properties,
        },
        "additionalProperties": False,
    }


STEP_SCHEMAS = {
    "send": _step("send", ["channel", "template_id", "next"], {
        "channel": {"enum": CHANNELS}, "template_id": _ID, "next": _NEXT,
        "kind": {"enum": ["marketing", "transactional"]},
        "quiet_hours": {"enum": ["defer", "skip"]},
    }),
    "delay": _step("delay", ["next"], {
        "duration": _DURATION,
        "until": {"type": "object", "properties": {
            "time": {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"},
            "weekdays": {"type": "array", "items": {"type": "integer", "minimum": 0,
                                                    "maximum": 6}, "uniqueItems": True}},
            "required": ["time"], "additionalProperties": False},
        "until_date": {"type": "object", "properties": {
            "field": {"type": "string", "minLength": 1, "maxLength": 200},
            "offset_days": {"type": "integer", "minimum": -365, "maximum": 365},
            "time": {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"}},
            "required": ["field"], "additionalProperties": False},
        "next": _NEXT,
    }),
    "wait_event": _step("wait_event", ["event", "timeout", "next", "timeout_next"], {
        "event": _EVENT_NAME, "where": {"type": "array", "items": _FILTER, "maxItems": 20},
        "match_entry_key": {"type": "boolean"}, "timeout": _DURATION,
        "next": _NEXT, "timeout_next": _NEXT,
    }),
    "wait_audience": _step("wait_audience", ["audience_id", "timeout", "next", "timeout_next"], {
        "audience_id": _ID, "member": {"type": "boolean"}, "timeout": _DURATION,
        "next": _NEXT, "timeout_next": _NEXT,
    }),
    "branch": _step("branch", ["conditions", "else"], {
        "conditions": {"type": "array", "minItems": 1, "maxItems": 20, "items": {
            "type": "object", "required": ["rules", "next"],
            "properties": {"rules": {"type": "object"}, "next": _NEXT,
                           "label": {"type": "string", "maxLength": 200}},
            "additionalProperties": False}},
        "else": _NEXT,
    }),
    "split": _step("split", ["paths"], {
        "paths": {"type": "array", "minItems": 2, "maxItems": 10, "items": {
            "type": "object", "required": ["percent", "next"],
            "properties": {"name": {"type": "string", "maxLength": 40},
                           "percent": {"type": "integer", "minimum": 1, "maximum": 100},
                           "next": _NEXT},
            "additionalProperties": False}},
    }),
    "update_profile": _step("update_profile", ["next"], {
        "set_traits": {"type": "object", "maxProperties": 50},
        "remove_traits": {"type": "array", "items": {"type": "string", "minLength": 1},
                          "maxItems": 50},
        "set_tags": {"type": "object", "maxProperties": 50},
        "remove_tags": {"type": "array", "items": {"type": "string", "minLength": 1},
                        "maxItems": 50},
        "next": _NEXT,
    }),
    "webhook": _step("webhook", ["destination_id", "next"], {
        "destination_id": _ID, "next": _NEXT,
    }),
    "exit": _step("exit", [], {}),
}  # fmt: skip

TRIGGER_SCHEMA = {
    "oneOf": [
        {"type": "object", "required": ["type", "event"], "additionalProperties": False,
         "properties": {"type": {"const": "event"}, "event": _EVENT_NAME,
                        "where": {"type": "array", "items": _FILTER, "maxItems": 20},
                        "entry_key": {"type": "string", "minLength": 1, "maxLength": 200}}},
        {"type": "object", "required": ["type", "audience_id"], "additionalProperties": False,
         "properties": {"type": {"enum": ["audience_entered", "audience_exited"]},
                        "audience_id": _ID}},
        {"type": "object", "required": ["type", "field"], "additionalProperties": False,
         "properties": {"type": {"const": "date_anniversary"},
                        "field": {"type": "string", "minLength": 1, "maxLength": 200},
                        "offset_days": {"type": "integer", "minimum": -365, "maximum": 365}}},
        {"type": "object", "required": ["type"], "additionalProperties": False,
         "properties": {"type": {"const": "api"}}},
    ]
}  # fmt: skip

GRAPH_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Masivo journey graph",
    "type": "object",
    "required": ["trigger", "start", "steps"],
    "additionalProperties": False,
    "properties": {
        "trigger": TRIGGER_SCHEMA,
        "audience_id": {"type": ["integer", "null"], "minimum": 1},
        "entry_rules": {"type": ["object", "null"]},
        "allow_anonymous": {"type": "boolean"},
        "reentry": {"type": "object", "required": ["mode"], "additionalProperties": False,
                    "properties": {"mode": {"enum": ["once", "after_days", "always"]},
                                   "days": {"type": "integer", "minimum": 1, "maximum": 3650}}},
        "holdout_percent": {"type": "integer", "minimum": 0, "maximum": 50},
        "goal": {"type": ["object", "null"], "required": ["event"], "additionalProperties": False,
                 "properties": {"event": _EVENT_NAME,
                                "where": {"type": "array", "items": _FILTER, "maxItems": 20},
                                "within_days": {"type": "integer", "minimum": 1,
                                                "maximum": 365},
                                "match_entry_key": {"type": "boolean"}}},
        "exits": {"type": "array", "maxItems": 20, "items": {"oneOf": [
            {"type": "object", "required": ["type", "event"], "additionalProperties": False,
             "properties": {"type": {"const": "event"}, "event": _EVENT_NAME,
                            "where": {"type": "array", "items": _FILTER, "maxItems": 20}}},
            {"type": "object", "required": ["type", "audience_id"],
             "additionalProperties": False,
             "properties": {"type": {"const": "audience_exited"}, "audience_id": _ID}},
            {"type": "object", "required": ["type", "purpose"], "additionalProperties": False,
             "properties": {"type": {"const": "consent_withdrawn"},
                            "purpose": {"type": "string"}}}]}},
        "start": {"type": "string", "pattern": STEP_ID},
        "steps": {"type": "object", "minProperties": 1, "maxProperties": MAX_STEPS,
                  "propertyNames": {"pattern": STEP_ID},
                  "additionalProperties": {"type": "object", "required": ["type"],
                                           "properties": {"type": {"enum": list(STEP_SCHEMAS)}}}},
        "layout": {"type": "object"},  # the builder's positions; not read by the engine
    },
}  # fmt: skip


@dataclass(frozen=True)
class GraphError:
    path: str
    message: str

    def as_dict(self) -> dict:
        return {"field": self.path, "message": self.message}


class InvalidGraph(ValueError):
    def __init__(self, errors: list[GraphError]):
        super().__init__("; ".join(f"{e.path}: {e.message}" for e in errors[:5]))
        self.errors = errors


def _path(parts) -> str:
    return ".".join(str(part) for part in parts) or "$"


def _schema_errors(validator, document, prefix: tuple = ()) -> list[GraphError]:
    errors = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        # A oneOf failure: the branch its "type" chose says more than "not valid under any".
        if error.validator == "oneOf" and error.context:
            chosen = [e for e in error.context if "type" not in list(e.absolute_path)[:1]
                      and e.validator != "const"]  # fmt: skip
            error = min(chosen or error.context, key=lambda e: len(list(e.absolute_path)))
        errors.append(GraphError(_path((*prefix, *error.absolute_path)), error.message))
    return errors


def step_targets(step: dict) -> list[tuple[str, str]]:
    """(field, step id) of every step this one can lead to."""
    targets = []
    for field in ("next", "timeout_next", "else"):
        if field in step:
            targets.append((field, step[field]))
    for index, condition in enumerate(step.get("conditions", [])):
        targets.append((f"conditions.{index}.next", condition.get("next")))
    for index, path in enumerate(step.get("paths", [])):
        targets.append((f"paths.{index}.next", path.get("next")))
    return targets


def _rules_errors(document, path: str) -> list[GraphError]:
    try:
        parse_rules(document)
    except InvalidRules as error:
        return [GraphError(f"{path}.{where.lstrip('$.')}" if where != "$" else path, message)
                for where, message in error.errors]  # fmt: skip
    return []


def _filter_errors(event: str, where: list, path: str) -> list[GraphError]:
    """Event filters in the rule language's syntax, checked by its parser."""
    document = {"version": 1, "root": {"event": {"name": event, "where": where}}}
    return [GraphError(e.path.replace(f"{path}.root.event.where", f"{path}.where"), e.message)
            for e in _rules_errors(document, path)]  # fmt: skip


def graph_validate(graph: Any) -> dict:
    """The graph if it is valid; InvalidGraph listing every problem otherwise."""
    validator = jsonschema.Draft202012Validator(GRAPH_SCHEMA)
    errors = _schema_errors(validator, graph)
    if not isinstance(graph, dict) or errors:
        raise InvalidGraph(errors or [GraphError("$", "a journey graph is a JSON object")])
    steps = graph["steps"]
    for step_id, step in steps.items():
        schema = STEP_SCHEMAS[step["type"]]
        errors += _schema_errors(jsonschema.Draft202012Validator(schema), step,
                                 ("steps", step_id))  # fmt: skip
    if errors:
        raise InvalidGraph(errors)
    if graph["start"] not in steps:
        errors.append(GraphError("start", f"no step {graph['start']!r}"))
    for step_id, step in steps.items():
        for field, target in step_targets(step):
            if target not in steps:
                errors.append(GraphError(f"steps.{step_id}.{field}", f"no step {target!r}"))
            elif target == step_id:
                errors.append(GraphError(f"steps.{step_id}.{field}", "a step cannot lead to "
                                         "itself"))  # fmt: skip
        if step["type"] == "delay" and sum(k in step for k in ("duration", "until",
                                                                "until_date")) != 1:  # fmt: skip
            errors.append(GraphError(f"steps.{step_id}", "a delay has one of duration, until, "
                                     "until_date"))  # fmt: skip
        if step["type"] == "split" and sum(p["percent"] for p in step["paths"]) != 100:
            errors.append(GraphError(f"steps.{step_id}.paths", "the percentages sum to 100"))
        if step["type"] == "branch":
            for index, condition in enumerate(step["conditions"]):
                errors += _rules_errors(condition["rules"],
                                        f"steps.{step_id}.conditions.{index}.rules")  # fmt: skip
        if step["type"] == "wait_event":
            errors += _filter_errors(step["event"], step.get("where", []), f"steps.{step_id}")
    trigger = graph["trigger"]
    if trigger["type"] == "event":
        errors += _filter_errors(trigger["event"], trigger.get("where", []), "trigger")
    if graph.get("goal"):
        errors += _filter_errors(graph["goal"]["event"], graph["goal"].get("where", []), "goal")
    if graph.get("entry_rules"):
        errors += _rules_errors(graph["entry_rules"], "entry_rules")
    for index, exit_ in enumerate(graph.get("exits") or []):
        if exit_["type"] == "event":
            errors += _filter_errors(exit_["event"], exit_.get("where", []), f"exits.{index}")
    reentry = graph.get("reentry") or {}
    if reentry.get("mode") == "after_days" and "days" not in reentry:
        errors.append(GraphError("reentry.days", "required when mode is after_days"))
    errors += _unreachable(graph)
    if errors:
        raise InvalidGraph(errors)
    return graph


def _unreachable(graph: dict) -> list[GraphError]:
    steps, seen, todo = graph["steps"], set(), [graph["start"]]
    while todo:
        step_id = todo.pop()
        if step_id in seen or step_id not in steps:
            continue
        seen.add(step_id)
        todo.extend(target for _, target in step_targets(steps[step_id]))
    return [GraphError(f"steps.{step_id}", "no step leads here") for step_id in steps
            if step_id not in seen]  # fmt: skip


def event_names(graph: dict) -> set[str]:
    """Every event name the graph reacts to (trigger, waits, goal, exits): the index the
    event consumer uses to skip events no journey cares about."""
    names = set()
    if graph.get("trigger", {}).get("type") == "event":
        names.add(graph["trigger"]["event"])
    for step in graph.get("steps", {}).values():
        if step.get("type") == "wait_event":
            names.add(step["event"])
    if graph.get("goal"):
        names.add(graph["goal"]["event"])
    names.update(exit_["event"] for exit_ in graph.get("exits", []) if exit_["type"] == "event")
    return names


def audience_ids(graph: dict) -> set[int]:
    """Every audience whose membership changes the graph reacts to."""
    ids = set()
    trigger = graph.get("trigger", {})
    if trigger.get("type") in ("audience_entered", "audience_exited"):
        ids.add(trigger["audience_id"])
    for step in graph.get("steps", {}).values():
        if step.get("type") == "wait_audience":
            ids.add(step["audience_id"])
    ids.update(e["audience_id"] for e in graph.get("exits", []) if e["type"] == "audience_exited")
    return ids
