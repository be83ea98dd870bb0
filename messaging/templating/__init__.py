"""Rendering a template version for one customer: the interface the send pipeline, previews
and test sends call (`render_version`, `Rendered`, `TemplateRenderError`), and the checks a
version's content passes on save (`content_clean`).

The sandbox and its limits are in `sandbox`, the fields of each channel in `content`, what a
template can read in `context`."""

from messaging.templating.content import CHANNEL_FIELDS, content_clean
from messaging.templating.context import customer_context
from messaging.templating.render import (
    Rendered,
    TemplateRenderError,
    choose_locale,
    render_version,
)
from messaging.templating.sandbox import Budget

__all__ = [
    "CHANNEL_FIELDS",
    "Budget",
    "Rendered",
    "TemplateRenderError",
    "choose_locale",
    "content_clean",
    "customer_context",
    "render_version",
]
