"""Meta Graph API fake: ad accounts, customer-list custom audiences and the Conversions API.

Point facebook-business at it through the session's `GRAPH` (the connectors read
`settings.MASIVO_META_GRAPH_URL`; the `meta_fake` fixture below sets it). Tokens are known
through `fake.add_token(token, app_secret)`: an unknown one gets Graph's OAuth error 190, and a
token registered with an app secret needs the matching `appsecret_proof`.

What it models, as Graph does it:
- an audience is a set of rows, each row the (schema key, value) pairs of one entry whose value
  is not "" (`fake.rows(audience_id)`); `POST /vXX/{audience}/users` adds, `DELETE` (params in
  the query string, as the SDK sends them) removes;
- `POST /vXX/{audience}/usersreplace` runs replace sessions: batch_seq 1 opens one, one at a
  time per audience, `last_batch_flag` makes the audience exactly the session's rows, a session
  older than `REPLACE_SESSION_SECONDS` times out (2650/1870158), and adds, removes or another
  session meanwhile get 2650/1870145;
- a batch sent again with the same (session_id, batch_seq) is applied once and counted in
  `duplicates` (so a test of distinct batches asserts it stays 0);
- hashed keys must be 64 lower-case hex or "": other values are refused per entry and reported
  in `num_invalid_entries` / `invalid_entry_samples` ({value: reason});
- `POST /vXX/{pixel}/events` parses `data` twice (a JSON array of JSON strings), refuses more
  than 1,000 events or any older than 7 days with a Graph error for the whole request, and
  counts a repeated (event_name, event_id) of a pixel in `event_duplicates`.
Errors are Graph's JSON `error` with HTTP 400 (as Meta answers throttling too); `throttled`,
`update_in_progress`, `session_timed_out`, `invalid_token` and `server_error` build them for
`script` / `answer_when`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fakes.base import Answer, FakeServer, RecordedRequest

MAX_ROWS = 10_000
MAX_EVENTS = 1_000
MAX_EVENT_AGE_SECONDS = 7 * 24 * 3600
REPLACE_SESSION_SECONDS = 90 * 60
HASHED_KEYS = frozenset({"EMAIL", "PHONE", "FN", "LN", "COUNTRY", "CT", "ST", "ZIP", "GEN"})
SCHEMA_KEYS = HASHED_KEYS | {"EXTERN_ID", "MADID", "DOBY", "DOBM", "DOBD", "FI", "PAGEUID"}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PATH = re.compile(r"^/(v[0-9]+\.[0-9]+)/(.+)$")

Row = tuple[tuple[str, str], ...]


@dataclass
class FakeAudience:
    account_id: str
    name: str
    params: dict[str, Any]
    rows: set[Row] = field(default_factory=set)


@dataclass
class ReplaceSession:
    session_id: int
    started_at: float
    rows: set[Row] = field(default_factory=set)
    is_closed: bool = False


class MetaFake(FakeServer):
    name = "meta"

    def __init__(self):
        super().__init__()
        self.now = time.time
        self._ids = itertools.count(23850000000000001)
        self._clear()

    def _clear(self) -> None:
        self.tokens: dict[str, str | None] = {}
        self.accounts: dict[str, str] = {}
        self.pixels: dict[str, str] = {}
        self.audiences: dict[str, FakeAudience] = {}
        self.replace_sessions: dict[str, ReplaceSession] = {}
        self._batches_seen: set[tuple[str, int, int]] = set()
        self.duplicates = 0
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.event_keys: Counter[tuple[str, str, str]] = Counter()
        self.event_duplicates = 0

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.now = time.time
            self._clear()

    # Setup and reading -------------------------------------------------------------------------

    def add_token(self, token: str, app_secret: str | None = None) -> str:
        self.tokens[token] = app_secret
        return token

    def add_account(self, account_id: str, name: str = "Acme Ads") -> str:
        self.accounts[account_id] = name
        return account_id

    def add_pixel(self, pixel_id: str, name: str = "Acme Pixel") -> str:
        self.pixels[pixel_id] = name
        return pixel_id

    def add_audience(self, account_id: str, name: str = "Audience", rows=()) -> str:
        audience_id = str(next(self._ids))
        self.audiences[audience_id] = FakeAudience(account_id, name, {}, set(rows))
        return audience_id

    def rows(self, audience_id: str) -> set[Row]:
        return set(self.audiences[audience_id].rows)

    def values(self, audience_id: str, key: str) -> set[str]:
        """Every value of one schema key in the audience ({"EMAIL": …} rows → their hashes)."""
        return {value for row in self.audiences[audience_id].rows for k, value in row if k == key}

    def expire_replace_session(self, audience_id: str) -> None:
        self.replace_sessions[audience_id].started_at -= REPLACE_SESSION_SECONDS + 1

    def uploads(self, edge: str = "users") -> list[tuple[str, dict, dict]]:
        """(method, payload, session) of every request to `/{audience}/{edge}`, in order."""
        found = []
        for request in self.requests_to(f"/{edge}"):
            if not request.path.endswith(f"/{edge}"):
                continue
            params = graph_params(request)
            found.append(
                (
                    request.method,
                    json.loads(params.get("payload", "null")),
                    json.loads(params.get("session", "null")),
                )
            )
        return found

    # Graph's error answers ---------------------------------------------------------------------

    @staticmethod
    def graph_error(
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        status: int = 400,
        type: str = "OAuthException",
        is_transient: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        error = {
            "message": message,
            "type": type,
            "code": code,
            "is_transient": is_transient,
            "fbtrace_id": "AbCdEfGhIjK",
        }
        if subcode is not None:
            error["error_subcode"] = subcode
        return Answer(status, {"error": error}, headers or {})

    @classmethod
    def throttled(cls, code: int = 80003, regain_minutes: int | None = None) -> Answer:
        headers = {}
        if regain_minutes is not None:
            usage = {"1234": [{"type": "custom_audience", "call_count": 100,
                               "total_cputime": 20, "total_time": 30,
                               "estimated_time_to_regain_access": regain_minutes}]}  # fmt: skip
            headers["X-Business-Use-Case-Usage"] = json.dumps(usage)
        return cls.graph_error(
            code,
            "There have been too many calls from this ad-account. Wait a bit and try again.",
            subcode=2446079 if code == 80003 else None,
            is_transient=True,
            headers=headers,
        )

    @classmethod
    def update_in_progress(cls) -> Answer:
        return cls.graph_error(
            2650,
            "Failed to update the custom audience: another update is in progress",
            subcode=1870145,
        )

    @classmethod
    def session_timed_out(cls) -> Answer:
        return cls.graph_error(
            2650, "Failed to update the custom audience: the session timed out", subcode=1870158
        )

    @classmethod
    def invalid_token(cls) -> Answer:
        return cls.graph_error(
            190, "Invalid OAuth access token - Cannot parse access token", status=400
        )

    @classmethod
    def server_error(cls, status: int = 500) -> Answer:
        return cls.graph_error(
            2, "An unexpected error has occurred. Please retry your request later.",
            status=status, is_transient=True,
        )  # fmt: skip

    @classmethod
    def invalid_parameter(cls, message: str, subcode: int | None = None) -> Answer:
        return cls.graph_error(
            100, f"(#100) {message}", subcode=subcode, type="GraphMethodException"
        )

    # Behaviour ---------------------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> Answer:
        params = graph_params(request)
        refusal = self._refuse_credentials(params)
        if refusal:
            return refusal
        match = _PATH.match(request.path)
        if not match:
            return self.invalid_parameter("Unknown path components")
        parts = match.group(2).split("/")
        with self._lock:
            return self._route(request.method, parts, params)

    def _route(self, method: str, parts: list[str], params: dict[str, str]) -> Answer:
        node = parts[0]
        edge = parts[1] if len(parts) > 1 else None
        if node.startswith("act_") and node[4:] in self.accounts:
            if method == "GET" and edge is None:
                return Answer(200, {"name": self.accounts[node[4:]], "id": node})
            if method == "POST" and edge == "customaudiences":
                return self._audience_create(node[4:], params)
        if node in self.audiences:
            if edge == "users" and method in ("POST", "DELETE"):
                return self._users(node, params, is_removal=method == "DELETE")
            if edge == "usersreplace" and method == "POST":
                return self._users_replace(node, params)
        if node in self.pixels:
            if method == "GET" and edge is None:
                return Answer(200, {"name": self.pixels[node], "id": node})
            if method == "POST" and edge == "events":
                return self._events(node, params)
        return self.graph_error(
            100,
            f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation.",
            subcode=33,
            type="GraphMethodException",
        )

    def _refuse_credentials(self, params: dict[str, str]) -> Answer | None:
        token = params.get("access_token", "")
        if token not in self.tokens:
            return self.invalid_token()
        secret = self.tokens[token]
        if secret is not None:
            proof = hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if params.get("appsecret_proof") != proof:
                return self.invalid_parameter(
                    "Invalid appsecret_proof provided in the API argument"
                )
        return None

    def _audience_create(self, account_id: str, params: dict[str, str]) -> Answer:
        if params.get("subtype") != "CUSTOM" or not params.get("customer_file_source"):
            return self.invalid_parameter("customer_file_source is required for a customer list")
        if not params.get("name"):
            return self.invalid_parameter("The parameter name is required")
        audience_id = str(next(self._ids))
        self.audiences[audience_id] = FakeAudience(account_id, params["name"], dict(params))
        return Answer(200, {"id": audience_id})

    def _users(self, audience_id: str, params: dict[str, str], *, is_removal: bool) -> Answer:
        parsed = self._parse_upload(params, needs_session=False)
        if isinstance(parsed, Answer):
            return parsed
        rows, invalid, session = parsed
        if self._open_session(audience_id) is not None:
            return self.update_in_progress()
        answer = self._upload_answer(audience_id, session, len(rows) + len(invalid), invalid)
        if self._is_duplicate(audience_id, session):
            return answer
        audience = self.audiences[audience_id]
        if is_removal:
            audience.rows.difference_update(rows)
        else:
            audience.rows.update(rows)
        return answer

    def _users_replace(self, audience_id: str, params: dict[str, str]) -> Answer:
        parsed = self._parse_upload(params, needs_session=True)
        if isinstance(parsed, Answer):
            return parsed
        rows, invalid, session = parsed
        session_id, batch_seq = session["session_id"], session["batch_seq"]
        current = self.replace_sessions.get(audience_id)
        if current is not None and current.session_id == session_id:
            if not current.is_closed and self._has_expired(current):
                return self.session_timed_out()
        elif self._open_session(audience_id) is not None:
            return self.update_in_progress()
        elif batch_seq != 1:
            return self.invalid_parameter("A replace session starts with batch_seq 1")
        else:
            current = ReplaceSession(session_id, self.now())
            self.replace_sessions[audience_id] = current
        answer = self._upload_answer(audience_id, session, len(rows) + len(invalid), invalid)
        if self._is_duplicate(audience_id, session):
            return answer
        if current.is_closed:
            return self.invalid_parameter("The replace session has already ended")
        current.rows.update(rows)
        if session.get("last_batch_flag"):
            self.audiences[audience_id].rows = set(current.rows)
            current.is_closed = True
        return answer

    def _parse_upload(self, params: dict[str, str], *, needs_session: bool):
        try:
            payload = json.loads(params["payload"])
            session = json.loads(params["session"]) if "session" in params else None
        except KeyError:
            return self.invalid_parameter("Missing required parameter: payload")
        except ValueError:
            return self.invalid_parameter("Param payload must be JSON")
        schema, data = payload.get("schema"), payload.get("data")
        if isinstance(schema, str):
            schema = [schema]
        if (
            not isinstance(schema, list)
            or not set(schema) <= SCHEMA_KEYS
            or not isinstance(data, list)
            or not all(isinstance(row, list) and len(row) == len(schema) for row in data)
        ):
            return self.invalid_parameter("Data is missing or does not match schema")
        if len(data) > MAX_ROWS:
            return self.invalid_parameter(f"Too many entries in the payload: at most {MAX_ROWS}")
        if needs_session and not isinstance(session, dict):
            return self.invalid_parameter("Missing required parameter: session")
        rows, invalid = [], {}
        for values in data:
            pairs = tuple(
                (key, str(value)) for key, value in zip(schema, values, strict=True) if value != ""
            )
            bad = [value for key, value in pairs if key in HASHED_KEYS and not _HEX64.match(value)]
            if bad or not pairs:
                invalid[bad[0] if bad else ""] = "Invalid hash: expected SHA-256 (64 hex)"
            else:
                rows.append(pairs)
        return rows, invalid, session

    def _upload_answer(self, audience_id, session, received: int, invalid: dict) -> Answer:
        return Answer(
            200,
            {
                "audience_id": audience_id,
                "session_id": str((session or {}).get("session_id", next(self._ids))),
                "num_received": received,
                "num_invalid_entries": len(invalid),
                "invalid_entry_samples": invalid,
            },
        )

    def _is_duplicate(self, audience_id: str, session: dict | None) -> bool:
        if not session:
            return False
        key = (audience_id, int(session["session_id"]), int(session["batch_seq"]))
        if key in self._batches_seen:
            self.duplicates += 1
            return True
        self._batches_seen.add(key)
        return False

    def _open_session(self, audience_id: str) -> ReplaceSession | None:
        current = self.replace_sessions.get(audience_id)
        if current is None or current.is_closed or self._has_expired(current):
            return None
        return current

    def _has_expired(self, session: ReplaceSession) -> bool:
        return self.now() - session.started_at > REPLACE_SESSION_SECONDS

    def _events(self, pixel_id: str, params: dict[str, str]) -> Answer:
        try:
            events = [
                json.loads(item) if isinstance(item, str) else item
                for item in json.loads(params["data"])
            ]
        except (KeyError, ValueError, TypeError):
            return self.invalid_parameter("Param data must be an array of events")
        if len(events) > MAX_EVENTS:
            return self.invalid_parameter(f"Param data must be an array of at most {MAX_EVENTS}")
        now = self.now()
        for event in events:
            if not isinstance(event, dict) or not event.get("event_name"):
                return self.invalid_parameter("The parameter event_name is required")
            if now - int(event.get("event_time", 0)) > MAX_EVENT_AGE_SECONDS:
                return self.invalid_parameter(
                    "Invalid parameter: event_time is more than 7 days in the past",
                    subcode=2804003,
                )
            if event.get("action_source") == "website" and not (event.get("user_data") or {}).get(
                "client_user_agent"
            ):
                return self.invalid_parameter("client_user_agent is required for website events")
        for event in events:
            key = (pixel_id, event["event_name"], str(event.get("event_id", "")))
            if event.get("event_id") and self.event_keys[key]:
                self.event_duplicates += 1
            self.event_keys[key] += 1
            stored = {**event, "test_event_code": params.get("test_event_code")}
            self.events.setdefault(pixel_id, []).append(stored)
        return Answer(
            200, {"events_received": len(events), "messages": [], "fbtrace_id": "AbCdEfGhIjK"}
        )


def graph_params(request: RecordedRequest) -> dict[str, str]:
    """The request's parameters: the query string (where the SDK puts the token, the proof,
    and everything of a GET or DELETE) with the form body over it."""
    params = {name: values[0] for name, values in request.query.items()}
    params.update({name: values[0] for name, values in (request.form or {}).items()})
    return params


@pytest.fixture(scope="session")
def meta_server():
    fake = MetaFake().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def meta_fake(meta_server, settings):
    meta_server.reset()
    settings.MASIVO_META_GRAPH_URL = meta_server.url
    return meta_server
