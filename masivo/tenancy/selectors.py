"""Reads for organizations, workspaces, members and API keys."""

from django.db.models import QuerySet

from masivo.tenancy.models import ApiKey, Member, Workspace


def workspaces_for_user(*, user) -> QuerySet[Workspace]:
    return (
        Workspace.objects.filter(organization__members__user=user)
        .select_related("organization")
        .order_by("organization__name", "name", "id")
    )


def membership_for_workspace(*, user, workspace: Workspace) -> Member | None:
    if not user.is_authenticated:
        return None
    return Member.objects.filter(organization_id=workspace.organization_id, user=user).first()


def api_keys_list() -> QuerySet[ApiKey]:
    """The workspace in context's keys, newest first."""
    return ApiKey.objects.select_related("created_by").order_by("-created_at", "-id")


def members_list(*, workspace: Workspace) -> QuerySet[Member]:
    return Member.objects.filter(organization_id=workspace.organization_id).select_related("user")
