"""The journey builder: the draft (or the live version, until an edit makes a draft) drawn as
a flow of step cards, each with its form, the graph's validation errors on it and, once the
journey has run, its counts; edits (add, configure, remove a step; the entry, who may enter
and the goal; the exit rules) write the whole draft graph through
journeys.services.journey_update, each naming the draft's revision the page was drawn from
(so an edit made on a page someone else's change has since outdated is refused, not saved
over theirs); publishing, the status actions and the version history. An old version is the
same page, read-only."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth import get_user_model
from django.core.exceptions import BadRequest
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from journeys import selectors, services
from journeys.graph import InvalidGraph, graph_validate
from journeys.models import Journey, JourneyVersion
from journeys.views import flow, summaries
from journeys.views.forms import AddStepForm, step_form
from journeys.views.journey_forms import EntryForm, ExitForm, PublishForm
from masivo.tenancy.errors import Conflict, ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.forms import as_sentence

STALE_DRAFT = (
    "Someone else changed this draft since this page was loaded, so your change was not saved. "
    "The page now shows the draft as it is"
)


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
    is_stale=False,
):
    """The builder. `bound`: forms that failed (step id, "entry" or "exit" → form) to show
    again; `is_stale`: they were refused for an outdated revision (they show the draft as it
    is now, and the forms carry its revision)."""
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
    names = summaries.graph_names(graph)
    nodes = flow.flow(graph)
    for node in _walk(nodes):
        if node.step is None:
            node.label = graph["steps"][node.id].get("label") or node.id
            continue
        node.summary = summaries.step_summary(node.step, names)
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
        "revision": version.revision if version else "",
        "is_stale": is_stale,
        "entry_form": (bound.get("entry") or EntryForm(graph=graph)) if is_editable else None,
        "exits": [
            {"index": index, "words": summaries.exit_words(rule, names)}
            for index, rule in enumerate(summaries.exit_rules(graph))
        ],
        "exit_form": (
            (bound.get("exit") or ExitForm(exits=summaries.exit_rules(graph)))
            if is_editable
            else None
        ),
        "who_may_enter": summaries.who_may_enter(graph, names),
        "publish_form": bound.get("publish") or PublishForm(prefix="journey-publish"),
        "add_choices": flow.ADD_CHOICES,
        "versions": _versions(journey),
        "trigger_words": summaries.trigger_words(graph, names),
        "active_section": "journeys",
    }
    return render(request, "journeys/builder.html", context, status=status)


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


def posted_revision(request) -> int | None:
    """The draft's revision the page was drawn from (each form's hidden `revision`); none: the
    edit is not checked against it."""
    raw = request.POST.get("revision", "")
    if raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise BadRequest("revision: a whole number")
    return int(raw)


def _form_refused(request, journey: Journey, version: JourneyVersion, bound: dict):
    """A form that failed, drawn again with its errors: 400, or 409 when the page it came from
    was also outdated (so the message says so before the person fixes and saves again)."""
    revision = posted_revision(request)
    is_stale = revision is not None and revision != version.revision
    return _page(request, journey, version, bound=bound, status=409 if is_stale else 400,
                 is_stale=is_stale)  # fmt: skip


def _save(request, journey: Journey, graph: dict, anchor: str, done: str, bound=None):
    """Save the draft's graph and go back to the builder with what happened. Refused for an
    outdated revision, a form's page is drawn again (409) with what was typed in it."""
    try:
        services.journey_update(journey=journey, actor=request.actor, graph=graph,
                                revision=posted_revision(request))  # fmt: skip
    except Conflict as error:
        if error.field != "revision":
            flash.error(request, as_sentence(error.message) + ".")
        elif bound:
            return _page(request, journey, _editable(journey), bound=bound, status=409,
                         is_stale=True)  # fmt: skip
        else:
            flash.error(request, f"{STALE_DRAFT}: make your change again if it still applies.")
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
        return _form_refused(request, journey, version, {step_id: form})
    graph["steps"] = dict(graph["steps"]) | {step_id: form.step_values()}
    return _save(request, journey, graph, f"step-{step_id}", f"Step {step_id} is saved.",
                 bound={step_id: form})  # fmt: skip


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
        return _form_refused(request, journey, version, {"entry": form})
    return _save(request, journey, form.graph_values(), "entry", "The entry and goal are saved.",
                 bound={"entry": form})  # fmt: skip


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def journey_exit_add(request, journey_id: int):
    journey, version, graph = _journey_and_graph(journey_id)
    rules = summaries.exit_rules(graph)
    form = ExitForm(request.POST, exits=rules)
    if not form.is_valid():
        return _form_refused(request, journey, version, {"exit": form})
    graph["exits"] = [*rules, form.exit_values()]
    return _save(request, journey, graph, "exits", "The exit is added.", bound={"exit": form})


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def journey_exit_remove(request, journey_id: int, index: int):
    journey, _, graph = _journey_and_graph(journey_id)
    rules = summaries.exit_rules(graph)
    if index >= len(rules):
        flash.error(request, "That exit is no longer in the draft: nothing was removed.")
        return _back(request, journey, "exits")
    graph["exits"] = rules[:index] + rules[index + 1 :]
    if not graph["exits"]:
        del graph["exits"]
    return _save(request, journey, graph, "exits", "The exit is removed.")


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
            revision=posted_revision(request),
        )
    except ServiceError as error:
        if error.field == "revision":
            flash.error(request, "Not published: someone else changed this draft since this page "
                        "was loaded. The page now shows the draft as it is: review it, then "
                        "publish again.")  # fmt: skip
        else:
            flash.error(request, f"Not published: {error.message}.")
        return _back(request, journey)
    flash.success(request, f"Version {version.number} of {journey.name} is live.")
    return _back(request, journey)
