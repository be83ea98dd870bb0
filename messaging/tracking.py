"""Open and click tracking for email (work in progress: links are left as they are)."""

from __future__ import annotations


def prepare_email_html(message, html: str, *, may_track: bool) -> str:
    """The HTML to hand over for `message`: with signed click links and an open pixel when
    `may_track` (the customer's `link_tracking` consent allows it), else unchanged."""
    return html
