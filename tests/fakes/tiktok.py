"""TikTok Marketing API v1.3 fake: audiences (`/segment/audience/`, `/segment/mapping/`), the
Events API (`/event/track/`) and the harmless reads the connectors test with
(`/advertiser/info/`, `/user/info/`).

Point a connector at it with `config["base_url"] = fake.base_url`. Tokens are known through
`fake.add_token(token, advertiser_ids)`; any other token gets TikTok's 40105. Like TikTok it
answers HTTP 200 with `{"code": 0}` on success and a non-zero `code` on errors; `error`,
`rate_limited` and `server_error` build those answers for `script` and `answer_when`. It keeps
each audience's members (by id type and hash) so tests can read what TikTok would hold.
"""

from __future__ import annotations

import itertools
import json

from tests.fakes.base import Answer, FakeServer, RecordedRequest

PREFIX = "/open_api/v1.3"
KNOWN_ID_TYPES = {"EMAIL_SHA256", "PHONE_SHA256", "IDFA_SHA256", "GAID_SHA256", "AAID_SHA256",
                  "EXTERNAL_ID_SHA256"}  # fmt: skip
EVENT_SOURCES = {"web", "app", "offline", "crm"}


class TikTokFake(FakeServer):
    name = "tiktok"

    def __init__(self):
        super().__init__()
        self.tokens: dict[str, set[str]] = {}
        self.audiences: dict[str, dict] = {}
        self.members: dict[str, set[tuple[str, str]]] = {}
        self.events: list[dict] = []
        self._audience_ids = itertools.count(7_000_001)
        self._request_ids = itertools.count(1)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.tokens.clear()
            self.audiences.clear()
            self.members.clear()
            self.events.clear()

    @property
    def base_url(self) -> str:
        return f"{self.url}{PREFIX}"

    def add_token(self, token: str, advertiser_ids: list[str] = ()) -> str:
        self.tokens[token] = set(advertiser_ids)
        return token

    def mappings(self) -> list[RecordedRequest]:
        return self.requests_to(f"{PREFIX}/segment/mapping/", method="POST")

    # Answers as TikTok gives them ---------------------------------------------------------------

    def _ok(self, data: dict | None = None) -> Answer:
        return Answer(200, {"code": 0, "message": "OK", "request_id": self._request_id(),
                            "data": data or {}})  # fmt: skip

    def _request_id(self) -> str:
        return f"2026120117300{next(self._request_ids):04d}"

    @staticmethod
    def error(code: int, message: str, status: int = 200) -> Answer:
        return Answer(status, {"code": code, "message": message, "request_id": "fake", "data": {}})

    @classmethod
    def rate_limited(cls) -> Answer:
        return cls.error(40100, "Too many requests. Please retry in some time.")

    @classmethod
    def invalid_token(cls) -> Answer:
        return cls.error(40105, "The access token is invalid or has been revoked.")

    @staticmethod
    def server_error(status: int = 500) -> Answer:
        return Answer(status, "<html><body>Internal Server Error</body></html>")

    # Behaviour ----------------------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> Answer:
        advertisers = self.tokens.get(request.header("Access-Token") or "")
        if advertisers is None:
            return self.invalid_token()
        path = request.path.removeprefix(PREFIX)
        routes = {
            ("GET", "/advertiser/info/"): self._advertiser_info,
            ("GET", "/user/info/"): self._user_info,
            ("POST", "/segment/audience/"): self._audience_create,
            ("POST", "/segment/mapping/"): self._mapping,
            ("POST", "/event/track/"): self._event_track,
        }
        handler = routes.get((request.method, path))
        if handler is None:
            return Answer(404, {"code": 40400, "message": f"no route {path}"})
        return handler(request, advertisers)

    def _advertiser_info(self, request: RecordedRequest, advertisers: set[str]) -> Answer:
        try:
            wanted = json.loads(request.query.get("advertiser_ids", ["[]"])[0])
        except ValueError:
            return self.error(40002, "advertiser_ids: invalid JSON")
        if not set(wanted) <= advertisers:
            return self.error(40001, "No permission to operate advertiser")
        listed = [{"advertiser_id": a, "name": f"Advertiser {a}"} for a in wanted]
        return self._ok({"list": listed})

    def _user_info(self, request: RecordedRequest, advertisers: set[str]) -> Answer:
        return self._ok({"core_user_id": "6800000000000000001", "display_name": "Acme Ads"})

    def _audience_create(self, request: RecordedRequest, advertisers: set[str]) -> Answer:
        body = request.json or {}
        if body.get("advertiser_id") not in advertisers:
            return self.error(40001, "No permission to operate advertiser")
        if body.get("action") != "create" or not body.get("custom_audience_name"):
            return self.error(40002, "action and custom_audience_name are required")
        if body.get("id_type") not in KNOWN_ID_TYPES:
            return self.error(40002, f"id_type: invalid value {body.get('id_type')}")
        audience_id = str(next(self._audience_ids))
        with self._lock:
            self.audiences[audience_id] = body
            self.members[audience_id] = set()
        return self._ok({"audience_id": audience_id})

    def _mapping(self, request: RecordedRequest, advertisers: set[str]) -> Answer:
        body = request.json or {}
        if not set(body.get("advertiser_ids") or ()) <= advertisers:
            return self.error(40001, "No permission to operate advertiser")
        schema = body.get("id_schema") or []
        if body.get("action") not in ("add", "delete") or not schema:
            return self.error(40002, "action and id_schema are required")
        if unknown := [name for name in schema if name not in KNOWN_ID_TYPES]:
            return self.error(40002, f"id_schema: invalid value {unknown[0]}")
        for user in body.get("batch_data") or []:
            if len(user) != len(schema):
                return self.error(40002, "batch_data: each user must match id_schema")
        with self._lock:
            for user in body["batch_data"]:
                for id_type, entry in zip(schema, user, strict=True):
                    for audience_id in entry.get("audience_ids") or ():
                        held = self.members.setdefault(audience_id, set())
                        if body["action"] == "add":
                            held.add((id_type, entry["id"]))
                        else:
                            held.discard((id_type, entry["id"]))
        return self._ok()

    def _event_track(self, request: RecordedRequest, advertisers: set[str]) -> Answer:
        body = request.json or {}
        if body.get("event_source") not in EVENT_SOURCES or not body.get("event_source_id"):
            return self.error(40002, "event_source and event_source_id are required")
        data = body.get("data")
        if not isinstance(data, list) or not data:
            return self.error(40002, "data: must not be empty")
        if any(not entry.get("event") or not entry.get("event_time") for entry in data):
            return self.error(40002, "data: event and event_time are required")
        with self._lock:
            self.events.extend(data)
        return self._ok()
