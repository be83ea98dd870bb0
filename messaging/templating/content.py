"""What a template holds per channel: its fields, how they are checked on save, and how each
renders. One table (`CHANNEL_FIELDS`) drives validation, rendering and the dashboard form.

Every text field is a Jinja2 template; `content_sid`, `layout` and `expires_after_hours` are
plain values. `data` (push) and `variables` (WhatsApp) map names to templates, each rendered to a
string. Email HTML is the only field rendered with autoescape."""

from __future__ import annotations

import re
from dataclasses import dataclass

from jinja2 import TemplateSyntaxError

from masivo.tenancy.errors import InvalidInput
from messaging.models import Channel
from messaging.templating.sandbox import MAX_OUTPUT, compiled

MAX_SOURCE = MAX_OUTPUT  # characters of template text per field
MAX_BUTTONS = 3
MAX_MAP_ENTRIES = 50
MAX_LOCALES = 50
MAX_EXPIRY_HOURS = 24 * 365
LAYOUTS = ("modal", "banner", "card")
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}$")
WHATSAPP_VARIABLE = re.compile(r"^[1-9][0-9]{0,2}$")
PUSH_DATA_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
# FCM refuses these data keys (and any starting with "google." or "gcm.").
PUSH_RESERVED_KEYS = frozenset({"from", "notification", "message_type", "collapse_key"})


@dataclass(frozen=True)
class Field:
    """`kind`: text (a template), html (a template with autoescape), sid, map, buttons,
    layout, hours. `single_line` fields have their whitespace collapsed after rendering (a
    subject or a title never carries a line break)."""

    kind: str
    is_required: bool = False
    single_line: bool = False
    max_length: int = MAX_SOURCE
    label: str = ""


CHANNEL_FIELDS: dict[str, dict[str, Field]] = {
    Channel.EMAIL: {
        "subject": Field("text", is_required=True, single_line=True, max_length=998),
        "preheader": Field("text", single_line=True, max_length=500),
        "html": Field("html", is_required=True),
        "text": Field("text", label="text (generated from the HTML when empty)"),
    },
    Channel.PUSH: {
        "title": Field("text", is_required=True, single_line=True, max_length=500),
        "body": Field("text", is_required=True, max_length=4000),
        "image": Field("text", single_line=True, max_length=2000),
        "deep_link": Field("text", single_line=True, max_length=2000),
        "data": Field("map", max_length=4000),
    },
    Channel.WHATSAPP: {
        "content_sid": Field("sid", is_required=True),
        "variables": Field("map", max_length=2000),
    },
    Channel.SMS: {
        "body": Field("text", is_required=True, max_length=4000),
    },
    Channel.IN_APP: {
        "title": Field("text", is_required=True, single_line=True, max_length=500),
        "body": Field("text", max_length=10_000),
        "image": Field("text", single_line=True, max_length=2000),
        "buttons": Field("buttons"),
        "layout": Field("layout"),
        "expires_after_hours": Field("hours"),
    },
}

_EMPTY = {"text": "", "html": "", "sid": "", "map": {}, "buttons": [], "layout": "modal"}


def fields_for(channel: str) -> dict[str, Field]:
    try:
        return CHANNEL_FIELDS[channel]
    except KeyError:
        raise InvalidInput(f"one of {', '.join(CHANNEL_FIELDS)}", field="channel") from None


def content_clean(channel: str, content, locales=None) -> tuple[dict, dict]:
    """The checked (content, locales) for a new version, or InvalidInput naming the field
    (`content.subject`, `locales.es-MX.title`). Content gets every field of its channel, with
    empty defaults; a locale variant holds only the fields that differ."""
    spec = fields_for(channel)
    cleaned = _clean_fields(spec, content, prefix="content", is_variant=False)
    for name, field in spec.items():
        if name not in cleaned:
            cleaned[name] = None if field.kind == "hours" else _copy(_EMPTY[field.kind])
    if locales is None:
        locales = {}
    if not isinstance(locales, dict):
        raise InvalidInput("must be an object of locale → fields", field="locales")
    if len(locales) > MAX_LOCALES:
        raise InvalidInput(f"at most {MAX_LOCALES} locales", field="locales")
    cleaned_locales = {}
    for locale, fields in locales.items():
        if not isinstance(locale, str) or not LOCALE.match(locale):
            raise InvalidInput("a locale is like es, es-MX or pt-BR", field=f"locales.{locale}")
        variant = _clean_fields(spec, fields, prefix=f"locales.{locale}", is_variant=True)
        if variant:
            cleaned_locales[locale.replace("_", "-")] = variant
    return cleaned, cleaned_locales


