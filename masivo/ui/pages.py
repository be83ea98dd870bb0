"""What the pages of every section share: the section's header and empty state, who acted."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    """A top-level section of the dashboard (its title, lead and empty state)."""

    name: str
    title: str
    lead: str
    empty_title: str
    empty_text: str


def dashboard_source(request) -> str:
    """Who made a change from the dashboard, as services record it (consent source, import)."""
    return f"dashboard:{request.user.email}"[:100]


def page_url(request, **changes) -> str:
    """This page's URL with some query parameters changed (a false value removes one)."""
    query = request.GET.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value:
            query[name] = value
    return f"{request.path}?{query.urlencode()}" if query else request.path
