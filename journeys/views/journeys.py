"""Dashboard pages of journeys: the list (status, live version, customers in it, conversion),
a new journey, and the status actions (pause, resume, archive). The builder is
journeys.views.builder."""

from __future__ import annotations

from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from journeys import selectors, services
from journeys.models import Journey
from journeys.views.journey_forms import NewJourneyForm
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.forms import add_service_error, as_sentence

SHOWN = 200
STATUS_ACTIONS = {
    "pause": ("paused", "is paused"),
    "resume": ("active", "is running again"),
    "archive": ("archived", "is archived"),
}


@require_safe
@workspace_view(permission=Permission.READ)
def journey_list(request):
    rows = list(selectors.journeys_list()[:SHOWN])
    counts = selectors.journeys_list_counts([journey.id for journey in rows])
    for journey in rows:
        found = counts.get(journey.id, {})
        journey.active_enrollments = found.get("active", 0)
        journey.total_enrollments = found.get("total", 0)
        treatment = found.get("treatment", 0)
        journey.conversion_rate = found["converted"] / treatment if treatment else None
    return render(request, "journeys/list.html", {"rows": rows, "active_section": "journeys"})


@require_http_methods(["GET", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def journey_new(request):
    form = NewJourneyForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                journey = services.journey_create(
                    workspace=request.workspace,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    graph=form.graph(),
                    actor=request.actor,
                )
            except ServiceError as error:
                add_service_error(form, error)
                status = error.status
            else:
                flash.success(request, f"{journey.name} is saved as a draft: add its steps.")
                return redirect("dashboard:journey_builder", request.workspace.id, journey.id)
    context = {"form": form, "active_section": "journeys"}
    return render(request, "journeys/new.html", context, status=status)


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def journey_action(request, journey_id: int, action: str):
    journey = get_object_or_404(Journey, id=journey_id)
    if action not in STATUS_ACTIONS:
        return redirect("dashboard:journey_builder", request.workspace.id, journey.id)
    status, done = STATUS_ACTIONS[action]
    try:
        services.journey_set_status(journey=journey, status=status, actor=request.actor)
        flash.success(request, f"{journey.name} {done}.")
    except ServiceError as error:
        flash.error(request, as_sentence(error.message) + ".")
    return redirect("dashboard:journey_builder", request.workspace.id, journey.id)
