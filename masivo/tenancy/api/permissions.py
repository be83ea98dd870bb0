from rest_framework import permissions

from masivo.tenancy.roles import Permission


class HasWorkspaceRole(permissions.BasePermission):
    """Reads need `read`; writes need the view's `write_permission` (default: edit marketing)."""

    message = "this key's role does not allow that"

    def has_permission(self, request, view):
        actor = getattr(request, "actor", None)
        if actor is None:
            return False
        if request.method in permissions.SAFE_METHODS:
            needed = Permission.READ
        else:
            needed = getattr(view, "write_permission", Permission.EDIT_MARKETING)
        if actor.can(needed):
            return True
        self.message = f"the {actor.role} role may not {needed.value.replace('_', ' ')}"
        return False
