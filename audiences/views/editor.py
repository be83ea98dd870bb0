"""Creating and editing audiences: the form with the rule builder (static/masivo/rule-builder.js),
the live size estimate it posts to, and the event-property picker it reads."""

from __future__ import annotations

import json

from django import forms
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from audiences import selectors, services
from audiences.models import Audience
from audiences.views.audiences import audience_or_404
from audiences.views.display import builder_options
from audiences.views.forms import AudienceForm, parsed_rules
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.errors import permission_denied
from masivo.ui.forms import add_service_error, as_sentence
from profiles.tracking import MAX_EVENT_NAME_LENGTH


def _options(request, audience: Audience | None) -> str:
    others = selectors.audiences_by_name()
    if audience is not None:
        others = others.exclude(id=audience.id)
    options = builder_options(
        keys_seen=selectors.profile_keys_seen(workspace=request.workspace),
        event_names=selectors.event_names_seen(workspace=request.workspace),
        audiences=list(others.values("id", "name")),
        event_properties_url=reverse(
            "dashboard:audience_event_properties", args=[request.workspace.id]
        ),
    )
    return json.dumps(options, ensure_ascii=False)


def _editor_page(
    request,
    form: AudienceForm,
    *,
    audience: Audience | None = None,
    rule_errors: list[tuple[str, str]] = (),
    status: int = 200,
):
    context = {
        "form": form,
        "audience": audience,
        "is_rules": form.audience_kind == Audience.Kind.RULES,
        "rule_errors": rule_errors,
        "builder_options": _options(request, audience),
        "active_section": "audiences",
    }
    return render(request, "audiences/edit.html", context, status=status)


def _refused(request, form, error: ServiceError, *, audience=None):
    """The form again, with a service's refusal: rule problems listed by JSON path."""
    if isinstance(error, services.RulesError):
        return _editor_page(
            request, form, audience=audience, rule_errors=error.errors, status=error.status
        )
    add_service_error(form, error)
    return _editor_page(request, form, audience=audience, status=error.status)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def audience_create(request):
    if not request.actor.can(Permission.EDIT_MARKETING):
        return permission_denied(request)
    if request.method != "POST":
        return _editor_page(request, AudienceForm())
    form = AudienceForm(request.POST)
    if not form.is_valid():
        return _editor_page(request, form, status=400)
    try:
        audience = services.audience_create(workspace=request.workspace, data=form.cleaned_data)
    except ServiceError as error:
        return _refused(request, form, error)
    return redirect("dashboard:audience_detail", request.workspace.id, audience.id)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def audience_edit(request, audience_id: int):
    if not request.actor.can(Permission.EDIT_MARKETING):
        return permission_denied(request)
    audience = audience_or_404(audience_id)
    if request.method != "POST":
        return _editor_page(request, AudienceForm(audience=audience), audience=audience)
    form = AudienceForm(request.POST, audience=audience)
    if not form.is_valid():
        return _editor_page(request, form, audience=audience, status=400)
    try:
        services.audience_update(audience=audience, data=form.changes())
    except ServiceError as error:
        return _refused(request, form, error, audience=audience)
    return redirect("dashboard:audience_detail", request.workspace.id, audience.id)


@require_POST
@workspace_view(permission=Permission.READ)
def audience_preview(request):
    """The live size estimate of unsaved rules: a partial the builder swaps in as you edit.

    Always 200 (htmx swaps only successful responses): invalid rules are part of the answer.
    """
    context = {}
    text = request.POST.get("rules", "")
    if not text.strip():  # the builder leaves out conditions not filled in yet
        context["problem"] = "Complete a condition to see how many customers match."
        return render(request, "audiences/_preview.html", context)
    try:
        document = parsed_rules(text)
        context["preview"] = selectors.audience_preview(
            workspace=request.workspace, rules_document=document
        )
    except forms.ValidationError as error:
        context["problem"] = error.messages[0]
    except services.RulesError as error:
        context["rule_errors"] = error.errors
    except selectors.PreviewTooSlow as error:
        context["problem"] = as_sentence(error.message) + "."
    return render(request, "audiences/_preview.html", context)


@require_safe
@workspace_view(permission=Permission.READ)
def audience_event_properties(request):
    """Property paths seen on recent events of one name, for the builder's property picker."""
    name = request.GET.get("name", "")[:MAX_EVENT_NAME_LENGTH]
    paths = (
        selectors.event_property_paths_seen(workspace=request.workspace, name=name) if name else []
    )
    return JsonResponse({"properties": paths})
