"""What the pages of every section share: the section's header and empty state, who acted."""

from dataclasses import dataclass

from masivo.tenancy.selectors import api_keys_list


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


API_KEY_SOURCE = "api_key:"  # masivo.tenancy.actors.Actor.label of a key


def source_names(sources) -> dict[str, str]:
    """How pages name who started a job, from what services recorded: `dashboard:<email>` is
    the email, `api_key:<id>` the key's name (revoked keys included), anything else as stored.
    One query, for the keys of the workspace in context; another workspace's id stays as is."""
    sources = set(sources)
    key_ids = {
        int(source.removeprefix(API_KEY_SOURCE))
        for source in sources
        if source.startswith(API_KEY_SOURCE) and source.removeprefix(API_KEY_SOURCE).isdigit()
    }
    key_names = (
        dict(api_keys_list().filter(id__in=key_ids).values_list("id", "name")) if key_ids else {}
    )
    names = {}
    for source in sources:
        key_id = source.removeprefix(API_KEY_SOURCE)
        if source.startswith(API_KEY_SOURCE) and key_id.isdigit() and int(key_id) in key_names:
            names[source] = f"API key “{key_names[int(key_id)]}”"
        else:
            names[source] = source.removeprefix("dashboard:")
    return names


def with_source_names(jobs):
    """Give each job (an import, an upload) `created_by_name`; returns the list."""
    jobs = list(jobs)
    names = source_names(job.created_by for job in jobs)
    for job in jobs:
        job.created_by_name = names[job.created_by]
    return jobs
