from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods

from masivo.dashboard.forms import ApiKeyCreateForm
from masivo.tenancy import selectors, services
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.errors import permission_denied
from masivo.ui.forms import add_service_error


def _list_page(request, form: ApiKeyCreateForm, status: int = 200):
    context = {"form": form, "api_keys": selectors.api_keys_list()}
    return render(request, "dashboard/settings/api_keys.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.MANAGE_KEYS)
def api_keys(request):
    if request.method != "POST":
        return _list_page(request, ApiKeyCreateForm())
    form = ApiKeyCreateForm(request.POST)
    if not form.is_valid():
        return _list_page(request, form, status=400)
    try:
        minted = services.api_key_create(
            workspace=request.workspace,
            kind=form.cleaned_data["kind"],
            name=form.cleaned_data["name"],
            role=form.cleaned_data["role"],
            actor=request.actor,
        )
    except ServiceError as error:
        add_service_error(form, error)
        return _list_page(request, form, status=error.status)
    # Rendered, not redirected: the token exists only in this response, never in the session.
    response = render(request, "dashboard/settings/api_key_created.html", {"minted": minted})
    add_never_cache_headers(response)
    return response


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.MANAGE_KEYS)
def api_key_revoke(request, key_id: int):
    """GET asks for confirmation (the no-JavaScript path); POST revokes.

    An htmx POST (confirmed in the browser with hx-confirm) gets back just the table row.
    """
    if not request.actor.can(Permission.MANAGE_KEYS):
        return permission_denied(request)
    api_key = get_object_or_404(selectors.api_keys_list(), id=key_id)
    if request.method != "POST":
        return render(request, "dashboard/settings/api_key_revoke.html", {"api_key": api_key})
    try:
        services.api_key_revoke(api_key=api_key, actor=request.actor)
    except ServiceError as error:  # Redis down: other processes could not be told; nothing changed
        messages.error(request, f"{api_key.name} was not revoked: {error.message}")
        return redirect("dashboard:settings_api_keys", workspace_id=request.workspace.id)
    if request.htmx:
        return render(request, "dashboard/settings/_api_key_row.html", {"api_key": api_key})
    messages.success(request, f"Revoked {api_key.name}. It stops working immediately.")
    return redirect("dashboard:settings_api_keys", workspace_id=request.workspace.id)
