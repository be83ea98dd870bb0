"""Dashboard pages of webhook endpoints: the list, the form (new, edit), an endpoint's page
(its secret hint, topics, rotate, send test, enable or disable, and the delivery log with a
replay button per delivery) and a delivery's page (payload and attempts).

A secret is shown once, in the response to the POST that made it (create, rotate): it is never
put in a redirect, a flash message or the session. Thin: forms check shapes,
destinations.webhooks decides.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from destinations import webhooks
from destinations.connectors.webhook import TOPICS
from destinations.models import WebhookDelivery
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.forms import add_service_error, as_sentence

LOG_ROWS = 100
SECTION = "destinations"


class EndpointForm(forms.Form):
    name = forms.CharField(max_length=200)
    url = forms.CharField(max_length=2000, label="URL", help_text="Where the POSTs go (https).")
    topics = forms.MultipleChoiceField(
        choices=[(topic, topic) for topic in TOPICS], widget=forms.CheckboxSelectMultiple
    )
    event_names = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Event names for event.tracked",
        help_text="One a line; empty: every event.",
    )
    description = forms.CharField(max_length=500, required=False)

    def values(self) -> dict:
        data = self.cleaned_data
        names = [line.strip() for line in data.get("event_names", "").splitlines()]
        return {"name": data["name"], "url": data["url"], "topics": data["topics"],
                "event_names": [name for name in names if name],
                "description": data.get("description", "")}  # fmt: skip


def _initial(destination) -> dict:
    config = destination.config
    return {"name": destination.name, "url": config.get("url", ""),
            "topics": config.get("topics") or [],
            "event_names": "\n".join(config.get("event_names") or []),
            "description": config.get("description", "")}  # fmt: skip


def _endpoint(endpoint_id: int):
    return get_object_or_404(webhooks.webhook_endpoints_list(), id=endpoint_id)


@require_safe
@workspace_view(permission=Permission.READ)
def webhook_list(request):
    rows = list(webhooks.webhook_endpoints_list()[:200])
    context = {"rows": rows, "active_section": SECTION}
    return render(request, "destinations/webhooks/list.html", context)


@require_http_methods(["GET", "POST"])
@workspace_view(permission=Permission.MANAGE_DESTINATIONS)
def webhook_new(request):
    form = EndpointForm(request.POST or None, initial={"topics": list(TOPICS)})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created = webhooks.webhook_endpoint_create(
                    workspace=request.workspace, actor=request.actor, **form.values()
                )
            except ServiceError as error:
                add_service_error(form, error)
                status = error.status
            else:
                return _detail(request, created.destination, new_secret=created.secret,
                               status=201)  # fmt: skip
        else:
            status = 400
    context = {"form": form, "endpoint": None, "active_section": SECTION}
    return render(request, "destinations/webhooks/form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@workspace_view(permission=Permission.MANAGE_DESTINATIONS)
def webhook_edit(request, endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    form = EndpointForm(request.POST or None, initial=_initial(endpoint))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                webhooks.webhook_endpoint_update(
                    destination=endpoint, actor=request.actor, **form.values()
                )
            except ServiceError as error:
                add_service_error(form, error)
                status = error.status
            else:
                flash.success(request, f"{endpoint.name} is saved.")
                return redirect("dashboard:webhook_detail", request.workspace.id, endpoint.id)
        else:
            status = 400
    context = {"form": form, "endpoint": endpoint, "active_section": SECTION}
    return render(request, "destinations/webhooks/form.html", context, status=status)


def _detail(request, endpoint, *, new_secret: str = "", status: int = 200):
    status_filter = request.GET.get("status", "")
    if status_filter not in WebhookDelivery.Status.values:
        status_filter = ""
    deliveries = webhooks.webhook_deliveries_list(destination=endpoint, status=status_filter)
    context = {
        "endpoint": endpoint,
        "config": endpoint.config,
        "secret_hint": webhooks.endpoint_secret_hint(endpoint),
        "previous_secret_expires_at": webhooks.previous_secret_expires_at(endpoint),
        "new_secret": new_secret,
        "deliveries": list(deliveries[:LOG_ROWS]),
        "statuses": WebhookDelivery.Status.choices,
        "status_filter": status_filter,
        "active_section": SECTION,
    }
    return render(request, "destinations/webhooks/detail.html", context, status=status)


@require_safe
@workspace_view(permission=Permission.READ)
def webhook_detail(request, endpoint_id: int):
    return _detail(request, _endpoint(endpoint_id))


@require_POST
@workspace_view(permission=Permission.MANAGE_DESTINATIONS)
def webhook_rotate(request, endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    try:
        secret = webhooks.webhook_secret_rotate(destination=endpoint, actor=request.actor)
    except ServiceError as error:
        flash.error(request, as_sentence(error.message) + ".")
        return redirect("dashboard:webhook_detail", request.workspace.id, endpoint.id)
    return _detail(request, endpoint, new_secret=secret)


@require_POST
@workspace_view(permission=Permission.MANAGE_DESTINATIONS)
def webhook_test(request, endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    try:
        delivery = webhooks.webhook_test_send(destination=endpoint, actor=request.actor)
    except ServiceError as error:
        flash.error(request, as_sentence(error.message) + ".")
    else:
        if delivery.status == WebhookDelivery.Status.SUCCEEDED:
            flash.success(request, f"The endpoint answered {delivery.last_status_code}.")
        else:
            flash.error(request, f"The test failed: {delivery.last_error}.")
    return redirect("dashboard:webhook_detail", request.workspace.id, endpoint.id)


ACTIONS = {"enable": (True, "is enabled"), "disable": (False, "is disabled")}


@require_POST
@workspace_view(permission=Permission.MANAGE_DESTINATIONS)
def webhook_action(request, endpoint_id: int, action: str):
    endpoint = _endpoint(endpoint_id)
    try:
        if action == "delete":
            webhooks.webhook_endpoint_delete(destination=endpoint, actor=request.actor)
            flash.success(request, f"{endpoint.name} is deleted.")
            return redirect("dashboard:webhooks", request.workspace.id)
        if action in ACTIONS:
            active, done = ACTIONS[action]
            webhooks.webhook_endpoint_set_active(destination=endpoint, actor=request.actor,
                                                 active=active)  # fmt: skip
            flash.success(request, f"{endpoint.name} {done}.")
    except ServiceError as error:
        flash.error(request, as_sentence(error.message) + ".")
    return redirect("dashboard:webhook_detail", request.workspace.id, endpoint.id)


def _delivery(endpoint, delivery_id: int) -> WebhookDelivery:
    found = webhooks.webhook_deliveries_list(destination=endpoint).select_related("destination")
    return get_object_or_404(found, id=delivery_id)


@require_safe
@workspace_view(permission=Permission.READ)
def webhook_delivery_detail(request, endpoint_id: int, delivery_id: int):
    endpoint = _endpoint(endpoint_id)
    delivery = _delivery(endpoint, delivery_id)
    context = {"endpoint": endpoint, "delivery": delivery, "active_section": SECTION}
    return render(request, "destinations/webhooks/delivery.html", context)


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def webhook_delivery_replay(request, endpoint_id: int, delivery_id: int):
    endpoint = _endpoint(endpoint_id)
    delivery = _delivery(endpoint, delivery_id)
    try:
        webhooks.delivery_replay(delivery=delivery, actor=request.actor)
        flash.success(request, f"{delivery.webhook_id} is queued again.")
    except ServiceError as error:
        flash.error(request, as_sentence(error.message) + ".")
    return redirect("dashboard:webhook_detail", request.workspace.id, endpoint.id)
