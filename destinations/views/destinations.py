"""Dashboard pages of destinations: the connected ones, the catalogue of kinds, the connect form
(built from the kind's config and credentials serializers), and a destination's page with its
status, test, enable / disable, forwarding settings and lag, and its syncs. Thin: forms check
shapes, destinations.services decides."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages as flash
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from destinations import selectors, services
from destinations.connectors import CONNECTORS, connector_class
from destinations.connectors.base import AUDIENCES
from destinations.models import Destination
from destinations.views.syncs import syncs_rows
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.errors import permission_denied
from masivo.ui.forms import add_service_error, as_sentence

SECTION = "destinations"
CAPABILITY_LABELS = {
    "audiences": "Audiences",
    "replace": "Full replace",
    "events": "Events",
    "profiles": "Profiles",
    "memberships": "Audience changes",
    "deletion": "Deletion signal",
}


def _kind_or_404(kind: str) -> selectors.Kind:
    if kind not in CONNECTORS:
        raise Http404("no such kind")
    return selectors.kind_describe(CONNECTORS[kind])


def _form_field(spec: selectors.FieldSpec, *, is_update: bool) -> forms.Field:
    """A Django field for one connector field; the connector's serializer is the judge."""
    help_text = spec.help
    required = spec.is_required
    if spec.is_secret and is_update:
        help_text = f"{help_text} Leave empty to keep the stored one.".strip()
        required = False
    common = {"label": spec.label, "required": required, "help_text": help_text}
    if spec.type == "boolean":
        return forms.BooleanField(**common | {"required": False})
    if spec.type == "integer":
        return forms.IntegerField(**common)
    if spec.type == "choice":
        return forms.ChoiceField(choices=[("", "—"), *spec.choices], **common)
    if spec.type == "list":
        common["help_text"] = f"{help_text} Separate values with commas.".strip()
    if spec.type in ("text", "object"):
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), strip=False, **common)
    if spec.is_secret:
        widget = forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False)
        return forms.CharField(widget=widget, strip=False, **common)
    return forms.CharField(**common)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _typed(spec: selectors.FieldSpec, value):
    if spec.type == "list":
        return _split(value)
    if spec.type == "object":
        try:
            return json.loads(value)
        except ValueError:
            return value  # the serializer names it
    return value


class ConnectForm(forms.Form):
    """Name and key, then one field per config (`config_<name>`) and credentials
    (`credentials_<name>`) field of the kind. Service errors (`config.<name>`) land on them."""

    name = forms.CharField(max_length=200)
    key = forms.CharField(
        max_length=64, required=False,
        help_text="The name for vendor consent (consent.vendors.<key>); by default the kind.",
    )  # fmt: skip

    def __init__(self, *args, kind: selectors.Kind, destination: Destination | None = None,
                 **kwargs):  # fmt: skip
        super().__init__(*args, **kwargs)
        self.kind = kind
        is_update = destination is not None
        if is_update:
            del self.fields["key"]
        for group in ("config", "credentials"):
            for spec in getattr(kind, f"{group}_fields"):
                self.fields[f"{group}_{spec.name}"] = _form_field(spec, is_update=is_update)

    def group(self, group: str) -> dict:
        """The typed values of one group; an empty optional field is left out (a credential
        left empty on an update is kept)."""
        values = {}
        for spec in getattr(self.kind, f"{group}_fields"):
            value = self.cleaned_data.get(f"{group}_{spec.name}")
            if value in (None, "") or (spec.type == "boolean" and value is False
                                       and not spec.is_required):  # fmt: skip
                continue
            values[spec.name] = _typed(spec, value)
        return values

    def show(self, error: ServiceError) -> None:
        field = (error.field or "").replace(".", "_", 1)
        error.field = field if field in self.fields else None
        add_service_error(self, error)


def _config_initial(destination: Destination, kind: selectors.Kind) -> dict:
    initial = {"name": destination.name}
    for spec in kind.config_fields:
        value = destination.config.get(spec.name)
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        elif isinstance(value, dict):
            value = json.dumps(value)
        initial[f"config_{spec.name}"] = value
    return initial


