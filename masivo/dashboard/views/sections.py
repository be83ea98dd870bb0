"""The product's sections. Apps with pages own their section (customers, audiences); until the
others bring theirs, each shows what will be there."""

from django.shortcuts import render
from django.views.decorators.http import require_safe

from audiences.views.audiences import AUDIENCES_SECTION
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.pages import Section
from profiles.views.customers import CUSTOMERS_SECTION

SECTIONS = {
    section.name: section
    for section in [
        CUSTOMERS_SECTION,
        AUDIENCES_SECTION,
        Section(
            name="journeys",
            title="Journeys",
            lead="Automated, multi-step flows triggered by events or audience changes.",
            empty_title="No journeys yet",
            empty_text=(
                "Journeys will appear here once you design a flow that starts from an event "
                "or from customers entering an audience."
            ),
        ),
        Section(
            name="messages",
            title="Messages",
            lead="Templates, one-shot campaigns and every email, push and WhatsApp send.",
            empty_title="No messages yet",
            empty_text=(
                "Messages will appear here once a campaign or journey sends an email, push "
                "notification, WhatsApp or in-app message."
            ),
        ),
        Section(
            name="destinations",
            title="Destinations",
            lead="Ad platforms, tools and warehouses that receive your audiences and events.",
            empty_title="No destinations yet",
            empty_text=(
                "Destinations will appear here once you connect Meta, Google Ads, TikTok, Braze, "
                "a webhook or an S3 export."
            ),
        ),
    ]
}


def section_view(name: str):
    section = SECTIONS[name]

    @require_safe
    @workspace_view(permission=Permission.READ)
    def view(request):
        return render(request, "dashboard/section.html", {"section": section})

    view.__name__ = f"{name}_section"
    return view


journeys = section_view("journeys")
messages = section_view("messages")
destinations = section_view("destinations")
