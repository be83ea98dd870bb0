"""The product's sections. Apps with pages own their section (customers, audiences); until the
others bring theirs, each says plainly that it is coming, and what it will do."""

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
            name="messages",
            title="Messages",
            lead="Coming: templates, one-shot campaigns and email, push and WhatsApp sends.",
            empty_title="Messages are not available yet",
            empty_text=(
                "Masivo cannot send messages yet. When sending arrives, campaigns and journeys "
                "will send email, push notifications, WhatsApp and in-app messages, checking "
                "each customer's consent."
            ),
        ),
    ]
}


# Sections whose features do not exist yet (each has its own issue).
COMING = frozenset({"messages"})


def section_view(name: str):
    section = SECTIONS[name]

    @require_safe
    @workspace_view(permission=Permission.READ)
    def view(request):
        context = {"section": section, "is_coming": name in COMING}
        return render(request, "dashboard/section.html", context)

    view.__name__ = f"{name}_section"
    return view


messages = section_view("messages")
