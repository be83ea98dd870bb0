"""Reads for organizations, workspaces, members and API keys."""

from django.db.models import QuerySet

from masivo.tenancy.invitations import link_token_unsign, token_hash
from masivo.tenancy.models import ApiKey, Invitation, Member, Workspace


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


def invitations_list(*, workspace: Workspace) -> QuerySet[Invitation]:
    """Every invitation of the workspace's organization (the API's lookups go through this)."""
    return Invitation.objects.filter(organization_id=workspace.organization_id).select_related(
        "invited_by"
    )


def invitations_open(*, workspace: Workspace) -> QuerySet[Invitation]:
    """Invitations neither accepted nor revoked (expired ones included), newest first."""
    return (
        invitations_list(workspace=workspace)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True)
        .order_by("-created_at", "-id")
    )


def invitation_for_link(*, link_token: str) -> Invitation | None:
    """The invitation a link names, in any state; None for a forged or unknown link."""
    raw_token = link_token_unsign(link_token)
    if raw_token is None:
        return None
    return (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=token_hash(raw_token))
        .first()
    )
