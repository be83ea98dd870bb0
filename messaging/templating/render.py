"""Rendering one template version for one customer: choose the locale, build the context,
render each field in the sandbox, then finish the channel's payload (email: the text body
from the HTML when it has none, the preheader as hidden text, CSS inlined)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import css_inline
import inscriptis
from django.utils import timezone
from jinja2 import TemplateError, TemplateSyntaxError
from markupsafe import escape

from messaging.models import Channel
from messaging.templating.content import CHANNEL_FIELDS, Field
from messaging.templating.context import render_context
from messaging.templating.sandbox import Budget, LimitExceeded, compiled, render_stream

# Never fetch a <link rel=stylesheet>: template HTML is user input (SSRF), see PROVIDERS.md.
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=True)
_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_PREHEADER = (
    '<div style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;'
    'opacity:0;overflow:hidden;mso-hide:all">{}</div>'
)
# What a template's mistakes raise while rendering (besides Jinja's own TemplateError): each
# fails this one message with its reason. Anything else is a bug of ours and propagates.
_TEMPLATE_MISTAKES = (
    TemplateError,
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    RecursionError,
)


class TemplateRenderError(Exception):
    """This message cannot be rendered; `reason` says why in words a marketer understands,
    starting with the field (`subject (line 2): ...`); `field` is that field's name."""

    def __init__(self, reason: str, *, field: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class Rendered:
    channel: str
    locale: str  # the locale variant used; "" for the template's default content
    # email: subject, preheader, html, text; push: title, body, image, deep_link, data;
    # whatsapp: content_sid, variables ({"1": "Ana"}); sms: body; in_app: title, body, image,
    # buttons, layout, expires_after_hours, expires_at (ISO 8601 or None).
    fields: dict


def normalize_locale(locale: str) -> str:
    return locale.strip().replace("_", "-").lower()


def choose_locale(available, wanted: list[str]) -> str:
    """The key of `available` (a template's locale variants) to use for the first of `wanted`
    that matches: exactly, then by language (`es-MX` finds `es`); "" for the default."""
    by_normalized = {normalize_locale(key): key for key in available}
    for candidate in wanted:
        if not candidate:
            continue
        normalized = normalize_locale(candidate)
        language = normalized.split("-")[0]
        for key in (normalized, language):
            if key in by_normalized:
                return by_normalized[key]
    return ""


def render_version(
    version,
    *,
    customer,
    workspace,
    event: dict | None = None,
    links: dict | None = None,
    locale: str | None = None,
    locale_fallback: str | None = None,
    now: datetime | None = None,
    limits: Budget | None = None,
) -> Rendered:
    """Render `version` (a TemplateVersion) for `customer`.

    The locale variant is chosen for `locale` (a preview's choice) or else the customer's,
    then `locale_fallback`, then the default content. `now` is the render time (the context's
    `now`, an in-app message's expiry). `limits` replaces the default time and size budget of
    each field. Raises TemplateRenderError for a template that cannot render; never anything
    else for bad template text."""
    now = now or timezone.now()
    channel = version.template.channel
    chosen = choose_locale(
        (version.locales or {}).keys(), [locale or customer.locale or "", locale_fallback or ""]
    )
    content = dict(version.content) | (version.locales or {}).get(chosen, {})
    context = render_context(
        customer=customer, workspace=workspace, event=event, links=links, now=now
    )
    renderer = _FieldRenderer(context, limits or Budget(), locale=chosen)
    fields = _RENDERERS[channel](renderer, CHANNEL_FIELDS[channel], content, now)
    return Rendered(channel=channel, locale=chosen, fields=fields)


class _FieldRenderer:
    def __init__(self, context: dict, budget: Budget, *, locale: str):
        self.context = context
        self.budget = budget
        self.locale = locale

    def text(self, path: str, source, field: Field) -> str:
        if not source:
            return ""
        try:
            template = compiled(source, autoescape=field.kind == "html")
            rendered = render_stream(template, self.context, self.budget)
        except _TEMPLATE_MISTAKES as error:
            raise TemplateRenderError(self._reason(path, error), field=path) from None
        if field.single_line:
            return " ".join(rendered.split())
        return rendered

    def mapping(self, path: str, sources: dict, field: Field) -> dict:
        return {
            key: self.text(f"{path}.{key}", source, field)
            for key, source in (sources or {}).items()
        }

    def _reason(self, path: str, error: BaseException) -> str:
        where = path + (f" ({self.locale})" if self.locale else "")
        line = _template_line(error)
        if line:
            where += f", line {line}"
        return f"{where}: {_describe(error)}"


def _template_line(error: BaseException) -> int | None:
    if isinstance(error, TemplateSyntaxError):
        return error.lineno
    line, traceback = None, error.__traceback__
    while traceback is not None:  # Jinja rewrites frames of template code to the template line
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def _describe(error: BaseException) -> str:
    if isinstance(error, TemplateSyntaxError):
        return f"the template has a syntax error: {error.message}"
    if isinstance(error, LimitExceeded):
        return str(error)
    if isinstance(error, ZeroDivisionError):
        return "the template divides by zero"
    if isinstance(error, RecursionError):
        return "the template nests too deeply"
    if isinstance(error, TemplateError):
        return error.message or type(error).__name__
    return f"the template cannot render: {error}"


def _email(renderer: _FieldRenderer, spec: dict, content: dict, now) -> dict:
    subject = renderer.text("subject", content.get("subject"), spec["subject"])
    preheader = renderer.text("preheader", content.get("preheader"), spec["preheader"])
    html = renderer.text("html", content.get("html"), spec["html"])
    text = renderer.text("text", content.get("text"), spec["text"])
    if not text.strip():
        text = inscriptis.get_text(html).strip() if html.strip() else ""
    if preheader:
        html = _with_preheader(html, preheader)
    try:
        html = _INLINER.inline(html) if html.strip() else html
    except css_inline.InlineError as error:
        raise TemplateRenderError(
            f"html: the CSS cannot be inlined: {error}", field="html"
        ) from None
    return {"subject": subject, "preheader": preheader, "html": html, "text": text}


def _with_preheader(html: str, preheader: str) -> str:
    hidden = _PREHEADER.format(escape(preheader))
    body = _BODY_TAG.search(html)
    if body is None:
        return hidden + html
    return html[: body.end()] + hidden + html[body.end() :]


def _push(renderer: _FieldRenderer, spec: dict, content: dict, now) -> dict:
    fields = {
        name: renderer.text(name, content.get(name), spec[name])
        for name in ("title", "body", "image", "deep_link")
    }
    fields["data"] = renderer.mapping("data", content.get("data"), spec["data"])
    return fields


def _whatsapp(renderer: _FieldRenderer, spec: dict, content: dict, now) -> dict:
    return {
        "content_sid": content.get("content_sid", ""),
        "variables": renderer.mapping("variables", content.get("variables"), spec["variables"]),
    }


def _sms(renderer: _FieldRenderer, spec: dict, content: dict, now) -> dict:
    return {"body": renderer.text("body", content.get("body"), spec["body"])}


def _in_app(renderer: _FieldRenderer, spec: dict, content: dict, now) -> dict:
    fields = {
        name: renderer.text(name, content.get(name), spec[name])
        for name in ("title", "body", "image")
    }
    label_field = Field("text", single_line=True)
    link_field = Field("text", single_line=True)
    fields["buttons"] = [
        {
            "label": renderer.text(f"buttons.{index}.label", button.get("label"), label_field),
            "deep_link": renderer.text(
                f"buttons.{index}.deep_link", button.get("deep_link"), link_field
            ),
        }
        for index, button in enumerate(content.get("buttons") or [])
    ]
    hours = content.get("expires_after_hours")
    fields["layout"] = content.get("layout") or "modal"
    fields["expires_after_hours"] = hours
    fields["expires_at"] = (now + timedelta(hours=hours)).isoformat() if hours else None
    return fields


_RENDERERS = {
    Channel.EMAIL: _email,
    Channel.PUSH: _push,
    Channel.WHATSAPP: _whatsapp,
    Channel.SMS: _sms,
    Channel.IN_APP: _in_app,
}
