"""GA4 Measurement Protocol fake: `POST /mp/collect` and `POST /debug/mp/collect`.

Point a connector at it with `config["base_url"] = fake.url`. Like Google, collection answers
204 whatever it is sent (it checks nothing, not even the API secret); the debug endpoint
answers 200 with `validationMessages` from the rules of PROVIDERS.md section 6 (required
client id, at most 25 events and 25 params, names, reserved names, value lengths). `collected`
holds the bodies `/mp/collect` received.
"""

from __future__ import annotations

import re

from tests.fakes.base import Answer, FakeServer, RecordedRequest

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
RESERVED_EVENTS = {"page_view", "session_start", "first_visit", "user_engagement", "click",
                   "error", "scroll", "app_remove", "first_open"}  # fmt: skip


class GA4Fake(FakeServer):
    name = "ga4"

    def __init__(self):
        super().__init__()
        self.collected: list[dict] = []

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.collected.clear()

    def collects(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == "/mp/collect"]

    @staticmethod
    def server_error(status: int = 500) -> Answer:
        return Answer(status, "Internal Server Error")

    @staticmethod
    def rate_limited(retry_after: int = 7) -> Answer:
        return Answer(429, "Too Many Requests", {"Retry-After": str(retry_after)})

    def route(self, request: RecordedRequest) -> Answer:
        if request.method != "POST":
            return Answer(405, None)
        if request.path == "/mp/collect":
            with self._lock:
                self.collected.append(request.json)
            return Answer(204, None)
        if request.path == "/debug/mp/collect":
            return Answer(200, {"validationMessages": validation_messages(request.json)})
        return super().route(request)


def validation_messages(body) -> list[dict]:
    if not isinstance(body, dict):
        return [_message("", "Unable to parse the payload.", "VALUE_INVALID")]
    messages = []
    if not body.get("client_id"):
        messages.append(
            _message("client_id", "Measurement requires a client_id.", "VALUE_REQUIRED")
        )
    events = body.get("events") or []
    if len(events) > 25:
        messages.append(
            _message("events", "A request may carry at most 25 events.", "EXCEEDED_MAX_ENTITIES")
        )
    for index, event in enumerate(events):
        name = str(event.get("name") or "")
        if not NAME.match(name):
            messages.append(
                _message(
                    f"events[{index}].name",
                    f"Event at index: [{index}] has invalid name [{name}]. Only alphanumeric "
                    "characters and underscores are allowed.",
                    "NAME_INVALID",
                )
            )
        elif name in RESERVED_EVENTS:
            messages.append(
                _message(
                    f"events[{index}].name",
                    f"Event at index: [{index}] has name [{name}] which is reserved.",
                    "NAME_RESERVED",
                )
            )
        params = event.get("params") or {}
        if len(params) > 25:
            messages.append(
                _message(
                    f"events[{index}].params",
                    "An event may carry at most 25 params.",
                    "EXCEEDED_MAX_ENTITIES",
                )
            )
        for key, value in params.items():
            if isinstance(value, str) and len(value) > 100:
                messages.append(
                    _message(
                        f"events[{index}].params.{key}",
                        f"Value of param [{key}] is too long.",
                        "VALUE_OUT_OF_BOUNDS",
                    )
                )
    return messages


def _message(field_path: str, description: str, code: str) -> dict:
    return {"fieldPath": field_path, "description": description, "validationCode": code}
