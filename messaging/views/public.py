"""The public pages a message's links open, under /m/ and without signing in: unsubscribe (with
RFC 8058 one-click) and the preference centre.

The signed token in the path is the only proof, so these views are exempt from CSRF: a mailbox
provider's one-click POST (`List-Unsubscribe=One-Click`) carries no CSRF token, and there is
no session whose authority a forged request could borrow. A GET never changes anything (link
scanners fetch every link of an email); only a POST records consent. A token that does not
verify, or names a workspace that is gone, is a 404 page; a customer since erased gets a
friendly page instead.
"""

from __future__ import annotations

from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from masivo.tenancy.context import workspace_scope
from messaging import unsubscribe as links
from profiles.consent import recorded_consent_status
from profiles.models import ConsentStatus

PAGES = "messaging/public/"


def _not_found(request):
    return render(request, PAGES + "not_found.html", status=404)


def _open_link(request, token: str):
    """(link, workspace) for a valid token, else None."""
    link = links.link_token_read(token)
    if link is None:
        return None
    workspace = links.link_workspace(link)
    if workspace is None:
        return None
    return link, workspace


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token: str):
    opened = _open_link(request, token)
    if opened is None:
        return _not_found(request)
    link, workspace = opened
    if link.purpose is None:  # an in-app message's token: nothing to leave but preferences
        return redirect("messaging-preferences", token=token)
    with workspace_scope(workspace.id):
        customer = links.link_customer(link)
        if customer is None:
            return render(request, PAGES + "gone.html", {"workspace": workspace})
        if request.method == "POST":
            links.unsubscribe_record(customer=customer, token=link)
            template = "unsubscribed.html"
        else:
            template = "unsubscribe.html"
        is_unsubscribed = recorded_consent_status(customer.consent, link.purpose) == (
            ConsentStatus.DENIED
        )
    context = {
        "workspace": workspace,
        "purpose": links.PURPOSE_PHRASES[link.purpose],
        "is_unsubscribed": is_unsubscribed,
        "preferences_url": reverse("messaging-preferences", kwargs={"token": token}),
    }
    return render(request, PAGES + template, context)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def preferences(request, token: str):
    opened = _open_link(request, token)
    if opened is None:
        return _not_found(request)
    link, workspace = opened
    is_saved = False
    with workspace_scope(workspace.id):
        customer = links.link_customer(link)
        if customer is None:
            return render(request, PAGES + "gone.html", {"workspace": workspace})
        if request.method == "POST":
            # Each purpose the page showed comes back as a hidden `purpose`; the ticked ones
            # also as `granted`. A purpose the form did not show is left as it is.
            granted = set(request.POST.getlist("granted"))
            choices = {purpose: purpose in granted for purpose in request.POST.getlist("purpose")}
            customer = links.preferences_save(
                workspace=workspace, customer=customer, choices=choices
            )
            is_saved = True
        choices = links.preferences_list(workspace=workspace, customer=customer)
    context = {"workspace": workspace, "choices": choices, "is_saved": is_saved}
    return render(request, PAGES + "preferences.html", context)
