"""The builder's view of a graph: the flow drawn from `start` (branches as side-by-side columns
that join again where their paths meet), and the edits the builder makes to a draft graph
(insert a step on an edge, remove one and re-link what led to it). Pure functions on the graph
dict; the views save the result through journeys.services.journey_update.

An edge is (source step id, field): the field of the source that names the next step
(`next`, `timeout_next`, `else`, `conditions.<i>.next`, `paths.<i>.next`); the source "" with
the field `start` is the graph's start.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass, field

from journeys.graph import CHANNELS, step_targets

START = ("", "start")

# What the "add a step" menu offers: (choice, label); a send is one choice per channel.
SEND_NAMES = {
    "email": "email",
    "push": "push",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "in_app": "in-app message",
}
ADD_CHOICES = [
    *((f"send:{channel}", f"Send {SEND_NAMES.get(channel, channel)}") for channel in CHANNELS),
    ("delay", "Delay"),
    ("wait_event", "Wait for an event"),
    ("wait_audience", "Wait for an audience"),
    ("branch", "Branch on conditions"),
    ("split", "Split (A/B)"),
    ("update_profile", "Update the profile"),
    ("webhook", "Call a webhook"),
    ("exit", "Exit"),
]
TYPE_LABELS = {
    "send": "Send",
    "delay": "Delay",
    "wait_event": "Wait for event",
    "wait_audience": "Wait for audience",
    "branch": "Branch",
    "split": "Split",
    "update_profile": "Update profile",
    "webhook": "Webhook",
    "exit": "Exit",
}


class FlowEditError(ValueError):
    """An edit the graph cannot take (a step or edge that is not there)."""


def _targets(step: dict) -> list[str]:
    return [target for _, target in step_targets(step) if isinstance(target, str)]


def edge_target(graph: dict, source: str, name: str) -> str | None:
    if (source, name) == START:
        return graph.get("start")
    step = graph.get("steps", {}).get(source)
    if step is None:
        return None
    return dict(step_targets(step)).get(name)


def _edge_set(graph: dict, source: str, name: str, target: str) -> None:
    if (source, name) == START:
        graph["start"] = target
        return
    step = graph["steps"][source]
    parts = name.split(".")
    if len(parts) == 3:
        step[parts[0]][int(parts[1])]["next"] = target
    else:
        step[name] = target


def new_step_id(graph: dict, choice: str) -> str:
    base = choice.split(":")[-1] if choice.startswith("send:") else choice
    steps = graph.get("steps", {})
    if base not in steps:
        return base
    number = 2
    while f"{base}_{number}" in steps:
        number += 1
    return f"{base}_{number}"


def new_step(choice: str, target: str) -> dict:
    """A step of the chosen kind that leads where the edge led (every path of a branching
    step does). What the marketer still has to choose (a template, an event, a rule) is left
    out, so the card shows the graph's own error until it is configured."""
    kind, _, channel = choice.partition(":")
    if kind == "send":
        return {"type": "send", "channel": channel, "next": target}
    if kind == "delay":
        return {"type": "delay", "duration": {"days": 1}, "next": target}
    if kind == "wait_event":
        return {
            "type": "wait_event",
            "timeout": {"days": 1},
            "next": target,
            "timeout_next": target,
        }
    if kind == "wait_audience":
        return {
            "type": "wait_audience",
            "member": True,
            "timeout": {"days": 1},
            "next": target,
            "timeout_next": target,
        }
    if kind == "branch":
        return {
            "type": "branch",
            "conditions": [{"label": "Condition 1", "rules": {}, "next": target}],
            "else": target,
        }
    if kind == "split":
        return {
            "type": "split",
            "paths": [
                {"name": "A", "percent": 50, "next": target},
                {"name": "B", "percent": 50, "next": target},
            ],
        }
    if kind == "update_profile":
        return {"type": "update_profile", "next": target}
    if kind == "webhook":  # the endpoint is chosen in the step's form
        return {"type": "webhook", "next": target}
    if kind == "exit":
        return {"type": "exit"}
    raise FlowEditError(f"no step type {choice!r}")


def step_insert(graph: dict, *, source: str, name: str, choice: str) -> tuple[dict, str]:
    """The graph with a new step on the edge (source, name); returns it and the new id. A new
    exit step ends the path: what the edge led to stays only if something else leads there."""
    graph = copy.deepcopy(graph)
    graph.setdefault("steps", {})
    target = edge_target(graph, source, name)
    if target is None and (source, name) != START:
        raise FlowEditError("there is no such place in the journey")
    step_id = new_step_id(graph, choice)
    reachable_before = reachable(graph)
    step = new_step(choice, target or "")
    if not target:
        step = {key: value for key, value in step.items() if value != ""}
    graph["steps"][step_id] = step
    _edge_set(graph, source, name, step_id)
    _prune(graph, reachable_before)
    return graph, step_id


def step_remove(graph: dict, step_id: str) -> dict:
    """The graph without the step: whatever led to it now leads where it led (a branching
    step's main path: `next`, `else`, the first split path), and the steps only its other
    paths reached go too. The last step of a path (an exit) cannot go: a path needs an end."""
    graph = copy.deepcopy(graph)
    steps = graph.get("steps", {})
    step = steps.get(step_id)
    if step is None:
        raise FlowEditError(f"no step {step_id!r}")
    targets = _targets(step)
    if step.get("type") == "branch":
        targets = [step.get("else"), *targets]
    successor = next((t for t in targets if t and t != step_id), None)
    if successor is None:
        raise FlowEditError(
            "the last step of a path cannot be removed; add another step "
            "after the one before it instead"
        )
    reachable_before = reachable(graph)
    del steps[step_id]
    if graph.get("start") == step_id:
        graph["start"] = successor
    for other in steps.values():
        for name, target in step_targets(other):
            if target == step_id:
                _edge_set(graph, _id_of(steps, other), name, successor)
    _prune(graph, reachable_before)
    return graph


