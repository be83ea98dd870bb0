from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from masivo.dashboard.forms import InvitationForm, MemberRoleForm
from masivo.tenancy import invitations, selectors, services
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission, Role
from masivo.ui.decorators import workspace_view
from masivo.ui.errors import permission_denied
from masivo.ui.forms import add_service_error, as_sentence


def _role_choices(actor) -> list[tuple[str, str]]:
    if actor.can(Permission.MANAGE_ORGANIZATION):
        return list(Role.choices)
    return [choice for choice in Role.choices if choice[0] != Role.OWNER]


def _is_editable(actor, member) -> bool:
    """Whether to offer controls for this row (a member or an invitation); the services
    decide for real."""
    if not actor.can(Permission.MANAGE_MEMBERS):
        return False
    return member.role != Role.OWNER or actor.can(Permission.MANAGE_ORGANIZATION)


def _members_page(request, *, form=None, error: str = "", status: int = 200):
    actor = request.actor
    members = selectors.members_list(workspace=request.workspace).order_by("user__email", "id")
    open_invitations = selectors.invitations_open(workspace=request.workspace)
    context = {
        "rows": [(member, _is_editable(actor, member)) for member in members],
        "invitation_rows": [
            (invitation, _is_editable(actor, invitation)) for invitation in open_invitations
        ],
        "now": timezone.now(),
        "form": form or InvitationForm(can_grant_owner=actor.can(Permission.MANAGE_ORGANIZATION)),
        "role_choices": _role_choices(actor),
        "error": as_sentence(error),
    }
    return render(request, "dashboard/settings/members.html", context, status=status)


def _member_or_404(request, member_id: int):
    return get_object_or_404(selectors.members_list(workspace=request.workspace), id=member_id)


def _to_members(request):
    return redirect("dashboard:settings_members", workspace_id=request.workspace.id)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.MANAGE_MEMBERS)
def members(request):
    if request.method != "POST":
        return _members_page(request)
    can_grant_owner = request.actor.can(Permission.MANAGE_ORGANIZATION)
    form = InvitationForm(request.POST, can_grant_owner=can_grant_owner)
    if not form.is_valid():
        return _members_page(request, form=form, status=400)
    try:
        invitation = invitations.invitation_send(
            organization=request.workspace.organization,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            actor=request.actor,
            site_url=request.build_absolute_uri("/"),
        )
    except ServiceError as error:
        add_service_error(form, error)
        return _members_page(request, form=form, status=error.status)
    messages.success(
        request,
        f"Invitation sent to {invitation.email} as {invitation.get_role_display()}. "
        f"The link works for {settings.MASIVO_INVITATION_DAYS} days.",
    )
    return _to_members(request)


@require_POST
@workspace_view(permission=Permission.MANAGE_MEMBERS)
def invitation_revoke(request, invitation_id: int):
    invitation = get_object_or_404(
        selectors.invitations_list(workspace=request.workspace), id=invitation_id
    )
    try:
        invitations.invitation_revoke(invitation=invitation, actor=request.actor)
    except ServiceError as error:
        return _members_page(request, error=error.message, status=error.status)
    messages.success(request, f"Revoked the invitation to {invitation.email}.")
    return _to_members(request)


@require_POST
@workspace_view(permission=Permission.MANAGE_MEMBERS)
def member_change_role(request, member_id: int):
    member = _member_or_404(request, member_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        return _members_page(request, error="Choose one of the roles.", status=400)
    try:
        services.member_change_role(
            member=member, role=form.cleaned_data["role"], actor=request.actor
        )
    except ServiceError as error:
        return _members_page(request, error=error.message, status=error.status)
    messages.success(request, f"{member.user.email} is now {member.get_role_display()}.")
    return _to_members(request)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.MANAGE_MEMBERS)
def member_remove(request, member_id: int):
    """GET asks for confirmation; POST removes the member from the whole organization."""
    if not request.actor.can(Permission.MANAGE_MEMBERS):
        return permission_denied(request)
    member = _member_or_404(request, member_id)
    if request.method != "POST":
        return render(request, "dashboard/settings/member_remove.html", {"target": member})
    try:
        services.member_remove(member=member, actor=request.actor)
    except ServiceError as error:
        return _members_page(request, error=error.message, status=error.status)
    if member.user_id == request.user.id:
        messages.success(request, f"You left {request.workspace.organization.name}.")
        return redirect("dashboard:home")
    messages.success(
        request, f"Removed {member.user.email} from {request.workspace.organization.name}."
    )
    return _to_members(request)
