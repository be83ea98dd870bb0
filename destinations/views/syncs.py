"""Dashboard pages of audience syncs: create one (from a destination's page or an audience's),
a sync's page with its live run (HTMX polling), run history, failed records and actions (run
now, pause, resume, replay, delete), and the syncs panel of an audience's page. Thin: forms
check shapes, destinations.services decides."""

from __future__ import annotations

from django import forms
from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from audiences.models import Audience
from destinations import selectors, services
from destinations.connectors import connector_class
from destinations.connectors.base import AUDIENCES
from destinations.identifiers import Identifier
from destinations.models import AudienceSync, Destination, SyncRun
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.errors import permission_denied
from masivo.ui.forms import add_service_error, as_sentence

SECTION = "destinations"
LIVE = (SyncRun.Status.QUEUED, SyncRun.Status.RUNNING)
FAILED_SHOWN = 100
RUNS_SHOWN = 50
ACTIONS = {
    "pause": (lambda sync, actor: services.sync_set_paused(sync=sync, paused=True, actor=actor),
              "is paused"),
    "resume": (lambda sync, actor: services.sync_set_paused(sync=sync, paused=False, actor=actor),
               "is active again; its next run is due now"),
}  # fmt: skip


def syncs_rows(syncs) -> list[AudienceSync]:
    """Syncs given `last_run`, `last_synced_at` and `lag_seconds` (three queries for any
    number)."""
    syncs = list(syncs)
    ids = [sync.id for sync in syncs]
    last_runs = selectors.last_runs(ids)
    successes = selectors.last_successes(ids)
    now = timezone.now()
    for sync in syncs:
        sync.last_run = last_runs.get(sync.id)
        sync.last_synced_at = successes.get(sync.id)
        sync.lag_seconds = selectors.sync_lag_seconds(sync.last_synced_at, now)
    return syncs