def paths_change(graph: dict, step_id: str, *, action: str, index: str) -> dict:
    """A branch's conditions or a split's paths: `add` one (leading where the last column
    leads), or `remove` the one at `index` (the steps only it reached go too)."""
    graph = copy.deepcopy(graph)
    step = graph["steps"][step_id]
    key = "conditions" if step["type"] == "branch" else "paths"
    items = step.get(key, [])
    if action == "add":
        target = step.get("else") if key == "conditions" else items[-1]["next"]
        number = len(items) + 1
        items.append(
            {"label": f"Condition {number}", "rules": {}, "next": target}
            if key == "conditions"
            else {"name": chr(ord("A") + len(items)), "percent": 10, "next": target}
        )
        step[key] = items
        return graph
    minimum = 1 if key == "conditions" else 2
    if action != "remove" or not index.isdigit() or int(index) >= len(items):
        raise FlowEditError("there is no such path")
    if len(items) <= minimum:
        raise FlowEditError(
            f"a {step['type']} keeps at least {minimum} {'condition' if minimum == 1 else 'paths'}"
        )
    reachable_before = reachable(graph)
    del items[int(index)]
    _prune(graph, reachable_before)
    return graph


def _id_of(steps: dict, step: dict) -> str:
    return next(step_id for step_id, candidate in steps.items() if candidate is step)


def reachable(graph: dict, start: str | None = None, stop: str | None = None) -> dict[str, int]:
    """Step id → distance from `start` (the graph's start by default), not going past `stop`."""
    steps = graph.get("steps", {})
    first = graph.get("start") if start is None else start
    distances: dict[str, int] = {}
    queue = deque([(first, 0)])
    while queue:
        step_id, distance = queue.popleft()
        if step_id in distances or step_id not in steps:
            continue
        distances[step_id] = distance
        if step_id != stop:
            queue.extend((target, distance + 1) for target in _targets(steps[step_id]))
    return distances


def _prune(graph: dict, reachable_before: dict) -> None:
    """Drop the steps this edit cut off (those reachable before and not now); steps that
    nothing reached before stay, so the graph's own error still names them."""
    now = reachable(graph)
    for step_id in list(graph["steps"]):
        if step_id in reachable_before and step_id not in now:
            del graph["steps"][step_id]


# Drawing ---------------------------------------------------------------------------------------


@dataclass
class Column:
    label: str
    source: str
    name: str
    nodes: list = field(default_factory=list)


@dataclass
class Node:
    id: str
    step: dict | None = None  # None: a link to a step drawn elsewhere (a loop, a crossing path)
    columns: list[Column] = field(default_factory=list)
    # What the page adds: the card's text, errors, counts and form; a link's target label.
    summary: str = ""
    errors: list = field(default_factory=list)
    stats: dict | None = None
    form: object = None
    label: str = ""
    type_label: str = ""

    @property
    def type(self) -> str:
        return (self.step or {}).get("type", "")

    @property
    def has_next(self) -> bool:
        return bool(self.step) and "next" in self.step and not self.columns


def _column_label(step: dict, name: str) -> str:
    kind = step["type"]
    if kind == "wait_event":
        return f"{step.get('event') or 'The event'} came" if name == "next" else "Timed out"
    if kind == "wait_audience":
        return "In the audience" if name == "next" else "Timed out"
    if name == "else":
        return "Otherwise"
    index = int(name.split(".")[1])
    if kind == "branch":
        condition = step["conditions"][index]
        return condition.get("label") or f"Condition {index + 1}"
    path = step["paths"][index]
    return f"{path.get('name') or f'Path {index + 1}'} · {path.get('percent', '?')}%"


def _merge_point(graph: dict, targets: list[str], stop: str | None) -> str | None:
    """Where the paths from a branching step meet again: the common step nearest to all."""
    distances = [reachable(graph, target, stop) for target in targets]
    common = set(distances[0]).intersection(*distances[1:])
    if not common:
        return None
    return min(common, key=lambda step_id: (sum(d[step_id] for d in distances), step_id))


def flow(graph: dict) -> list[Node]:
    """The nodes to draw from the start, in order; a branching step carries its columns and
    the walk goes on below them from where the columns meet."""
    drawn: set[str] = set()
    return _chain(graph, graph.get("start"), None, drawn)


def _chain(graph: dict, current: str | None, stop: str | None, drawn: set[str]) -> list[Node]:
    steps = graph.get("steps", {})
    nodes: list[Node] = []
    while current and current != stop and current in steps:
        if current in drawn:
            nodes.append(Node(id=current))
            break
        drawn.add(current)
        step = steps[current]
        edges = [(name, target) for name, target in step_targets(step) if isinstance(target, str)]
        if step["type"] in ("branch", "split", "wait_event", "wait_audience") and edges:
            if step["type"] == "branch" and "else" in step:
                edges = [edge for edge in edges if edge[0] != "else"] + [("else", step["else"])]
            merge = _merge_point(graph, [target for _, target in edges], stop)
            node = Node(id=current, step=step)
            for name, target in edges:
                column = Column(label=_column_label(step, name), source=current, name=name)
                column.nodes = _chain(graph, target, merge, drawn)
                node.columns.append(column)
            nodes.append(node)
            current = merge
            continue
        nodes.append(Node(id=current, step=step))
        current = step.get("next") if isinstance(step.get("next"), str) else None
    return nodes
