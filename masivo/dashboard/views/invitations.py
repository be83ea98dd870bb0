"""The invitee's side of an invitation: the page the emailed link opens.

Outside any workspace: the visitor is not a member yet. Whoever holds the link may learn what it
grants and whether its email has an account (they received it at that address); nobody else
learns anything, because a forged or unknown token is refused before any lookup.
"""

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from masivo.dashboard.forms import InvitationNewAccountForm
from masivo.tenancy import invitations, selectors
from masivo.tenancy.errors import ServiceError
from masivo.ui.forms import add_service_error, as_sentence

TEMPLATE = "registration/invitation_accept.html"


def _page(request, invitation, state: str, *, status: int = 200, **context):
    context = {"invitation": invitation, "state": state, **context}
    return render(request, TEMPLATE, context, status=status)


def _joined(request, member):
    """Into the organization's first workspace, signed in."""
    organization = member.organization
    messages.success(
        request, f"Welcome to {organization.name}. You joined as {member.get_role_display()}."
    )
    workspace = (
        selectors.workspaces_for_user(user=member.user)
        .filter(organization_id=organization.id)
        .first()
    )
    if workspace is None:
        return redirect("dashboard:home")
    return redirect("dashboard:overview", workspace_id=workspace.id)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def invitation_accept(request, token: str):
    invitation = selectors.invitation_for_link(link_token=token)
    if invitation is None:
        return _page(
            request,
            None,
            "closed",
            status=404,
            reason="This invitation link is not valid. Check that you opened the whole link.",
        )
    reason = invitations.invitation_closed_reason(invitation)
    if reason:
        return _page(request, invitation, "closed", status=410, reason=as_sentence(reason))
    if request.user.is_authenticated:
        return _accept_signed_in(request, invitation)
    if invitations.account_exists(invitation.email):
        login_url = reverse("login") + "?" + urlencode({"next": request.path})
        return _page(request, invitation, "sign_in", login_url=login_url)
    return _accept_with_new_account(request, invitation)


def _accept_signed_in(request, invitation):
    if request.method != "POST":
        signed_in_as = (request.user.email or request.user.username).lower()
        if signed_in_as != invitation.email:
            return _page(
                request, invitation, "wrong_account", status=403, signed_in_as=signed_in_as
            )
        return _page(request, invitation, "confirm")
    try:
        member = invitations.invitation_accept(invitation=invitation, user=request.user)
    except ServiceError as error:
        return _page(
            request, invitation, "closed", status=error.status, reason=as_sentence(error.message)
        )
    return _joined(request, member)


def _accept_with_new_account(request, invitation):
    if request.method != "POST":
        return _page(request, invitation, "new_account", form=InvitationNewAccountForm())
    form = InvitationNewAccountForm(request.POST)
    if not form.is_valid():
        return _page(request, invitation, "new_account", status=400, form=form)
    try:
        member = invitations.invitation_accept_with_new_account(
            invitation=invitation,
            name=form.cleaned_data["name"],
            password=form.cleaned_data["password1"],
        )
    except ServiceError as error:
        if error.field == "password":
            form.add_error("password1", as_sentence(error.message))
        else:
            add_service_error(form, error)
        return _page(request, invitation, "new_account", status=error.status, form=form)
    login(request, member.user, backend="django.contrib.auth.backends.ModelBackend")
    return _joined(request, member)
