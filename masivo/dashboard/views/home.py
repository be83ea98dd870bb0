from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from masivo.tenancy import selectors
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view


@require_safe
@login_required
def home(request):
    """Open the user's first workspace, or explain why there is none."""
    workspace = selectors.workspaces_for_user(user=request.user).first()
    if workspace is not None:
        return redirect("dashboard:overview", workspace_id=workspace.id)
    return render(request, "dashboard/no_workspace.html")


@require_safe
@workspace_view(permission=Permission.READ)
def overview(request):
    return render(request, "dashboard/overview.html")
