"""`workspace_view`: how every dashboard page under /w/<workspace_id>/ finds its tenant."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.utils import timezone

from masivo.tenancy import selectors
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Permission
from masivo.ui.errors import permission_denied

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def workspace_view(*, permission: Permission):
    """Load the workspace named in the URL and run the view inside its scope.

    A workspace the user is not a member of is a 404, exactly like a missing one. `permission`
    is what a write (any non-safe method) on the page needs; reading needs only membership.
    Sets request.workspace, request.member and request.actor.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, workspace_id: int, *args, **kwargs):
            workspace = (
                Workspace.objects.select_related("organization").filter(id=workspace_id).first()
            )
            member = workspace and selectors.membership_for_workspace(
                user=request.user, workspace=workspace
            )
            if not member:
                raise Http404("no such workspace")
            request.workspace = workspace
            request.member = member
            request.actor = Actor(role=member.role, user_id=request.user.id)
            if request.method not in SAFE_METHODS and not request.actor.can(permission):
                return permission_denied(request)
            # render() evaluates templates eagerly, so every query the page runs is in scope.
            # Times on the page are shown in the workspace's time zone.
            with workspace_scope(workspace.id), timezone.override(workspace.timezone):
                return view(request, *args, **kwargs)

        return wrapper

    return decorator
