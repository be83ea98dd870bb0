"""The journey builder: the draft (or the live version, until an edit makes a draft) drawn as
a flow of step cards, each with its form, the graph's validation errors on it and, once the
journey has run, its counts; edits (add, configure, remove a step; the entry and goal) write
the whole draft graph through journeys.services.journey_update; publishing, the status
actions and the version history. An old version is the same page, read-only."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth import get_user_model
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from journeys import selectors, services
from journeys.graph import InvalidGraph, graph_validate
from journeys.models import Journey, JourneyVersion
from journeys.views import flow
from journeys.views.forms import CHANNEL_NAMES, AddStepForm, duration_words, step_form
from journeys.views.journey_forms import EntryForm, PublishForm
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.forms import as_sentence
from messaging.models import Template


def _editable(journey: Journey) -> JourneyVersion | None:
    """The version edits start from: the draft, else the latest (an edit copies it into a
    new draft, journeys.services.journey_draft)."""
    return selectors.journey_draft_version(journey) or selectors.journey_versions(journey).first()


def graph_errors(graph: dict) -> list[tuple[str, str]]:
    """(path, message) of every problem publishing would refuse: the graph's own checks, then
    (when those pass) the workspace's templates."""
    try:
        graph_validate(graph)
    except InvalidGraph as error:
        return [(e.path, e.message) for e in error.errors]
    try:
        services.graph_check(graph)
    except ServiceError as error:
        return [((error.field or "").removeprefix("graph."), error.message)]
    return []


def _split_errors(errors) -> tuple[dict[str, list[dict]], list[dict]]:
    by_step: dict[str, list[dict]] = {}
    general = []
    for path, message in errors:
        parts = path.split(".", 2)
        if parts[0] == "steps" and len(parts) > 1:
            by_step.setdefault(parts[1], []).append(
                {"field": parts[2] if len(parts) > 2 else "", "message": message}
            )
        else:
            general.append({"field": path, "message": message})
    return by_step, general


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


def _names(graph: dict) -> dict:
    from audiences.models import Audience

    steps = (graph.get("steps") or {}).values()
    template_ids = {s.get("template_id") for s in steps if s.get("type") == "send"}
    audience_ids = {s.get("audience_id") for s in steps if s.get("type") == "wait_audience"}
    return {
        "templates": dict(
            Template.objects.filter(id__in=template_ids - {None}).values_list("id", "name")
        ),
        "audiences": dict(
            Audience.objects.filter(id__in=audience_ids - {None}).values_list("id", "name")
        ),
    }


def _walk(nodes):
    for node in nodes:
        yield node
        for column in node.columns:
            yield from _walk(column.nodes)


def _live_template_picker(request, journey: Journey, step_id: str, form) -> None:
    """Choosing a channel reloads the template picker with that channel's templates."""
    url = reverse(
        "dashboard:journey_step_templates", args=[request.workspace.id, journey.id, step_id]
    )
    form.fields["channel"].widget.attrs |= {
        "hx-get": url,
        "hx-target": f"#{form['template_id'].id_for_label}",
        "hx-swap": "outerHTML",
        "hx-trigger": "change",
    }


def _versions(journey: Journey) -> list[JourneyVersion]:
    versions = list(selectors.journey_versions(journey))
    ids = {
        int(v.published_by.removeprefix("user:"))
        for v in versions
        if v.published_by.startswith("user:") and v.published_by[5:].isdigit()
    }
    emails = dict(get_user_model().objects.filter(id__in=ids).values_list("id", "email"))
    for version in versions:
        who = version.published_by
        if who.startswith("user:") and who[5:].isdigit():
            who = emails.get(int(who[5:]), who)
        version.published_by_name = who
    return versions


def _page(
    request,
    journey: Journey,
    version: JourneyVersion | None,
    *,
    is_history=False,
    bound: dict | None = None,
    status=200,
):
    """The builder. `bound`: forms that failed (step id or "entry" → form) to show again."""
    bound = bound or {}
    graph = (version.graph if version else {}) or {}
    is_editable = (
        not is_history
        and journey.status != Journey.Status.ARCHIVED
        and request.actor.can(Permission.EDIT_MARKETING)
    )
    errors_by_step, general_errors = _split_errors(graph_errors(graph) if not is_history else [])
    has_run = journey.live_version_id is not None
    stats = (
        selectors.journey_step_stats(journey, version if is_history else None) if has_run else {}
    )
    names = _names(graph)
    nodes = flow.flow(graph)
    for node in _walk(nodes):
        if node.step is None:
            node.label = graph["steps"][node.id].get("label") or node.id
            continue
        node.summary = step_summary(node.step, names)
        node.errors = errors_by_step.get(node.id, [])
        node.stats = stats.get(node.id) if has_run else None
        node.type_label = flow.TYPE_LABELS.get(node.type, node.type)
        node.form = bound.get(node.id) or (step_form(node.id, node.step) if is_editable else None)
        if node.form is not None and node.type == "send":
            _live_template_picker(request, journey, node.id, node.form)
    drawn = {node.id for node in _walk(nodes)}
    loose = [
        {"id": step_id, "errors": errors_by_step.get(step_id, [])}
        for step_id in (graph.get("steps") or {})
        if step_id not in drawn
    ]
    context = {
        "journey": journey,
        "version": version,
        "graph": graph,
        "nodes": nodes,
        "loose_steps": loose,
        "general_errors": general_errors,
        "is_editable": is_editable,
        "is_history": is_history,
        "has_run": has_run,
        "has_unpublished_changes": bool(version and version.is_draft and has_run),
        "journey_stats": selectors.journey_stats(journey) if has_run else None,
        "entry_form": (bound.get("entry") or EntryForm(graph=graph)) if is_editable else None,
        "publish_form": bound.get("publish") or PublishForm(prefix="journey-publish"),
        "add_choices": flow.ADD_CHOICES,
        "versions": _versions(journey),
        "trigger_words": _trigger_words(graph, names),
        "active_section": "journeys",
    }
    return render(request, "journeys/builder.html", context, status=status)


