"""Why a customer is (not) in an audience: the rules as a tree, each condition checked against
the customer's own values (audiences.selectors.audience_explain, the per-customer evaluator)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_safe

from audiences import selectors
from audiences.models import Audience
from audiences.views.audiences import audience_or_404, detail_page
from audiences.views.display import rule_lines
from audiences.views.forms import WhyForm
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from profiles import selectors as profile_selectors
from profiles.models import Customer


def _customer_for(text: str) -> Customer | None:
    """A customer of this workspace by id, email or external id."""
    text = text.strip()
    if text.isdigit() and int(text) < 2**63:
        found = profile_selectors.customers_list().filter(id=int(text)).first()
        if found:
            return found
    if "@" in text:
        return profile_selectors.customers_list(email=text).first()
    return profile_selectors.customers_list(external_id=text).first()


@require_safe
@workspace_view(permission=Permission.READ)
def audience_why(request, audience_id: int):
    """The "Why?" form on the detail page: find the customer, open their explanation."""
    audience = audience_or_404(audience_id)
    form = WhyForm(request.GET)
    customer = _customer_for(form.cleaned_data["customer"]) if form.is_valid() else None
    if customer is None:
        if form.is_valid():
            form.add_error("customer", "No customer with this id, email or external id.")
        return detail_page(request, audience, why_form=form, status=404)
    return redirect("dashboard:audience_explain", request.workspace.id, audience.id, customer.id)


@require_safe
@workspace_view(permission=Permission.READ)
def audience_explain(request, audience_id: int, customer_id: int):
    audience = audience_or_404(audience_id)
    customer = get_object_or_404(profile_selectors.customers_list(), id=customer_id)
    explained = selectors.audience_explain(audience=audience, customer=customer)
    context = {
        "audience": audience,
        "customer": customer,
        "explained": explained,
        "active_section": "audiences",
    }
    if audience.kind == Audience.Kind.RULES:
        names = selectors.audience_names(ids=audience.depends_on)
        context["tree"] = rule_lines(audience.rules["root"], names, explained["explanation"])
    return render(request, "audiences/explain.html", context)
