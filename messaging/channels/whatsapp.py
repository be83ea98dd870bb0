"""WhatsApp (and SMS, over the same connection) through Twilio: account SID, auth token, and the
WhatsApp sender number or a Messaging Service. "Test connection" fetches the account.

`MASIVO_TWILIO_API_URL`, when set, sends every Twilio domain (api, content, messaging) to one
base URL, keeping the path: the SDK has no host option (its `edge`/`region` only build other
twilio.com names), so its HTTP client rewrites the scheme and host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from messaging.channels.base import (
    Field,
    Provider,
    TestOutcome,
    clean_e164,
    clean_pattern,
    clean_token,
    provider_timeout,
    provider_url,
)


class RedirectingHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, sending requests for *.twilio.com to `base_url` instead."""

    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        if (parts.hostname or "").endswith("twilio.com"):
            url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().request(method, url, *args, **kwargs)


def twilio_client(account_sid: str, auth_token: str) -> Client:
    base_url = provider_url("MASIVO_TWILIO_API_URL", None)
    timeout = provider_timeout()
    http_client = (
        RedirectingHttpClient(base_url, timeout=timeout)
        if base_url
        else TwilioHttpClient(timeout=timeout)
    )
    return Client(account_sid, auth_token, http_client=http_client)


class TwilioProvider(Provider):
    name = "twilio"
    label = "Twilio"
    channels = ("whatsapp", "sms")
    fields = {
        "account_sid": Field(
            "Account SID",
            clean_pattern(r"AC[0-9a-f]{32}", "an Account SID: AC and 32 hexadecimal characters"),
            is_required=True,
        ),
        "auth_token": Field(
            "Auth token",
            clean_token(100),
            is_required=True,
            is_secret=True,
            help_text="The account's primary auth token (Twilio Console, Account Info).",
        ),
        "whatsapp_from": Field(
            "WhatsApp sender",
            clean_e164,
            help_text="The WhatsApp-enabled number messages come from, in E.164 form.",
        ),
        "messaging_service_sid": Field(
            "Messaging Service SID",
            clean_pattern(
                r"MG[0-9a-f]{32}", "a Messaging Service SID: MG and 32 hexadecimal characters"
            ),
            help_text="Instead of a sender: Twilio picks the number from the service's pool.",
        ),
        "sms_from": Field(
            "SMS sender",
            clean_e164,
            help_text="For SMS, when it differs from the WhatsApp sender.",
        ),
    }

    def check_together(self, settings: dict, credentials: dict) -> tuple[str, str] | None:
        if not settings.get("whatsapp_from") and not settings.get("messaging_service_sid"):
            return ("whatsapp_from", "give a WhatsApp sender or a Messaging Service SID")
        return None

    def test(self, *, settings: dict, credentials: dict) -> TestOutcome:
        client = twilio_client(settings["account_sid"], credentials["auth_token"])
        try:
            account = client.api.v2010.accounts(settings["account_sid"]).fetch()
        except TwilioRestException as error:
            if error.status == 401:
                return TestOutcome(
                    False,
                    f"Twilio refused the account SID and auth token ({error.code} "
                    f"{error.msg}): check both, and that the token was not rotated.",
                )
            return TestOutcome(
                False, f"Twilio answered {error.status} ({error.code}); try again in a moment."
            )
        except requests.RequestException as error:
            return TestOutcome(False, f"Could not reach Twilio: {error.__class__.__name__}.")
        if account.status != "active":
            return TestOutcome(False, f"The Twilio account is {account.status}, not active.")
        return TestOutcome(True, f"Twilio accepted the credentials of {account.friendly_name}.")


PROVIDER = TwilioProvider()
