"""The public URLs of delivery feedback: the webhook URLs to configure at SendGrid and Twilio,
and the base every public link (tracking, webhooks) is built on.

`MASIVO_PUBLIC_URL` (a setting, else the environment variable) is the address the world reaches
this Masivo at, e.g. `https://cdp.example.com`. Twilio signs the URL it calls, so behind a
TLS-terminating proxy the URL a request arrived at (http://...) is not the one signed: with
the setting, validation uses it instead.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.urls import reverse

from messaging.models import ChannelConnection
from messaging.models.connections import new_webhook_token


def public_base_url(request=None) -> str:
    """`MASIVO_PUBLIC_URL` without a trailing slash; else the request's own scheme and host;
    else "" (no absolute links can be made)."""
    configured = getattr(settings, "MASIVO_PUBLIC_URL", None) or os.environ.get(
        "MASIVO_PUBLIC_URL", ""
    )
    if configured:
        return configured.rstrip("/")
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return ""


def public_url(path: str, request=None) -> str:
    return public_base_url(request) + path


def webhook_token_of(connection: ChannelConnection) -> str:
    """The connection's webhook token, made (and saved) the first time it is needed."""
    if not connection.webhook_token:
        token = new_webhook_token(connection.workspace_id)
        updated = ChannelConnection.objects.filter(id=connection.id, webhook_token="").update(
            webhook_token=token
        )
        if not updated:
            token = ChannelConnection.objects.values_list("webhook_token", flat=True).get(
                id=connection.id
            )
        connection.webhook_token = token
    return connection.webhook_token


def sendgrid_webhook_url(connection: ChannelConnection, request=None) -> str:
    return public_url(
        reverse("messaging_sendgrid_events", args=[webhook_token_of(connection)]), request
    )


def twilio_status_callback_url(
    connection: ChannelConnection, message_id: int | None = None, request=None
) -> str:
    """The `StatusCallback` to pass with each Twilio message; with `message_id`, the callback
    finds its message even before the sender has stored Twilio's MessageSid."""
    url = public_url(
        reverse("messaging_twilio_status", args=[webhook_token_of(connection)]), request
    )
    return f"{url}?message={message_id}" if message_id is not None else url


def twilio_inbound_url(connection: ChannelConnection, request=None) -> str:
    return public_url(
        reverse("messaging_twilio_inbound", args=[webhook_token_of(connection)]), request
    )


def webhook_urls(connection: ChannelConnection, request=None) -> list[tuple[str, str]]:
    """(what to paste it into, URL) for the dashboard's channel card."""
    if connection.provider == ChannelConnection.Provider.SENDGRID:
        return [("Event Webhook (Post URL)", sendgrid_webhook_url(connection, request))]
    if connection.provider == ChannelConnection.Provider.TWILIO:
        return [
            ("Status callback", twilio_status_callback_url(connection, request=request)),
            ("Incoming messages (“A message comes in”)", twilio_inbound_url(connection, request)),
        ]
    return []
