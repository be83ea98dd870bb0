"""Audiences: the list with size sparklines, the detail page (rules, recalculations with live
progress, members, the change feed), list members by hand, and delete.

Creating and editing (the rule builder) is in editor.py; explanations in explain.py. Reads go
through audiences.selectors and every write through audiences.services, as the API's do.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import BadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from audiences import selectors, services
from audiences.models import Audience, Recalculation
from audiences.views.display import duration_text, rule_lines, rules_json, sparkline
from audiences.views.forms import ListMembersForm, WhyForm
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.errors import permission_denied
from masivo.ui.forms import add_service_error, as_sentence
from masivo.ui.pages import Section, dashboard_source
from profiles import selectors as profile_selectors

MEMBERS_PAGE_SIZE = 25
CHANGES_SHOWN = 20
RUNS_SHOWN = 20
SPARKLINE_RUNS = 30
FINISHED = (
    Recalculation.Status.SUCCEEDED,
    Recalculation.Status.FAILED,
    Recalculation.Status.SKIPPED,
)
AUDIENCES_SECTION = Section(
    name="audiences",
    title="Audiences",
    lead="Segments built from rules on traits and events, or from uploaded lists.",
    empty_title="No audiences yet",
    empty_text=(
        "Audiences will appear here once you define one with rules on traits and events "
        "or upload a list of customers."
    ),
)


def audience_or_404(audience_id: int) -> Audience:
    # Scoped to the workspace in context: another workspace's audience is a 404.
    return get_object_or_404(selectors.audiences_list(), id=audience_id)


def detail_url(request, audience: Audience, anchor: str = "") -> str:
    url = reverse("dashboard:audience_detail", args=[request.workspace.id, audience.id])
    return f"{url}#{anchor}" if anchor else url


# -- the list ----------------------------------------------------------------------------------


@require_safe
@workspace_view(permission=Permission.READ)
def audiences_list(request):
    audiences = list(selectors.audiences_by_name().defer("rules", "description"))
    history = selectors.audience_size_history(
        workspace=request.workspace,
        audience_ids=[audience.id for audience in audiences],
        runs=SPARKLINE_RUNS,
    )
    rows = [
        {
            "audience": audience,
            "sparkline": sparkline(history[audience.id]),
            "duration": duration_text(audience.last_run_duration_ms),
        }
        for audience in audiences
    ]
    context = {"rows": rows, "section": AUDIENCES_SECTION, "active_section": "audiences"}
    return render(request, "audiences/list.html", context)


# -- the detail page ---------------------------------------------------------------------------


def _members_page(request, audience: Audience) -> dict:
    text = request.GET.get("after")
    try:
        before = int(text) if text else None
    except ValueError as error:
        raise BadRequest("malformed cursor") from error
    members = selectors.audience_members(
        audience=audience, before_customer_id=before, limit=MEMBERS_PAGE_SIZE + 1
    )
    has_more = len(members) > MEMBERS_PAGE_SIZE
    members = members[:MEMBERS_PAGE_SIZE]
    return {
        "members": members,
        "members_next": members[-1].customer_id if has_more else None,
        "is_members_continued": before is not None,
    }


def _change_rows(audience: Audience) -> list[tuple]:
    changes = selectors.changes_recent(audience=audience, limit=CHANGES_SHOWN)
    customers = profile_selectors.customers_list().filter(
        id__in={change.customer_id for change in changes}
    )
    by_id = {
        customer.id: customer
        for customer in customers.only("first_name", "last_name", "email", "external_id")
    }
    return [(change, by_id.get(change.customer_id)) for change in changes]


def progress_context(run: Recalculation | None) -> dict:
    return {
        "run": run,
        "is_finished": run is None or run.status in FINISHED,
        "run_duration": duration_text(run.duration_ms) if run else "",
    }


def detail_page(
    request,
    audience: Audience,
    *,
    why_form: WhyForm | None = None,
    members_form: ListMembersForm | None = None,
    status: int = 200,
):
    runs = selectors.recalculations_recent(audience=audience, limit=RUNS_SHOWN)
    context = {
        "audience": audience,
        "runs": [(run, duration_text(run.duration_ms)) for run in runs],
        "change_rows": _change_rows(audience),
        "why_form": why_form or WhyForm(),
        "members_form": members_form or ListMembersForm(),
        "active_section": "audiences",
        **progress_context(runs[0] if runs else None),
        **_members_page(request, audience),
    }
    if audience.kind == Audience.Kind.RULES:
        names = selectors.audience_names(ids=audience.depends_on)
        history = selectors.audience_size_history(
            workspace=request.workspace, audience_ids=[audience.id], runs=SPARKLINE_RUNS
        )
        context |= {
            "summary": rule_lines(audience.rules["root"], names),
            "rules_json": rules_json(audience.rules),
            # One run is a point, not a trend: the chart starts with the second.
            "size_chart": sparkline(history[audience.id], width=960, height=80)
            if len(history[audience.id]) > 1
            else None,
        }
    return render(request, "audiences/detail.html", context, status=status)


@require_safe
@workspace_view(permission=Permission.READ)
def audience_detail(request, audience_id: int):
    return detail_page(request, audience_or_404(audience_id))


# -- recalculation -----------------------------------------------------------------------------


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def audience_recalculate(request, audience_id: int):
    """Queue a run (as the API does). An htmx request gets the progress panel, which polls."""
    audience = audience_or_404(audience_id)
    try:
        run = services.audience_recalculate_request(audience=audience, reason="requested")
    except ServiceError as error:
        messages.error(request, as_sentence(error.message) + ".")
        return redirect(detail_url(request, audience))
    if request.htmx:
        context = {"audience": audience, **progress_context(run)}
        return render(request, "audiences/_recalculation.html", context)
    messages.success(request, "Recalculation queued.")
    return redirect(detail_url(request, audience, "recalculation"))


@require_safe
@workspace_view(permission=Permission.READ)
def audience_recalculation_progress(request, audience_id: int, run_id: int):
    """The progress panel alone, polled by htmx until the run finishes; then the whole page
    reloads (HX-Refresh) to show the new size, history, members and changes."""
    audience = audience_or_404(audience_id)
    run = get_object_or_404(selectors.recalculations_list(audience=audience), id=run_id)
    context = {"audience": audience, **progress_context(run)}
    response = render(request, "audiences/_recalculation.html", context)
    if request.htmx and context["is_finished"]:
        response["HX-Refresh"] = "true"
    return response


# -- uploaded lists ----------------------------------------------------------------------------


def _members_form_ids(form: ListMembersForm) -> list[int] | None:
    """The customer ids the form names (external ids and emails looked up in the workspace);
    None, with the error on the form, when one names no customer."""
    identifier = form.cleaned_data["identifier"]
    values = form.cleaned_data["customer_ids"]
    if identifier == "id":
        return values
    found = profile_selectors.customer_ids_by(identifier=identifier, values=values)
    if identifier == "email":
        values = [value.lower() for value in values]
    unknown = [value for value in values if value not in found]
    if unknown:
        label = dict(ListMembersForm.IDENTIFIERS)[identifier].lower()
        form.add_error("customer_ids", f"No customer has the {label} “{unknown[0][:80]}”.")
        return None
    return sorted(set(found.values()))


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def audience_members_change(request, audience_id: int):
    audience = audience_or_404(audience_id)
    form = ListMembersForm(request.POST)
    if not form.is_valid():
        return detail_page(request, audience, members_form=form, status=400)
    ids = _members_form_ids(form)
    if ids is None:
        return detail_page(request, audience, members_form=form, status=400)
    is_add = form.cleaned_data["action"] == "add"
    try:
        added, removed = services.list_members_change(
            audience=audience,
            add=ids if is_add else [],
            remove=[] if is_add else ids,
            actor=dashboard_source(request),
        )
    except ServiceError as error:
        add_service_error(form, error)
        return detail_page(request, audience, members_form=form, status=error.status)
    if is_add:
        skipped = len(ids) - added
        note = f" ({skipped} already in the list)" if skipped else ""
        messages.success(request, f"Added {added} customer{'s' if added != 1 else ''}{note}.")
    else:
        skipped = len(ids) - removed
        note = f" ({skipped} not in the list)" if skipped else ""
        messages.success(request, f"Removed {removed} customer{'s' if removed != 1 else ''}{note}.")
    return redirect(detail_url(request, audience, "members"))


# -- delete ------------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def audience_delete(request, audience_id: int):
    """GET asks for confirmation; POST deletes (409 while other audiences reference it)."""
    if not request.actor.can(Permission.EDIT_MARKETING):
        return permission_denied(request)
    audience = audience_or_404(audience_id)
    context = {"audience": audience, "active_section": "audiences"}
    if request.method != "POST":
        return render(request, "audiences/delete.html", context)
    try:
        services.audience_delete(audience=audience)
    except ServiceError as error:
        context["error"] = as_sentence(error.message)
        return render(request, "audiences/delete.html", context, status=error.status)
    messages.success(request, f"Deleted the audience “{audience.name}”.")
    return redirect("dashboard:audiences", workspace_id=request.workspace.id)
