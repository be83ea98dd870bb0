"""Unsubscribe links, RFC 8058 headers and the preference centre (work in progress)."""

from __future__ import annotations


def message_links(message) -> dict[str, str]:
    """The links a template may use for `message`: `unsubscribe_url`, `preferences_url`."""
    return {}


def unsubscribe_headers(message) -> dict[str, str]:
    """`List-Unsubscribe` and `List-Unsubscribe-Post` for a marketing email, else {}."""
    return {}
