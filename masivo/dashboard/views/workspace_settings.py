from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from masivo.dashboard.forms import WorkspaceSettingsForm
from masivo.tenancy import services
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.forms import add_service_error


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.MANAGE_WORKSPACE)
def workspace_settings(request):
    workspace = request.workspace
    status = 200
    if request.method != "POST":
        form = WorkspaceSettingsForm(
            initial={"name": workspace.name, "timezone": workspace.timezone}
        )
        return render(request, "dashboard/settings/workspace.html", {"form": form})
    form = WorkspaceSettingsForm(request.POST)
    if not form.is_valid():
        status = 400
    else:
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
            status = error.status
        else:
            messages.success(request, "Workspace settings saved.")
            return redirect("dashboard:settings_workspace", workspace_id=workspace.id)
    return render(request, "dashboard/settings/workspace.html", {"form": form}, status=status)
