"""Email through SendGrid: the connection (API key, default sender, reply-to, the Event
Webhook's public key) and its test, a `GET /v3/scopes` that says whether the key may send."""

from __future__ import annotations

import base64
import binascii
import json

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from messaging.channels.base import (
    Field,
    Provider,
    TestOutcome,
    clean_email,
    clean_text,
    clean_token,
    provider_timeout,
    provider_url,
)

DEFAULT_API_URL = "https://api.sendgrid.com"


def clean_event_webhook_public_key(value) -> str:
    """The key SendGrid shows for a signed Event Webhook: base64 DER of an ECDSA P-256 key."""
    value = "".join(clean_text(500)(value).split())
    if not value:
        return value
    try:
        key = load_der_public_key(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        raise ValueError(
            "not a public key: paste the Verification Key SendGrid shows for the signed Event "
            "Webhook (base64, no BEGIN/END lines)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ECDSA P-256 key, which SendGrid's Event Webhook signs with")
    return value


def sendgrid_client(api_key: str) -> SendGridAPIClient:
    return SendGridAPIClient(
        api_key=api_key, host=provider_url("MASIVO_SENDGRID_API_URL", DEFAULT_API_URL)
    )


class SendGridProvider(Provider):
    name = "sendgrid"
    label = "SendGrid"
    channels = ("email",)
    fields = {
        "api_key": Field(
            "API key",
            clean_token(200),
            is_required=True,
            is_secret=True,
            help_text="A SendGrid API key with the Mail Send permission.",
        ),
        "from_email": Field("Default sender email", clean_email, is_required=True),
        "from_name": Field("Default sender name", clean_text(200)),
        "reply_to": Field("Reply-to email", clean_email),
        "event_webhook_public_key": Field(
            "Event Webhook verification key",
            clean_event_webhook_public_key,
            help_text="From SendGrid's signed Event Webhook settings; delivery events are "
            "verified with it.",
            is_multiline=True,
        ),
    }

    def test(self, *, settings: dict, credentials: dict) -> TestOutcome:
        client = sendgrid_client(credentials["api_key"])
        try:
            response = client.client.scopes.get(timeout=provider_timeout())
        except HTTPError as error:
            if error.status_code in {401, 403}:
                return TestOutcome(
                    False,
                    f"SendGrid refused the API key ({error.status_code}): check that it is "
                    "complete and has not been deleted.",
                )
            return TestOutcome(
                False, f"SendGrid answered {error.status_code}; try again in a moment."
            )
        except OSError as error:  # urllib's URLError, refused connections, timeouts
            return TestOutcome(False, f"Could not reach SendGrid: {_reason(error)}.")
        scopes = _scopes(response.body)
        if "mail.send" not in scopes:
            return TestOutcome(
                False, "The API key works but may not send mail: give it the Mail Send permission."
            )
        return TestOutcome(True, "SendGrid accepted the API key, which may send mail.")


def _scopes(body: bytes) -> list[str]:
    try:
        scopes = json.loads(body or b"{}").get("scopes", [])
    except (ValueError, AttributeError):
        return []
    return scopes if isinstance(scopes, list) else []


def _reason(error: OSError) -> str:
    return str(getattr(error, "reason", None) or error)


PROVIDER = SendGridProvider()