@require_safe
@workspace_view(permission=Permission.READ)
def destination_list(request):
    rows = list(selectors.destinations_list()[:200])
    lags = selectors.forwarding_lags([row.id for row in rows])
    for row in rows:
        lag = lags.get(row.id, selectors.NO_LAG)
        row.pending_batches = lag.pending_batches
        row.oldest_pending_at = lag.oldest_pending_at
        row.kind_label = connector_class(row.kind).label
    context = {"rows": rows, "active_section": SECTION}
    return render(request, "destinations/list.html", context)


@require_safe
@workspace_view(permission=Permission.READ)
def destination_catalogue(request):
    cards = [
        {"kind": kind, "capabilities": [CAPABILITY_LABELS.get(c, c) for c in kind.capabilities]}
        for kind in selectors.kinds_catalogue()
    ]
    context = {"cards": cards, "active_section": SECTION}
    return render(request, "destinations/catalogue.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.MANAGE_DESTINATIONS)
def destination_connect(request, kind: str):
    described = _kind_or_404(kind)
    if not request.actor.can(Permission.MANAGE_DESTINATIONS):  # the form too, not only a POST
        return permission_denied(request)
    form = ConnectForm(request.POST if request.method == "POST" else None, kind=described,
                       initial={"name": described.label})  # fmt: skip
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                destination = services.destination_create(
                    workspace=request.workspace, kind=described.kind,
                    name=form.cleaned_data["name"], key=form.cleaned_data.get("key") or None,
                    config=form.group("config"), credentials=form.group("credentials"),
                    actor=request.actor,
                )  # fmt: skip
            except ServiceError as error:
                form.show(error)
                status = error.status
            else:
                flash.success(request, f"{destination.name} is connected. Test the connection "
                                       "to check it.")  # fmt: skip
                return redirect("dashboard:destination_detail", request.workspace.id,
                                destination.id)  # fmt: skip
    context = {"kind": described, "form": form, "destination": None, "active_section": SECTION}
    return render(request, "destinations/connect.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.MANAGE_DESTINATIONS)
def destination_edit(request, destination_id: int):
    destination = get_object_or_404(Destination, id=destination_id)
    if not request.actor.can(Permission.MANAGE_DESTINATIONS):
        return permission_denied(request)
    described = selectors.kind_describe(connector_class(destination.kind))
    form = ConnectForm(request.POST if request.method == "POST" else None, kind=described,
                       destination=destination,
                       initial=_config_initial(destination, described))  # fmt: skip
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                config = form.group("config")
                unchanged = all(destination.config.get(k) == v for k, v in config.items())
                services.destination_update(
                    destination=destination, actor=request.actor,
                    name=form.cleaned_data["name"], config=None if unchanged else config,
                    credentials=form.group("credentials") or None,  # empty: keep them
                )  # fmt: skip
            except ServiceError as error:
                form.show(error)
                status = error.status
            else:
                flash.success(request, f"{destination.name} is saved. Test the connection to "
                                       "check it.")  # fmt: skip
                return redirect("dashboard:destination_detail", request.workspace.id,
                                destination.id)  # fmt: skip
    context = {"kind": described, "form": form, "destination": destination,
               "active_section": SECTION}  # fmt: skip
    return render(request, "destinations/connect.html", context, status=status)


class ForwardingForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Forward in near real time")
    types = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="What goes"
    )
    event_names = forms.CharField(
        required=False, label="Events",
        help_text="Event names, separated by commas. Empty: every event.",
    )  # fmt: skip
    traits = forms.CharField(
        required=False, label="Traits",
        help_text="Traits sent with profiles, separated by commas. Profile fields always go.",
    )  # fmt: skip

    def __init__(self, *args, offered: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["types"].choices = [(name, CAPABILITY_LABELS[name]) for name in offered]

    def values(self) -> dict:
        data = self.cleaned_data
        return {
            "enabled": data["enabled"],
            "types": data["types"] or None,
            "event_names": _split(data["event_names"]),
            "traits": _split(data["traits"]),
        }

    def show(self, error: ServiceError) -> None:
        error.field = (error.field or "").split(".")[0] or None
        add_service_error(self, error)


def _forwarding_form(destination: Destination, data=None) -> ForwardingForm | None:
    connector = connector_class(destination.kind)
    offered = [name for name, cap in services.FORWARD_TYPES.items() if connector.has(cap)]
    if not offered:
        return None
    settings = destination.forwarding or {}
    initial = {"enabled": bool(settings.get("enabled")), "types": settings.get("types") or offered,
               "event_names": ", ".join(settings.get("event_names", [])),
               "traits": ", ".join(settings.get("traits", []))}  # fmt: skip
    return ForwardingForm(data, offered=offered, initial=initial)


def _detail_context(request, destination: Destination, **more) -> dict:
    connector = connector_class(destination.kind)
    lag = selectors.forwarding_lag(destination)
    now = timezone.now()
    described = selectors.kind_describe(connector)
    return {
        "destination": destination,
        "kind": described,
        "capability_labels": [CAPABILITY_LABELS.get(c, c) for c in described.capabilities],
        "config": [(spec.label, destination.config.get(spec.name))
                   for spec in described.config_fields
                   if destination.config.get(spec.name) not in (None, "")],
        "credentials": [(spec.label, destination.credential_hints.get(spec.name, ""))
                        for spec in described.credentials_fields
                        if spec.name in destination.credential_hints],
        "takes_audiences": connector.has(AUDIENCES),
        "syncs": syncs_rows(selectors.syncs_list(destination_id=destination.id)[:100]),
        "lag": lag,
        "lag_seconds": lag.age_seconds(now),
        "forwarding": destination.forwarding or {},
        "forwarding_since": parse_datetime((destination.forwarding or {}).get("since") or ""),
        "forwarding_form": _forwarding_form(destination),
        "active_section": SECTION,
    } | more  # fmt: skip


@require_safe
@workspace_view(permission=Permission.READ)
def destination_detail(request, destination_id: int):
    destination = get_object_or_404(Destination, id=destination_id)
    return render(request, "destinations/detail.html", _detail_context(request, destination))


@require_POST
@workspace_view(permission=Permission.MANAGE_DESTINATIONS)
def destination_forwarding(request, destination_id: int):
    destination = get_object_or_404(Destination, id=destination_id)
    form = _forwarding_form(destination, request.POST)
    if form is None:
        raise Http404("this kind does not take forwarded data")
    status = 400
    if form.is_valid():
        try:
            services.forwarding_update(destination=destination, actor=request.actor,
                                       **form.values())  # fmt: skip
        except ServiceError as error:
            form.show(error)
            status = error.status
        else:
            word = "on" if form.cleaned_data["enabled"] else "off"
            flash.success(request, f"Forwarding to {destination.name} is {word}.")
            return redirect("dashboard:destination_detail", request.workspace.id, destination.id)
    context = _detail_context(request, destination, forwarding_form=form)
    return render(request, "destinations/detail.html", context, status=status)


@require_POST
@workspace_view(permission=Permission.MANAGE_DESTINATIONS)
def destination_test(request, destination_id: int):
    """The result in place (HTMX), or on the page after a redirect."""
    destination = get_object_or_404(Destination, id=destination_id)
    try:
        outcome = services.destination_test(destination=destination, actor=request.actor)
    except ServiceError as error:
        flash.error(request, as_sentence(error.message))
        return redirect("dashboard:destination_detail", request.workspace.id, destination.id)
    if request.headers.get("HX-Request"):
        return render(request, "destinations/_test_result.html", {"destination": destination})
    (flash.success if outcome.is_ok else flash.error)(request, outcome.detail)
    return redirect("dashboard:destination_detail", request.workspace.id, destination.id)


@require_POST
@workspace_view(permission=Permission.MANAGE_DESTINATIONS)
def destination_action(request, destination_id: int, action: str):
    destination = get_object_or_404(Destination, id=destination_id)
    try:
        if action == "delete":
            services.destination_delete(destination=destination, actor=request.actor)
            flash.success(request, f"{destination.name} is disconnected.")
            return redirect("dashboard:destination_list", request.workspace.id)
        if action in ("enable", "disable"):
            services.destination_set_status(
                destination=destination, active=action == "enable", actor=request.actor,
                reason=request.POST.get("reason", "")[:2000],
            )  # fmt: skip
            flash.success(request, f"{destination.name} is {action}d.")
    except ServiceError as error:
        flash.error(request, as_sentence(error.message))
    return redirect("dashboard:destination_detail", request.workspace.id, destination.id)
