"""Rendering a template version for one customer: the interface the send pipeline, previews
and test sends call. (A first cut; the sandbox limits, locales, CSS inlining and text bodies
are being built behind this same interface.)"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2.sandbox import SandboxedEnvironment

_ENVIRONMENT = SandboxedEnvironment(autoescape=False)


class TemplateRenderError(Exception):
    """This message cannot be rendered; `reason` says why in words a marketer understands."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Rendered:
    channel: str
    locale: str
    # email: subject, preheader, html, text; push: title, body, image, deep_link, data;
    # whatsapp / sms: content_sid and variables ({"1": "Ana"}) or body; in_app: title, body,
    # image, buttons, layout, expires_at.
    fields: dict


def customer_context(customer) -> dict:
    return {
        "id": customer.id,
        "external_id": customer.external_id,
        "email": customer.email,
        "phone": customer.phone,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "country": customer.country,
        "city": customer.city,
        "locale": customer.locale,
        "timezone": customer.timezone,
        "traits": customer.traits,
        "tags": customer.tags,
    }


def _render_value(value, context: dict):
    if isinstance(value, str):
        return _ENVIRONMENT.from_string(value).render(context)
    if isinstance(value, dict):
        return {key: _render_value(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_value(item, context) for item in value]
    return value


def render_version(
    version, *, customer, workspace, event: dict | None = None, links: dict | None = None
) -> Rendered:
    """Render `version` (a TemplateVersion) for `customer`. Raises TemplateRenderError for a
    template that cannot render; never anything else for bad template text."""
    context = {
        "customer": customer_context(customer),
        "event": event or {},
        "workspace": {"id": workspace.id, "name": workspace.name},
        "links": links or {},
    }
    try:
        fields = _render_value(version.content, context)
    except Exception as error:  # any template error fails this one message, never the batch
        raise TemplateRenderError(f"the template cannot render: {error}") from None
    return Rendered(channel=version.template.channel, locale="", fields=fields)
