"""WhatsApp (an approved Content template: `ContentSid` + `ContentVariables`) and SMS (`Body`)
through Twilio's Messages resource: one request a message, bounded concurrency, each with a
`StatusCallback` naming our message id. Twilio can be asked afterwards what it holds, so
recovery looks a possibly handed-over message up instead of calling it unknown
(`twilio_lookup`)."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from messaging.channels.base import provider_timeout, provider_url
from messaging.channels.whatsapp import RedirectingHttpClient
from messaging.feedback.links import twilio_status_callback_url
from messaging.sending.outcomes import Failed, Outcome, RetryLater, Sent, Unknown
from messaging.sending.retry import never_reached, seconds_header
from messaging.sending.senders.base import Prepared, Sender

# twilio's http client logs every request and its headers at INFO: at send rates, that is
# most of the sender's time and a log line per header.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
# Twilio's synchronous refusals that retrying cannot change.
PERMANENT_CODES = {
    21211: "invalid To number",
    21214: "the To number cannot be reached",
    21408: "permission to send to this region is not enabled",
    21610: "the recipient replied STOP (unsubscribed)",
    21612: "the To number cannot receive from this sender",
    21614: "the To number is not a mobile number",
    21656: "invalid ContentVariables",
    63016: "the template is not allowed outside the 24 h window",
    63024: "invalid WhatsApp recipient",
    63049: "Meta chose not to deliver this marketing template",
}


def twilio_rest_client(account_sid: str, auth_token: str) -> Client:
    """Like messaging.channels.whatsapp.twilio_client, one per thread: the 429's Retry-After
    is only on the http client's last response (twilio 9.13.0, pinned)."""
    base_url = provider_url("MASIVO_TWILIO_API_URL", None)
    http_client = (
        RedirectingHttpClient(base_url, timeout=provider_timeout())
        if base_url
        else TwilioHttpClient(timeout=provider_timeout())
    )
    return Client(account_sid, auth_token, http_client=http_client)


def _last_retry_after(client: Client) -> float | None:
    response = getattr(client.http_client, "_test_only_last_response", None)
    headers = getattr(response, "headers", None) or {}
    return seconds_header(headers.get("Retry-After"))


def twilio_error_outcome(error: TwilioRestException, retry_after: float | None) -> Outcome:
    if error.status == 429 or error.code == 20429:
        return RetryLater(
            "rate_limited", f"Twilio answered 429 ({error.code})", after_seconds=retry_after
        )
    if error.status >= 500:
        return RetryLater("provider_unavailable", f"Twilio answered {error.status} ({error.code})")
    if error.status == 401:
        return Failed("unauthorized", f"Twilio refused the credentials ({error.code})")
    meaning = PERMANENT_CODES.get(error.code)
    reason = f"Twilio {error.code}: {meaning or error.msg}"
    return Failed(f"twilio_{error.code}" if error.code else "invalid_request", reason[:500])


class TwilioSender(Sender):
    provider = "twilio"

    def load(self, messages: list) -> None:
        self.account_sid = self.connection.settings["account_sid"]
        self.auth_token = self.connection.credentials["auth_token"]
        self._local = threading.local()

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = twilio_rest_client(self.account_sid, self.auth_token)
        return client

    def prepare(self, message, rendered) -> Prepared | Failed:
        if not message.address:
            return Failed("no_address", "the message has no phone number")
        settings_ = self.connection.settings
        fields = rendered.fields
        params = {"status_callback": twilio_status_callback_url(self.connection, message.id)}
        if message.channel == "whatsapp":
            if not fields.get("content_sid"):
                return Failed("render_error", "a WhatsApp message needs an approved template")
            variables = {str(k): str(v) for k, v in (fields.get("variables") or {}).items()}
            params |= {
                "to": f"whatsapp:{message.address}",
                "content_sid": fields["content_sid"],
                "content_variables": json.dumps(variables, separators=(",", ":")),
            }
            if settings_.get("messaging_service_sid"):
                params["messaging_service_sid"] = settings_["messaging_service_sid"]
            else:
                params["from_"] = f"whatsapp:{settings_['whatsapp_from']}"
            payload = {"content_sid": fields["content_sid"], "variables": variables}
        else:
            if not fields.get("body"):
                return Failed("render_error", "the SMS has no body")
            params |= {"to": message.address, "body": fields["body"]}
            sender = settings_.get("sms_from") or settings_.get("whatsapp_from")
            if settings_.get("messaging_service_sid") and not settings_.get("sms_from"):
                params["messaging_service_sid"] = settings_["messaging_service_sid"]
            elif sender:
                params["from_"] = sender
            else:
                return Failed("no_connection", "the Twilio connection has no SMS sender")
            payload = {"body": fields["body"]}
        payload["to"] = params["to"]
        return Prepared(message=message, payload=payload, request=params)

    def send(self, items: list[Prepared]) -> dict[int, Outcome]:
        outcomes = self.pool.map(self._send_one, items)
        return {item.message.id: outcome for item, outcome in zip(items, outcomes, strict=True)}

    def _send_one(self, item: Prepared) -> Outcome:
        client = self._client()
        try:
            created = client.messages.create(**item.request)
        except TwilioRestException as error:
            return twilio_error_outcome(error, _last_retry_after(client))
        except requests.RequestException as error:
            if never_reached(error):
                return RetryLater("connection_error", f"could not reach Twilio: {error}")
            return Unknown("connection_lost", f"the connection to Twilio broke: {error}")
        return Sent(
            provider_message_id=created.sid, detail=f"Twilio accepted it ({created.status})"
        )


def twilio_lookup(
    *, connection, to: str, handed_over_at: datetime, exclude: set[str]
) -> str | None:
    """The sid of a message Twilio holds for `to` created since the hand-over (a minute of
    clock skew allowed), other than `exclude` (sids already recorded on our messages); None
    when Twilio holds none, so the hand-over never reached it. Raises what the SDK raises."""
    client = twilio_rest_client(
        connection.settings["account_sid"], connection.credentials["auth_token"]
    )
    since = handed_over_at - timedelta(minutes=1)
    # By To only: DateSent is empty until Twilio sends, and filters by whole days.
    found = client.messages.list(to=to, limit=50)
    candidates = sorted(
        (message.date_created or since, message.sid)
        for message in found
        if message.sid not in exclude
        and (message.date_created is None or message.date_created >= since)
    )
    return candidates[0][1] if candidates else None
