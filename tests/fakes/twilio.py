"""Twilio fake: the 2010-04-01 Accounts and Messages resources (WhatsApp and SMS) and the Content
API's `GET /v1/Content/{sid}`.

Every Twilio domain (api, content, messaging) maps onto this one server: the SDK's client is
given an http client that rewrites scheme and host (`messaging.channels.whatsapp`), and the
paths differ. Accounts are known through `fake.add_account(sid, token)`; a wrong token gets
Twilio's 401 (code 20003). `error(status, code, message)` builds a Twilio error answer (429 is
code 20429; 21211 an invalid To number; 63016 outside the WhatsApp window).

Created messages are kept (`fake.messages`) and listed by `GET .../Messages.json?To=...`
(newest first, as Twilio does), which the send pipeline's recovery asks; `delivered_keys`
counts them by the `message` query parameter of their StatusCallback (our message id).
"""

from __future__ import annotations

import base64
import itertools
import re
import threading
from collections import Counter
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

from tests.fakes.base import Answer, FakeServer, RecordedRequest

ACCOUNT = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})\.json$")
MESSAGES = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")
CONTENT = re.compile(r"^/v1/Content/(HX[0-9a-fA-F]{32})$")


class TwilioFake(FakeServer):
    name = "twilio"

    def __init__(self):
        super().__init__()
        self.accounts: dict[str, str] = {}
        self.contents: dict[str, dict] = {}
        self._sids = itertools.count(1)
        self.messages: list[dict] = []
        self.delivered_keys: Counter[str] = Counter()
        self._messages_lock = threading.Lock()

    def reset(self) -> None:
        super().reset()
        self.accounts.clear()
        self.contents.clear()
        with self._messages_lock:
            self.messages.clear()
            self.delivered_keys.clear()

    def add_account(self, sid: str, auth_token: str) -> None:
        self.accounts[sid] = auth_token

    def add_content(self, sid: str, friendly_name: str, variables: dict | None = None) -> None:
        self.contents[sid] = {"friendly_name": friendly_name, "variables": variables or {}}

    @property
    def messages_created(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and MESSAGES.match(r.path)]

    @staticmethod
    def error(status: int, code: int, message: str, retry_after: int | None = None) -> Answer:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Answer(
            status,
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            headers,
        )

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> Answer:
        return cls.error(429, 20429, "Too Many Requests", retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Answer:
        return cls.error(status, 20500, "Internal Server Error")

    def route(self, request: RecordedRequest) -> Answer:
        account_sid = self._authenticated_account(request)
        if account_sid is None:
            return self.error(401, 20003, "Authenticate")
        if content := CONTENT.match(request.path):
            return self._content(content.group(1))
        if (match := ACCOUNT.match(request.path)) and request.method == "GET":
            if match.group(1) != account_sid:
                return self.error(404, 20404, "The requested resource was not found")
            return Answer(200, self._account(account_sid))
        if (match := MESSAGES.match(request.path)) and request.method == "POST":
            if match.group(1) != account_sid:
                return self.error(404, 20404, "The requested resource was not found")
            return self._create_message(account_sid, request.form or {})
        if (match := MESSAGES.match(request.path)) and request.method == "GET":
            if match.group(1) != account_sid:
                return self.error(404, 20404, "The requested resource was not found")
            return self._list_messages(account_sid, request)
        return self.error(404, 20404, "The requested resource was not found")

    def _authenticated_account(self, request: RecordedRequest) -> str | None:
        authorization = request.header("Authorization") or ""
        if not authorization.startswith("Basic "):
            return None
        try:
            sid, _, token = base64.b64decode(authorization[6:]).decode().partition(":")
        except ValueError:
            return None
        return sid if self.accounts.get(sid) == token else None

    @staticmethod
    def _account(sid: str) -> dict:
        return {
            "sid": sid,
            "friendly_name": "Fake account",
            "status": "active",
            "type": "Full",
            "owner_account_sid": sid,
            "date_created": "Tue, 01 Dec 2026 10:00:00 +0000",
            "date_updated": "Tue, 01 Dec 2026 10:00:00 +0000",
            "auth_token": "[Redacted]",
            "uri": f"/2010-04-01/Accounts/{sid}.json",
            "subresource_uris": {},
        }

    def _content(self, sid: str) -> Answer:
        content = self.contents.get(sid)
        if content is None:
            return self.error(404, 20404, "The requested resource was not found")
        return Answer(
            200,
            {
                "sid": sid,
                "friendly_name": content["friendly_name"],
                "language": "en",
                "variables": content["variables"],
                "types": {"twilio/text": {"body": "Hello {{1}}"}},
                "url": f"https://content.twilio.com/v1/Content/{sid}",
                "links": {},
            },
        )

    def _create_message(self, account_sid: str, form: dict[str, list[str]]) -> Answer:
        values = {name: items[-1] for name, items in form.items()}
        if not values.get("To"):
            return self.error(400, 21604, "A 'To' phone number is required.")
        if not values.get("From") and not values.get("MessagingServiceSid"):
            return self.error(400, 21603, "A 'From' phone number is required.")
        if not any(values.get(name) for name in ("Body", "ContentSid", "MediaUrl")):
            return self.error(400, 21619, "A text message Body or Media URL is required.")
        sid = f"SM{next(self._sids):032x}"
        created = format_datetime(datetime.now(UTC), usegmt=True)
        resource = {
            "sid": sid,
            "account_sid": account_sid,
            "to": values["To"],
            "from": values.get("From"),
            "messaging_service_sid": values.get("MessagingServiceSid"),
            "body": values.get("Body", ""),
            "status": "accepted" if values.get("MessagingServiceSid") else "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "error_code": None,
            "error_message": None,
            "date_created": created,
            "date_updated": created,
            "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
        }
        callback = urlsplit(values.get("StatusCallback", ""))
        message_id = (parse_qs(callback.query).get("message") or [""])[-1]
        with self._messages_lock:
            self.messages.append(resource)
            if message_id:
                self.delivered_keys[message_id] += 1
        return Answer(201, resource)

    def _list_messages(self, account_sid: str, request: RecordedRequest) -> Answer:
        to = (request.query.get("To") or [None])[-1]
        size = int((request.query.get("PageSize") or ["50"])[-1])
        with self._messages_lock:
            found = [
                message
                for message in reversed(self.messages)
                if message["account_sid"] == account_sid and (to is None or message["to"] == to)
            ][:size]
        uri = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        return Answer(
            200,
            {
                "messages": found,
                "page": 0,
                "page_size": size,
                "uri": uri,
                "first_page_uri": uri,
                "next_page_uri": None,
                "previous_page_uri": None,
                "start": 0,
                "end": max(len(found) - 1, 0),
            },
        )