def _trigger_words(graph: dict, names: dict) -> str:
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


@require_safe
@workspace_view(permission=Permission.READ)
def journey_builder(request, journey_id: int):
    journey = get_object_or_404(Journey, id=journey_id)
    return _page(request, journey, _editable(journey))


@require_safe
@workspace_view(permission=Permission.READ)
def journey_version(request, journey_id: int, number: int):
    journey = get_object_or_404(Journey, id=journey_id)
    version = get_object_or_404(JourneyVersion, journey=journey, number=number)
    if version.is_draft:
        return redirect("dashboard:journey_builder", request.workspace.id, journey.id)
    return _page(request, journey, version, is_history=True)


def _back(request, journey: Journey, anchor: str = ""):
    url = reverse("dashboard:journey_builder", args=[request.workspace.id, journey.id])
    return redirect(f"{url}#{anchor}" if anchor else url)


def _save(request, journey: Journey, graph: dict, anchor: str, done: str):
    try:
        services.journey_update(journey=journey, actor=request.actor, graph=graph)
    except ServiceError as error:
        flash.error(request, as_sentence(error.message) + ".")
    else:
        flash.success(request, done)
    return _back(request, journey, anchor)


def _journey_and_graph(journey_id: int) -> tuple[Journey, JourneyVersion, dict]:
    journey = get_object_or_404(Journey, id=journey_id)
    version = _editable(journey)
    if version is None:
        raise Http404("the journey has no version")
    return journey, version, dict(version.graph or {})


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def journey_step_add(request, journey_id: int):
    journey, _, graph = _journey_and_graph(journey_id)
    form = AddStepForm(request.POST, choices=flow.ADD_CHOICES)
    if not form.is_valid():
        flash.error(request, "Choose the type of the new step.")
        return _back(request, journey)
    try:
        graph, step_id = flow.step_insert(
            graph,
            source=form.cleaned_data["source"],
            name=form.cleaned_data["edge"],
            choice=form.cleaned_data["choice"],
        )
    except flow.FlowEditError as error:
        flash.error(request, as_sentence(str(error)) + ".")
        return _back(request, journey)
    return _save(request, journey, graph, f"step-{step_id}", f"Step {step_id} is added.")


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def journey_step_edit(request, journey_id: int, step_id: str):
    journey, version, graph = _journey_and_graph(journey_id)
    step = (graph.get("steps") or {}).get(step_id)
    if step is None:
        raise Http404("no such step")
    form = step_form(step_id, step, request.POST)
    if not form.is_valid():
        return _page(request, journey, version, bound={step_id: form}, status=400)
    graph["steps"] = dict(graph["steps"]) | {step_id: form.step_values()}
    return _save(request, journey, graph, f"step-{step_id}", f"Step {step_id} is saved.")


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def journey_step_remove(request, journey_id: int, step_id: str):
    journey, _, graph = _journey_and_graph(journey_id)
    try:
        graph = flow.step_remove(graph, step_id)
    except flow.FlowEditError as error:
        flash.error(request, as_sentence(str(error)) + ".")
        return _back(request, journey, f"step-{step_id}")
    return _save(request, journey, graph, "flow", f"Step {step_id} is removed.")


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def journey_step_paths(request, journey_id: int, step_id: str):
    """Add a condition or path (leading where the last column leads), or remove one."""
    journey, _, graph = _journey_and_graph(journey_id)
    step = (graph.get("steps") or {}).get(step_id)
    if step is None or step["type"] not in ("branch", "split"):
        raise Http404("no such step")
    try:
        graph = flow.paths_change(
            graph,
            step_id,
            action=request.POST.get("action", ""),
            index=request.POST.get("index", ""),
        )
    except flow.FlowEditError as error:
        flash.error(request, as_sentence(str(error)) + ".")
        return _back(request, journey, f"step-{step_id}")
    return _save(request, journey, graph, f"step-{step_id}", f"Step {step_id} is saved.")


@require_safe
@workspace_view(permission=Permission.READ)
def journey_step_templates(request, journey_id: int, step_id: str):
    """The template picker of a send step for the channel just chosen (htmx)."""
    _, _, graph = _journey_and_graph(journey_id)
    step = (graph.get("steps") or {}).get(step_id)
    if step is None or step.get("type") != "send":
        raise Http404("no such step")
    form = step_form(step_id, step, request.GET)
    return render(request, "journeys/_template_picker.html", {"field": form["template_id"]})


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def journey_entry(request, journey_id: int):
    journey, version, graph = _journey_and_graph(journey_id)
    form = EntryForm(request.POST, graph=graph)
    if not form.is_valid():
        return _page(request, journey, version, bound={"entry": form}, status=400)
    return _save(request, journey, form.graph_values(), "entry", "The entry and goal are saved.")


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def journey_publish(request, journey_id: int):
    journey = get_object_or_404(Journey, id=journey_id)
    form = PublishForm(request.POST, prefix="journey-publish")
    if not form.is_valid():
        return _page(request, journey, _editable(journey), bound={"publish": form}, status=400)
    try:
        version = services.journey_publish(
            journey=journey,
            actor=request.actor,
            note=form.cleaned_data["note"],
            move_waiting=form.cleaned_data["move_waiting"],
        )
    except ServiceError as error:
        flash.error(request, f"Not published: {error.message}.")
        return _back(request, journey)
    flash.success(request, f"Version {version.number} of {journey.name} is live.")
    return _back(request, journey)
