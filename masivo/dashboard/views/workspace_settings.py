from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from masivo.dashboard.forms import WorkspaceSettingsForm
from masivo.tenancy import services
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.forms import add_service_error
from profiles.services.settings import profile_settings_get, profile_settings_update
from profiles.views.forms import ProfileSettingsForm


def _settings_page(request, *, form=None, profile_form=None, status=200):
    """Both forms of the page; the one that was posted comes back with its errors."""
    workspace = request.workspace
    form = form or WorkspaceSettingsForm(
        initial={"name": workspace.name, "timezone": workspace.timezone}
    )
    profile_settings = profile_settings_get(workspace=workspace)
    profile_form = profile_form or ProfileSettingsForm(
        initial=ProfileSettingsForm.initial_for(profile_settings)
    )
    context = {"form": form, "profile_form": profile_form, "profile_settings": profile_settings}
    return render(request, "dashboard/settings/workspace.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.MANAGE_WORKSPACE)
def workspace_settings(request):
    workspace = request.workspace
    if request.method != "POST":
        return _settings_page(request)
    form = WorkspaceSettingsForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, form=form, status=400)
    try:
        services.workspace_update(
            workspace=workspace,
            actor=request.actor,
            name=form.cleaned_data["name"],
            timezone_name=form.cleaned_data["timezone"],
        )
    except ServiceError as error:
        # The service may have changed the instance before refusing; show what is stored.
        workspace.refresh_from_db(fields=["name", "timezone"])
        add_service_error(form, error)
        return _settings_page(request, form=form, status=error.status)
    messages.success(request, "Workspace settings saved.")
    return redirect("dashboard:settings_workspace", workspace_id=workspace.id)


@require_POST
@workspace_view(permission=Permission.MANAGE_WORKSPACE)
def profile_settings(request):
    """Consent regime, purchase events and device lifetime (profiles' settings service)."""
    profile_form = ProfileSettingsForm(request.POST)
    if not profile_form.is_valid():
        return _settings_page(request, profile_form=profile_form, status=400)
    try:
        profile_settings_update(workspace=request.workspace, changes=profile_form.cleaned_data)
    except ServiceError as error:
        add_service_error(profile_form, error)
        return _settings_page(request, profile_form=profile_form, status=error.status)
    messages.success(request, "Profile settings saved.")
    return redirect("dashboard:settings_workspace", workspace_id=request.workspace.id)
