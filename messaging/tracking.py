"""Open and click tracking for email, only where the customer's `link_tracking` consent allows.

`prepare_email_html` (the sender calls it with `may_track`) rewrites each `http(s)://` link to
a signed redirect, `/m/c/<token>`, and adds a 1x1 open pixel, `/m/o/<token>.gif`. Tokens are
`django.core.signing` values (salted per use) carrying the workspace, the message and, for a
click, the target: the redirect goes only where a token we signed says, so it is never an open
redirect, and a token that does not verify is a 404. Tokens do not expire (an old email's
links keep working).

Recording: the first open moves the message to `opened`, the first click to `clicked`
(forward only, messaging.feedback.engagement); `Message Opened` is recorded once per message,
`Message Clicked` once per message and URL.
"""

from __future__ import annotations

import html as html_lib
import logging
from html.parser import HTMLParser

from django.core import signing
from django.urls import reverse

from masivo.tenancy.context import workspace_scope
from messaging.feedback.engagement import record_engagement
from messaging.feedback.links import public_base_url
from messaging.models import Message, MessageStatus
from profiles.consent import may_contact
from profiles.models import ConsentPurpose

logger = logging.getLogger(__name__)

CLICK_SALT = "masivo.messaging.click"
OPEN_SALT = "masivo.messaging.open"
TRACKED_SCHEMES = ("http://", "https://")
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def click_token(message: Message, url: str) -> str:
    return signing.dumps(
        {"w": message.workspace_id, "m": message.id, "u": url}, salt=CLICK_SALT, compress=True
    )


def open_token(message: Message) -> str:
    return signing.dumps({"w": message.workspace_id, "m": message.id}, salt=OPEN_SALT)


def click_url(message: Message, url: str, base: str) -> str:
    return base + reverse("messaging_click", args=[click_token(message, url)])


def open_url(message: Message, base: str) -> str:
    return base + reverse("messaging_open", args=[open_token(message)])


class _Links(HTMLParser):
    """Finds each `<a>` start tag with its place in the source (offset, length)."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.source = source
        self.line_starts = [0]
        for index, char in enumerate(source):
            if char == "\n":
                self.line_starts.append(index + 1)
        self.anchors: list[tuple[int, int, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        if tag != "a":
            return
        text = self.get_starttag_text() or ""
        line, column = self.getpos()
        start = self.line_starts[line - 1] + column
        if self.source.startswith(text, start):
            self.anchors.append((start, len(text), attrs))

    handle_startendtag = handle_starttag


def _is_trackable(href: str | None, own_base: str) -> bool:
    if not href:
        return False
    lowered = href.strip().lower()
    if not lowered.startswith(TRACKED_SCHEMES):
        return False  # mailto:, tel:, javascript:, anchors and relative links stay as they are
    # Our own public pages (unsubscribe, preferences) are not wrapped.
    return not (own_base and lowered.startswith(own_base.lower() + "/m/"))


def _start_tag(tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> str:
    parts = [tag]
    for name, value in attrs:
        parts.append(name if value is None else f'{name}="{html_lib.escape(value, quote=True)}"')
    return "<" + " ".join(parts) + (" />" if self_closing else ">")


def tracking_allowed(customer, *, settings) -> bool:
    """`may_track` for `prepare_email_html`: the customer's `link_tracking` consent under the
    workspace's regime (`settings`: its ProfileSettings), THE consent policy's answer."""
    return may_contact(customer, ConsentPurpose.LINK_TRACKING, settings=settings)


def prepare_email_html(message, html: str, *, may_track: bool) -> str:
    """The HTML to hand over for `message`: with signed click links and an open pixel when
    `may_track` (the customer's `link_tracking` consent allows it), else unchanged."""
    if not may_track or not html:
        return html
    base = public_base_url()
    if not base:
        logger.warning("MASIVO_PUBLIC_URL is not set: email %s is sent untracked", message.id)
        return html
    parser = _Links(html)
    parser.feed(html)
    parser.close()
    pieces, position = [], 0
    for start, length, attrs in parser.anchors:
        href = next((value for name, value in attrs if name == "href"), None)
        if not _is_trackable(href, base):
            continue
        target = href.strip()
        rewritten = [
            (name, click_url(message, target, base) if name == "href" else value)
            for name, value in attrs
        ]
        original = html[start : start + length]
        pieces.append(html[position:start])
        pieces.append(_start_tag("a", rewritten, original.rstrip().endswith("/>")))
        position = start + length
    pieces.append(html[position:])
    out = "".join(pieces)
    pixel = (
        f'<img src="{html_lib.escape(open_url(message, base))}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0" />'
    )
    closing = out.lower().rfind("</body>")
    if closing == -1:
        return out + pixel
    return out[:closing] + pixel + out[closing:]


def _payload(token: str, salt: str, keys: tuple[str, ...]) -> dict | None:
    try:
        payload = signing.loads(token, salt=salt)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    for key in keys:
        value = payload.get(key)
        if key == "u":
            if not isinstance(value, str) or not value.lower().startswith(TRACKED_SCHEMES):
                return None
        elif not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return None
    return payload


def _message(payload: dict) -> Message | None:
    return Message.objects.filter(id=payload["m"]).select_related("template_version").first()


def record_click(token: str) -> str | None:
    """The target of a click token (recording the click), or None when it does not verify."""
    payload = _payload(token, CLICK_SALT, ("w", "m", "u"))
    if payload is None:
        return None
    with workspace_scope(payload["w"]):
        message = _message(payload)
        if message is not None:
            record_engagement(
                message,
                MessageStatus.CLICKED,
                detail=f"clicked {payload['u']}"[:500],
                properties={"url": payload["u"]},
            )
    return payload["u"]


def record_open(token: str) -> bool:
    """Record an open; False when the token does not verify."""
    payload = _payload(token, OPEN_SALT, ("w", "m"))
    if payload is None:
        return False
    with workspace_scope(payload["w"]):
        message = _message(payload)
        if message is not None:
            record_engagement(message, MessageStatus.OPENED, detail="open pixel")
    return True
