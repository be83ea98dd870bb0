from django.utils.functional import SimpleLazyObject

from masivo.tenancy import selectors
from masivo.tenancy.roles import Permission


def _switch_target(request) -> str:
    """The page to open in another workspace: the same section when it has no object ids."""
    match = request.resolver_match
    if match and match.namespace == "dashboard" and set(match.kwargs) == {"workspace_id"}:
        return f"dashboard:{match.url_name}"
    return "dashboard:overview"


def _workspaces_by_organization(user) -> list[tuple]:
    """[(organization, [workspace, ...]), ...] for the switcher, by organization name."""
    if user is None or not user.is_authenticated:
        return []
    groups: dict[int, tuple] = {}
    for workspace in selectors.workspaces_for_user(user=user):
        organization = workspace.organization
        groups.setdefault(organization.id, (organization, []))[1].append(workspace)
    return list(groups.values())


def navigation(request):
    """Template context for the layout: the current workspace, the switcher and permissions.

    The switcher's list is lazy: pages without the layout (errors, admin) never query it.
    """
    workspace = getattr(request, "workspace", None)
    actor = getattr(request, "actor", None)
    user = getattr(request, "user", None)
    match = getattr(request, "resolver_match", None)
    url_name = (match.url_name if match and match.namespace == "dashboard" else "") or ""
    return {
        "current_workspace": workspace,
        "current_member": getattr(request, "member", None),
        "active_section": "settings" if url_name.startswith("settings") else url_name,
        "can": {
            permission.value: bool(actor and actor.can(permission)) for permission in Permission
        },
        "switcher_groups": SimpleLazyObject(lambda: _workspaces_by_organization(user)),
        "switch_target": _switch_target(request) if workspace else "dashboard:overview",
    }