class SyncForm(forms.Form):
    audience = forms.TypedChoiceField(coerce=int)
    destination = forms.TypedChoiceField(coerce=int)
    mode = forms.ChoiceField(choices=AudienceSync.Mode.choices, widget=forms.RadioSelect,
                             initial=AudienceSync.Mode.INCREMENTAL)  # fmt: skip
    trigger = forms.ChoiceField(choices=AudienceSync.Trigger.choices, widget=forms.RadioSelect,
                                initial=AudienceSync.Trigger.SCHEDULE)  # fmt: skip
    interval_minutes = forms.IntegerField(
        required=False, min_value=1, label="Every (minutes)",
        help_text="On a schedule: minutes between runs (default 60). Streaming: how long "
        "changes are batched (default 5).",
    )  # fmt: skip
    identifiers = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, required=False,
        help_text="What to send; empty: the destination's defaults.",
    )  # fmt: skip
    remote = forms.ChoiceField(
        choices=[("new", "Create a new audience there"), ("existing", "Use an existing one")],
        widget=forms.RadioSelect, initial="new", label="Audience at the destination",
    )  # fmt: skip
    remote_audience_name = forms.CharField(
        max_length=200, required=False, label="New audience name"
    )
    remote_audience_id = forms.CharField(
        max_length=200, required=False, label="Existing audience id"
    )

    def __init__(self, *args, destination: Destination | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["audience"].choices = [
            (a.id, a.name) for a in Audience.objects.order_by("name")
        ]
        takes = [d for d in Destination.objects.order_by("name")
                 if connector_class(d.kind).has(AUDIENCES)]  # fmt: skip
        self.fields["destination"].choices = [(d.id, d.name) for d in takes]
        connector = connector_class(destination.kind) if destination else None
        offered = connector.identifier_choices() if connector else Identifier.values
        self.fields["identifiers"].choices = [
            (value, label) for value, label in Identifier.choices if value in offered
        ]

    def values(self) -> dict:
        data = self.cleaned_data
        is_new = data["remote"] == "new"
        return {
            "mode": data["mode"],
            "trigger": data["trigger"],
            "interval_minutes": data.get("interval_minutes"),
            "identifiers": data.get("identifiers") or None,
            "remote_audience_name": data.get("remote_audience_name", "") if is_new else "",
            "remote_audience_id": "" if is_new else data.get("remote_audience_id", ""),
        }

    def show(self, error: ServiceError) -> None:
        field = (error.field or "").split(".")[0].removesuffix("_id")  # destination_id, …
        if field in ("remote_audience", "remote_audience_name"):
            is_new = self.cleaned_data.get("remote") == "new"
            field = "remote_audience_name" if is_new else "remote_audience_id"
        error.field = field if field in self.fields else None
        add_service_error(self, error)


def _query_id(request, name: str) -> int | None:
    raw = request.GET.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def sync_new(request):
    if not request.actor.can(Permission.EDIT_MARKETING):
        return permission_denied(request)
    destination_id = _query_id(request, "destination")
    audience_id = _query_id(request, "audience")
    fixed = Destination.objects.filter(id=destination_id).first() if destination_id else None
    initial = {"destination": destination_id, "audience": audience_id}
    if fixed is not None:
        described = selectors.kind_describe(connector_class(fixed.kind))
        initial["identifiers"] = list(described.default_identifiers)
    form = SyncForm(request.POST if request.method == "POST" else None, destination=fixed,
                    initial=initial)  # fmt: skip
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            destination = get_object_or_404(Destination, id=form.cleaned_data["destination"])
            audience = get_object_or_404(Audience, id=form.cleaned_data["audience"])
            try:
                sync = services.sync_create(destination=destination, audience=audience,
                                            actor=request.actor, **form.values())  # fmt: skip
            except ServiceError as error:
                form.show(error)
                status = error.status
            else:
                flash.success(request, f"{audience.name} syncs to {destination.name}; the first "
                                       "run is queued.")  # fmt: skip
                return redirect("dashboard:sync_detail", request.workspace.id, sync.id)
    context = {"form": form, "destination": fixed, "active_section": SECTION}
    return render(request, "destinations/sync_form.html", context, status=status)


def _progress_context(sync: AudienceSync) -> dict:
    run = selectors.sync_runs(sync).first()
    return {"sync": sync, "run": run, "is_live": run is not None and run.status in LIVE}


@require_safe
@workspace_view(permission=Permission.READ)
def sync_detail(request, sync_id: int):
    sync = get_object_or_404(selectors.syncs_list(), id=sync_id)
    sync = syncs_rows([sync])[0]
    failed = selectors.failed_records(sync)
    context = _progress_context(sync) | {
        "runs": list(selectors.sync_runs(sync)[:RUNS_SHOWN]),
        "failed_records": list(failed[:FAILED_SHOWN]),
        "failed_count": failed.count(),
        "kind_label": connector_class(sync.destination.kind).label,
        "active_section": SECTION,
    }
    return render(request, "destinations/sync_detail.html", context)


@require_safe
@workspace_view(permission=Permission.READ)
def sync_progress(request, sync_id: int):
    """The live run. A poll (`?live=1`) that finds the run finished reloads the whole page
    (HX-Refresh), so the history, the remote size and the failed records are current too."""
    sync = get_object_or_404(AudienceSync, id=sync_id)
    context = _progress_context(sync)
    response = render(request, "destinations/_sync_progress.html", context)
    if request.GET.get("live") and not context["is_live"] and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def sync_action(request, sync_id: int, action: str):
    sync = get_object_or_404(selectors.syncs_list(), id=sync_id)
    try:
        if action == "delete":
            services.sync_delete(sync=sync, actor=request.actor)
            flash.success(request, f"{sync.audience.name} no longer syncs to "
                                   f"{sync.destination.name}.")  # fmt: skip
            return redirect("dashboard:destination_detail", request.workspace.id,
                            sync.destination_id)  # fmt: skip
        if action == "run":
            services.sync_run_now(sync=sync, actor=request.actor)
            flash.success(request, "A run is queued.")
        elif action in ACTIONS:
            service, done = ACTIONS[action]
            service(sync, request.actor)
            flash.success(request, f"The sync {done}.")
    except ServiceError as error:
        flash.error(request, as_sentence(error.message) + ".")
    return redirect("dashboard:sync_detail", request.workspace.id, sync.id)


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def sync_run_replay(request, sync_id: int, run_id: int):
    sync = get_object_or_404(AudienceSync, id=sync_id)
    run = get_object_or_404(SyncRun, id=run_id, sync=sync)
    try:
        services.run_replay(run=run, actor=request.actor)
        flash.success(request, f"Run {run.id} is replayed: a new run is queued.")
    except ServiceError as error:
        flash.error(request, as_sentence(error.message) + ".")
    return redirect("dashboard:sync_detail", request.workspace.id, sync.id)


@require_safe
@workspace_view(permission=Permission.READ)
def audience_syncs(request, audience_id: int):
    """The syncs panel of an audience's page (loaded into it by HTMX)."""
    audience = get_object_or_404(Audience, id=audience_id)
    syncs = syncs_rows(selectors.syncs_list(audience_id=audience.id)[:100])
    context = {"audience": audience, "syncs": syncs}
    return render(request, "destinations/_audience_syncs_panel.html", context)