def _copy(value):
    return (
        list(value)
        if isinstance(value, list)
        else dict(value)
        if isinstance(value, dict)
        else value
    )


def _clean_fields(spec: dict[str, Field], fields, *, prefix: str, is_variant: bool) -> dict:
    if not isinstance(fields, dict):
        raise InvalidInput("must be an object", field=prefix)
    for name in fields:
        if name not in spec:
            raise InvalidInput(
                f"not a field of this channel; the fields are {', '.join(spec)}",
                field=f"{prefix}.{name}",
            )
    cleaned = {}
    for name, field in spec.items():
        path = f"{prefix}.{name}"
        if name not in fields:
            if field.is_required and not is_variant:
                raise InvalidInput("required", field=path)
            continue
        value = _clean_value(field, fields[name], path)
        if field.is_required and not is_variant and (value is None or not str(value).strip()):
            raise InvalidInput("required", field=path)
        cleaned[name] = value
    return cleaned


def _clean_value(field: Field, value, path: str):
    match field.kind:
        case "text" | "html":
            return _template_text(
                value, path, max_length=field.max_length, html=field.kind == "html"
            )
        case "sid":
            if not isinstance(value, str) or not CONTENT_SID.match(value):
                raise InvalidInput(
                    "an approved Twilio Content template SID: HX followed by 32 hex digits",
                    field=path,
                )
            return value
        case "map":
            return _template_map(value, path, max_length=field.max_length)
        case "buttons":
            return _buttons(value, path)
        case "layout":
            if value not in LAYOUTS:
                raise InvalidInput(f"one of {', '.join(LAYOUTS)}", field=path)
            return value
        case "hours":
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput("a whole number of hours, or null for no expiry", field=path)
            if not 1 <= value <= MAX_EXPIRY_HOURS:
                raise InvalidInput(f"between 1 and {MAX_EXPIRY_HOURS} hours", field=path)
            return value
    raise AssertionError(f"unknown field kind {field.kind}")


def _template_text(value, path: str, *, max_length: int, html: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidInput("must be text", field=path)
    if len(value) > max_length:
        raise InvalidInput(f"at most {max_length:,} characters", field=path)
    if "\x00" in value:
        raise InvalidInput("must not contain NUL characters", field=path)
    try:
        compiled(value, autoescape=html)
    except TemplateSyntaxError as error:
        raise InvalidInput(
            f"does not compile as a template (line {error.lineno}): {error.message}", field=path
        ) from None
    return value


def _template_map(value, path: str, *, max_length: int) -> dict:
    is_push = path.endswith(".data")
    if not isinstance(value, dict):
        raise InvalidInput("must be an object of name → template text", field=path)
    if len(value) > MAX_MAP_ENTRIES:
        raise InvalidInput(f"at most {MAX_MAP_ENTRIES} entries", field=path)
    for key in value:
        key_path = f"{path}.{key}"
        if is_push:
            if (
                not PUSH_DATA_KEY.match(key)
                or key in PUSH_RESERVED_KEYS
                or key.startswith(("google.", "gcm."))
            ):
                raise InvalidInput(
                    "a data key is a name (letters, digits, _ . -) and not one FCM reserves "
                    "(from, notification, message_type, collapse_key, google.*, gcm.*)",
                    field=key_path,
                )
        elif not WHATSAPP_VARIABLE.match(key):
            raise InvalidInput("WhatsApp variables are numbered: 1, 2, 3...", field=key_path)
    return {
        key: _template_text(item, f"{path}.{key}", max_length=max_length)
        for key, item in value.items()
    }


def _buttons(value, path: str) -> list:
    if not isinstance(value, list):
        raise InvalidInput("must be a list of {label, deep_link}", field=path)
    if len(value) > MAX_BUTTONS:
        raise InvalidInput(f"at most {MAX_BUTTONS} buttons", field=path)
    buttons = []
    for index, button in enumerate(value):
        button_path = f"{path}.{index}"
        if not isinstance(button, dict) or set(button) - {"label", "deep_link"}:
            raise InvalidInput("a button is {label, deep_link}", field=button_path)
        label = _template_text(button.get("label"), f"{button_path}.label", max_length=200)
        if not label.strip():
            raise InvalidInput("required", field=f"{button_path}.label")
        deep_link = button.get("deep_link", "")
        buttons.append(
            {
                "label": label,
                "deep_link": _template_text(deep_link, f"{button_path}.deep_link", max_length=2000),
            }
        )
    return buttons
