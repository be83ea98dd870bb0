"""Email through SendGrid's v3 Mail Send.

Bodies are rendered per recipient here, and SendGrid's `content` is shared by every
personalization of a request, so each message is one request (one personalization), sent with
bounded concurrency. Each carries our message id and dedupe key in `custom_args`, which the
Event Webhook hands back (X-Message-Id is per request, not per message).
"""

from __future__ import annotations

import json
import urllib.error

from python_http_client.exceptions import HTTPError

from messaging import tracking, unsubscribe
from messaging.channels.base import provider_timeout
from messaging.channels.email import sendgrid_client
from messaging.sending.outcomes import Failed, Outcome, RetryLater, Sent, Unknown
from messaging.sending.retry import epoch_header, never_reached, seconds_header
from messaging.sending.senders.base import Prepared, Sender
from profiles.consent import consent_allows, consent_opt_out
from profiles.services.settings import profile_settings_get

MESSAGE_ID_ARG = "masivo_message_id"
DEDUPE_KEY_ARG = "masivo_dedupe_key"


class SendGridSender(Sender):
    provider = "sendgrid"

    def load(self, messages: list) -> None:
        self.opt_out = consent_opt_out(profile_settings_get(workspace=self.workspace))
        self.api_key = self.connection.credentials["api_key"]

    def prepare(self, message, rendered) -> Prepared | Failed:
        if not message.address:
            return Failed("no_address", "the message has no email address")
        fields = rendered.fields
        may_track = consent_allows(message.customer.consent, "link_tracking", opt_out=self.opt_out)
        html = fields.get("html") or ""
        if html:
            html = tracking.prepare_email_html(message, html, may_track=may_track)
        text = fields.get("text") or ""
        if not (html or text):
            return Failed("render_error", "the email has neither an HTML nor a text body")
        headers = unsubscribe.unsubscribe_headers(message) if message.kind == "marketing" else {}
        settings = self.connection.settings
        personalization = {
            "to": [{"email": message.address}],
            "custom_args": {MESSAGE_ID_ARG: str(message.id), DEDUPE_KEY_ARG: message.dedupe_key},
        }
        if headers:
            personalization["headers"] = dict(headers)
        sender = {"email": settings["from_email"]}
        if settings.get("from_name"):
            sender["name"] = settings["from_name"]
        # text/plain must come before text/html (SendGrid refuses the other order).
        content = [{"type": "text/plain", "value": text}] if text else []
        content += [{"type": "text/html", "value": html}] if html else []
        body = {
            "personalizations": [personalization],
            "from": sender,
            "subject": fields.get("subject") or "",
            "content": content,
        }
        if settings.get("reply_to"):
            body["reply_to"] = {"email": settings["reply_to"]}
        # Masivo tracks opens and clicks itself, and only with link_tracking consent:
        # SendGrid's own tracking would do it for everyone (and redirect clicks twice).
        body["tracking_settings"] = {
            "click_tracking": {"enable": False, "enable_text": False},
            "open_tracking": {"enable": False},
        }
        payload = {
            "subject": body["subject"],
            "preheader": fields.get("preheader") or "",
            "html": html,
            "text": text,
            "headers": dict(headers),
        }
        return Prepared(message=message, payload=payload, request=body)

    def send(self, items: list[Prepared]) -> dict[int, Outcome]:
        outcomes = self.pool.map(self._send_one, items)
        return {item.message.id: outcome for item, outcome in zip(items, outcomes, strict=True)}

    def _send_one(self, item: Prepared) -> Outcome:
        client = sendgrid_client(self.api_key)
        try:
            response = client.client.mail.send.post(
                request_body=item.request, timeout=provider_timeout()
            )
        except HTTPError as error:
            return sendgrid_error_outcome(error)
        except TimeoutError as error:
            # The request may have reached SendGrid: sending again could send twice.
            return Unknown("timeout", f"SendGrid did not answer in time ({error})")
        except (urllib.error.URLError, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            if never_reached(error):
                return RetryLater("connection_error", f"could not reach SendGrid: {reason}")
            return Unknown("connection_lost", f"the connection to SendGrid broke: {reason}")
        provider_id = response.headers.get("X-Message-Id") or ""
        return Sent(provider_message_id=provider_id, detail="SendGrid accepted it")


def _errors_text(body) -> str:
    try:
        errors = json.loads(body or b"{}").get("errors") or []
        text = "; ".join(
            str(error.get("message")) + (f" ({error['field']})" if error.get("field") else "")
            for error in errors
            if isinstance(error, dict)
        )
    except (ValueError, AttributeError):
        text = ""
    return text or "no reason given"


def sendgrid_error_outcome(error: HTTPError) -> Outcome:
    status = error.status_code
    headers = error.headers or {}
    if status == 429:
        return RetryLater(
            "rate_limited",
            "SendGrid answered 429 (too many requests)",
            after_seconds=seconds_header(headers.get("Retry-After")),
            at=epoch_header(headers.get("X-RateLimit-Reset")),
        )
    if status >= 500:
        return RetryLater("provider_unavailable", f"SendGrid answered {status}")
    if status in (401, 403):
        return Failed(
            "unauthorized", f"SendGrid refused the API key ({status}): {_errors_text(error.body)}"
        )
    return Failed("invalid_request", f"SendGrid refused it ({status}): {_errors_text(error.body)}")
