"""SendGrid v3 fake: `POST /v3/mail/send` and `GET /v3/scopes` (what "test connection" calls).

Point the real SDK at it with `SendGridAPIClient(api_key=..., host=fake.url)`. Keys are known
through `fake.add_key(key, scopes)`; an unknown key gets SendGrid's 401. `rate_limited`,
`server_error` and `bad_request` build the provider's error answers for `script` and
`answer_when`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter

from tests.fakes.base import Answer, FakeServer, RecordedRequest

MAIL_SEND_SCOPES = ["mail.send", "user.profile.read"]


class SendGridFake(FakeServer):
    name = "sendgrid"

    def __init__(self):
        super().__init__()
        self.keys: dict[str, list[str]] = {}
        self._message_ids = itertools.count(1)
        # Accepted (202) personalizations per `custom_args.masivo_dedupe_key`: what the send
        # pipeline's tests count deliveries by.
        self.delivered_keys: Counter[str] = Counter()
        self._delivered_lock = threading.Lock()

    def reset(self) -> None:
        super().reset()
        self.keys.clear()
        with self._delivered_lock:
            self.delivered_keys.clear()

    def add_key(self, api_key: str, scopes: list[str] | None = None) -> str:
        self.keys[api_key] = list(MAIL_SEND_SCOPES if scopes is None else scopes)
        return api_key

    @property
    def mail_sends(self) -> list[RecordedRequest]:
        return self.requests_to("/v3/mail/send", method="POST")

    # Error answers as SendGrid gives them ------------------------------------------------------

    @staticmethod
    def rate_limited(retry_after: int = 5) -> Answer:
        reset = str(int(time.time()) + retry_after)
        return Answer(
            429,
            {"errors": [{"field": None, "message": "too many requests"}]},
            {
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset,
                "Retry-After": str(retry_after),
            },
        )

    @staticmethod
    def server_error(status: int = 500) -> Answer:
        return Answer(status, {"errors": [{"field": None, "message": "internal error"}]})

    @staticmethod
    def bad_request(message: str, field: str | None = None) -> Answer:
        return Answer(400, {"errors": [{"field": field, "message": message, "help": None}]})

    @staticmethod
    def unauthorized() -> Answer:
        return Answer(
            401,
            {"errors": [{"field": None, "message": "The provided authorization grant is invalid"}]},
        )

    # Behaviour ---------------------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> Answer:
        scopes = self._scopes_of(request)
        if scopes is None:
            return self.unauthorized()
        if request.method == "GET" and request.path == "/v3/scopes":
            return Answer(200, {"scopes": scopes})
        if request.method == "POST" and request.path == "/v3/mail/send":
            if "mail.send" not in scopes:
                return Answer(403, {"errors": [{"field": None, "message": "access forbidden"}]})
            return self._mail_send(request)
        return super().route(request)

    def _scopes_of(self, request: RecordedRequest) -> list[str] | None:
        authorization = request.header("Authorization") or ""
        return self.keys.get(authorization.removeprefix("Bearer "))

    def _mail_send(self, request: RecordedRequest) -> Answer:
        body = request.json
        if not isinstance(body, dict):
            return self.bad_request("Bad Request", None)
        personalizations = body.get("personalizations")
        if not personalizations:
            return self.bad_request(
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        if len(personalizations) > 1000:
            return self.bad_request(
                "The personalizations field must have 1000 or fewer items.", "personalizations"
            )
        if not (body.get("from") or {}).get("email"):
            return self.bad_request(
                "The from object must be provided for every email send.", "from"
            )
        message_id = f"fake-{next(self._message_ids):08d}"
        with self._delivered_lock:
            for personalization in personalizations:
                key = (personalization.get("custom_args") or {}).get("masivo_dedupe_key")
                if key:
                    self.delivered_keys[key] += 1
        return Answer(202, None, {"X-Message-Id": message_id})
