def navigation(request):
    """Template context for the layout: the current workspace and the switcher's choices."""
    return {
        "current_workspace": getattr(request, "workspace", None),
        "current_member": getattr(request, "member", None),
    }
