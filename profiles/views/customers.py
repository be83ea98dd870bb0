"""Customers: the searchable list, the profile page, consent edits and the event timeline.

Higher layers add sections to the profile page (audiences: the customer's memberships) as
panels that the dashboard's shell passes in its URLconf, so profiles never imports them.
"""

import json
from collections.abc import Callable, Sequence
from datetime import datetime

from django.contrib import messages
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.dateparse import parse_datetime
from django.utils.http import urlencode
from django.views.decorators.http import require_POST, require_safe

from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.forms import add_service_error
from masivo.ui.keyset import cursor_from, newest_first_page
from masivo.ui.pages import Section, dashboard_source, page_url
from profiles import selectors
from profiles.consent import consent_update, may_contact
from profiles.models import ConsentPurpose, Customer
from profiles.services.settings import profile_settings_get
from profiles.views.forms import ConsentForm, CustomerFilterForm

CUSTOMERS_PAGE_SIZE = 50
EVENTS_PAGE_SIZE = 25
CONSENT_HISTORY_SHOWN = 50
# What the list shows: never the JSON columns (traits, tags, consent) of 50 customers.
LIST_COLUMNS = (
    "id", "first_name", "last_name", "email", "external_id", "country", "status",
    "is_anonymous", "last_seen_at", "purchase_count", "updated_at",
)  # fmt: skip
CUSTOMERS_SECTION = Section(
    name="customers",
    title="Customers",
    lead="Profiles, traits, consent and the events each customer sent.",
    empty_title="No customers yet",
    empty_text=(
        "Customers will appear here once events or profiles arrive through the API or an import."
    ),
)
# A section of the profile page from a higher layer: the customer → (template, its context).
ProfilePanel = Callable[[Customer], tuple[str, dict]]


def customers_matching(form: CustomerFilterForm) -> QuerySet[Customer]:
    """The list's customers for a valid filter form (bench/customers_list.py times this)."""
    customers = selectors.customers_list(
        search=form.cleaned_data["search"] or None, updated_since=form.updated_since_time()
    )
    return customers.filter(**form.field_filters()).only(*LIST_COLUMNS)


@require_safe
@workspace_view(permission=Permission.READ)
def customers_list(request):
    """Newest-updated first, a page at a time by cursor; never counts the matches.

    An htmx request (search as you type) gets only the results region.
    """
    form = CustomerFilterForm(request.GET)
    page = None
    if form.is_valid():
        page = newest_first_page(
            customers_matching(form),
            time_field="updated_at",
            after=cursor_from(request, "after"),
            size=CUSTOMERS_PAGE_SIZE,
        )
    is_first_page = "after" not in request.GET
    context = {
        "form": form,
        "page": page,
        "is_filtered": page is not None and form.is_filtered(),
        "is_first_page": is_first_page,
        "is_empty_workspace": (
            page is not None and not page.rows and is_first_page and not form.is_filtered()
        ),
        "next_url": page and page.next_cursor and page_url(request, after=page.next_cursor),
        "first_url": page_url(request, after=None),
        "section": CUSTOMERS_SECTION,
        "active_section": "customers",
    }
    partial = request.htmx and not request.htmx.history_restore_request
    template = "profiles/customers/_results.html" if partial else "profiles/customers/list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def customer_or_404(customer_id: int) -> Customer:
    # The selector is scoped to the workspace in context: another workspace's customer is a 404.
    return get_object_or_404(selectors.customers_list(), id=customer_id)


def _timeline(request, customer: Customer) -> dict:
    events = selectors.customer_events(customer=customer).defer("context")
    page = newest_first_page(
        events,
        time_field="occurred_at",
        after=cursor_from(request, "before"),
        size=EVENTS_PAGE_SIZE,
    )
    rows = [
        (
            event,
            json.dumps(event.properties, ensure_ascii=False, sort_keys=True),
            json.dumps(event.properties, ensure_ascii=False, sort_keys=True, indent=2),
        )
        for event in page.rows
    ]
    return {"events": rows, "next_events_cursor": page.next_cursor}


def _recorded_at(text) -> datetime | None:
    """The stored ISO time of a decision; anything unreadable shows as unknown, not a 500."""
    try:
        return parse_datetime(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _consent_rows(customer: Customer, form: ConsentForm, settings) -> list[dict]:
    rows = []
    for purpose, label in ConsentPurpose.choices:
        record = customer.consent.get(purpose) or {}
        rows.append(
            {
                "label": label,
                "status": record.get("status"),
                "at": _recorded_at(record.get("at")),
                "source": record.get("source"),
                "may_contact": may_contact(customer, purpose, settings=settings),
                "field": form[purpose],
                "was": form[f"was_{purpose}"],
            }
        )
    return rows


def _profile_page(
    request,
    customer: Customer,
    panels: Sequence[ProfilePanel],
    *,
    form: ConsentForm | None = None,
    status=200,
):
    settings = profile_settings_get(workspace=request.workspace)
    form = form or ConsentForm(customer=customer)
    context = {
        "customer": customer,
        "identities": selectors.customer_identities(customer=customer),
        "devices": selectors.customer_devices(customer=customer),
        "consent_form": form,
        "consent_rows": _consent_rows(customer, form, settings),
        "consent_regime": settings.get_consent_regime_display(),
        "consent_history": selectors.consent_history(
            customer=customer, limit=CONSENT_HISTORY_SHOWN
        ),
        "traits_json": json.dumps(customer.traits, ensure_ascii=False, sort_keys=True, indent=2),
        "is_timeline_continued": "before" in request.GET,
        "active_section": "customers",
        "panel_templates": [],
        **_timeline(request, customer),
    }
    for panel in panels:
        template, panel_context = panel(customer)
        context["panel_templates"].append(template)
        context |= panel_context
    return render(request, "profiles/customers/detail.html", context, status=status)


@require_safe
@workspace_view(permission=Permission.READ)
def customer_detail(request, customer_id: int, panels: Sequence[ProfilePanel] = ()):
    return _profile_page(request, customer_or_404(customer_id), panels)


@require_safe
@workspace_view(permission=Permission.READ)
def customer_events(request, customer_id: int):
    """The next page of the timeline, as list items for htmx to append ("revealed" sentinel)."""
    customer = customer_or_404(customer_id)
    if not request.htmx:
        detail = reverse("dashboard:customer_detail", args=[request.workspace.id, customer.id])
        before = request.GET.get("before")
        return redirect(f"{detail}?{urlencode({'before': before})}#timeline" if before else detail)
    context = {"customer": customer, **_timeline(request, customer)}
    return render(request, "profiles/customers/_timeline_items.html", context)


def _changes_text(changes: dict) -> str:
    labels = dict(ConsentPurpose.choices)
    return ", ".join(
        f"{labels[purpose]} {status or 'not recorded'}" for purpose, status in changes.items()
    )


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def customer_consent(request, customer_id: int, panels: Sequence[ProfilePanel] = ()):
    customer = customer_or_404(customer_id)
    form = ConsentForm(request.POST, customer=customer)
    if not form.is_valid():
        return _profile_page(request, customer, panels, form=form, status=400)
    changes = form.changes()
    try:
        customer = consent_update(
            customer=customer, changes=changes, source=dashboard_source(request)
        )
    except ServiceError as error:
        add_service_error(form, error)
        return _profile_page(request, customer, panels, form=form, status=error.status)
    if changes:
        messages.success(request, f"Consent saved: {_changes_text(changes)}.")
    else:
        messages.info(request, "Nothing changed.")
    detail = reverse("dashboard:customer_detail", args=[request.workspace.id, customer.id])
    return redirect(detail)
