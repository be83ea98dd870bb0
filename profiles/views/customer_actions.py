"""What a marketer does to one profile: edit its fields, tags and traits; delete or erase it;
export everything held about it. Each writes through profiles' services, which own the rules."""

import json

from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.errors import permission_denied
from masivo.ui.forms import add_service_error, as_sentence
from profiles import selectors
from profiles.services import customers as services
from profiles.views.customers import customer_or_404
from profiles.views.forms import CustomerEditForm

# Erasure leaves tombstones that keep the person out for good: the API asks the same of a key.
ERASE_PERMISSION = Permission.MANAGE_WORKSPACE


def _customer_edit_save(form: CustomerEditForm):
    """Fields, traits and tags in one transaction: a refused tag leaves the fields unchanged."""
    customer = form.customer
    tags, removed_tags = form.tag_changes()
    with transaction.atomic():
        if changes := form.profile_changes():
            customer = services.customer_update(customer=customer, data=changes)
        if removed_tags:
            customer = services.customer_tags_delete(customer=customer, keys=removed_tags)
        if tags:
            customer = services.customer_tags_patch(customer=customer, tags=tags)
    return customer, bool(changes or removed_tags or tags)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def customer_edit(request, customer_id: int):
    if not request.actor.can(Permission.EDIT_MARKETING):
        return permission_denied(request)
    customer = customer_or_404(customer_id)
    form = CustomerEditForm(request.POST or None, customer=customer)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                customer, changed = _customer_edit_save(form)
            except ServiceError as error:
                add_service_error(form, error)
                status = error.status
            else:
                messages.success(request, "Profile saved." if changed else "Nothing changed.")
                return redirect(
                    "dashboard:customer_detail", workspace_id=request.workspace.id,
                    customer_id=customer.id,
                )  # fmt: skip
    context = {"customer": customer, "form": form, "active_section": "customers"}
    return render(request, "profiles/customers/edit.html", context, status=status)


def _removal(request, customer_id: int, *, action: str):
    """GET asks for confirmation; POST deletes or erases, then opens the customers list."""
    permission = ERASE_PERMISSION if action == "erase" else Permission.EDIT_MARKETING
    if not request.actor.can(permission):
        return permission_denied(request)
    customer = customer_or_404(customer_id)
    context = {"customer": customer, "action": action, "active_section": "customers"}
    if request.method != "POST":
        return render(request, "profiles/customers/remove.html", context)
    try:
        if action == "erase":
            services.customer_erase(customer=customer, actor=request.actor.label)
        else:
            services.customer_delete(customer=customer)
    except ServiceError as error:
        context["error"] = as_sentence(error.message)
        return render(request, "profiles/customers/remove.html", context, status=error.status)
    done = "Erased" if action == "erase" else "Deleted"
    messages.success(request, f"{done} the customer {customer.display_name}.")
    return redirect("dashboard:customers", workspace_id=request.workspace.id)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def customer_delete(request, customer_id: int):
    return _removal(request, customer_id, action="delete")


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=ERASE_PERMISSION)
def customer_erase(request, customer_id: int):
    return _removal(request, customer_id, action="erase")


@require_safe
@workspace_view(permission=Permission.READ)
def customer_export(request, customer_id: int):
    """The API's export (GET /api/v1/customers/{id}/export) as a downloaded JSON file.

    A personal-data export leaves the product, so viewers may not take one.
    """
    if not request.actor.can(Permission.EDIT_MARKETING):
        return permission_denied(request)
    customer = customer_or_404(customer_id)
    body = json.dumps(
        selectors.customer_export(customer=customer),
        cls=DjangoJSONEncoder, ensure_ascii=False, indent=2,
    )  # fmt: skip
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="customer-{customer.id}.json"'
    return response
