"""Braze REST fake: `POST /users/track` and `POST /users/delete`, with Braze's semantics.

State, by `external_id`: `users` (the custom and standard attributes each profile holds; an
attribute set to null is removed, `_update_existing_only` never creates a profile), `events`
and `purchases` (every accepted object, in order: Braze keeps duplicates). Tests count what
was applied by dedupe key: `event_counts[(external_id, name, key)]` with the key the event's
`properties.masivo_dedupe_id`, or `properties.metadata.masivo_dedupe_id` for eCommerce events;
`purchase_counts[(external_id, product_id, properties.masivo_dedupe_id)]`.

Answers as Braze gives them: 201 `{"message": "success", ...}` with an `errors` list of
`{"type", "input_array", "index"}` for refused objects; 400 when no object is valid, more than
75 objects are sent, or a delete names more than 50 ids or more than one kind; 401 for an
unknown key, 403 for a key without the endpoint's permission. `rate_limited` and
`server_error` build the throttled and failed answers for `script` and `answer_when`;
`block(external_id)` makes Braze refuse that id (its blocklisted-id error).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from tests.fakes.base import Answer, FakeServer, RecordedRequest

OBJECTS_PER_REQUEST = 75
IDS_PER_DELETE = 50
PERMISSIONS = ("users.track", "users.delete")
IDENTIFIERS = ("external_id", "user_alias", "braze_id", "email", "phone")
DELETE_KINDS = ("external_ids", "user_aliases", "braze_ids", "email_addresses", "phone_numbers")
NO_IDENTIFIER = "'external_id' or 'braze_id' or 'user_alias' is required"
BLOCKED = "provided external_id is blacklisted and disallowed"
NO_VALID_DATA = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."


class BrazeFake(FakeServer):
    name = "braze"

    def __init__(self):
        super().__init__()
        self.keys: dict[str, tuple[str, ...]] = {}
        self.blocked: set[str] = set()
        self.users: dict[str, dict[str, Any]] = {}
        self.events: list[dict] = []
        self.purchases: list[dict] = []
        self.deleted: list[str] = []
        self.event_counts: Counter[tuple] = Counter()
        self.purchase_counts: Counter[tuple] = Counter()
        self._state_lock = threading.Lock()

    def reset(self) -> None:
        super().reset()
        with self._state_lock:
            self.keys.clear()
            self.blocked.clear()
            self.users.clear()
            self.events.clear()
            self.purchases.clear()
            self.deleted.clear()
            self.event_counts.clear()
            self.purchase_counts.clear()

    def add_key(self, api_key: str, permissions: tuple[str, ...] = PERMISSIONS) -> str:
        self.keys[api_key] = tuple(permissions)
        return api_key

    def block(self, external_id: str) -> None:
        self.blocked.add(external_id)

    @property
    def tracks(self) -> list[RecordedRequest]:
        return self.requests_to("/users/track", method="POST")

    @property
    def deletes(self) -> list[RecordedRequest]:
        return self.requests_to("/users/delete", method="POST")

    # Error answers as Braze gives them ---------------------------------------------------------

    @staticmethod
    def rate_limited(reset_in: int = 30) -> Answer:
        """A 429 with the reset time as epoch seconds, `reset_in` seconds from now."""
        return Answer(
            429,
            {"message": "API rate limit exceeded"},
            {
                "X-RateLimit-Limit": "250000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time()) + reset_in),
            },
        )

    @staticmethod
    def server_error(status: int = 500) -> Answer:
        return Answer(status, {"message": "Internal Server Error"})

    # Behaviour ---------------------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> Answer:
        if request.method != "POST" or request.path not in ("/users/track", "/users/delete"):
            return Answer(404, {"message": f"no route for {request.method} {request.path}"})
        permission = "users.track" if request.path == "/users/track" else "users.delete"
        refusal = self._auth_refusal(request, permission)
        if refusal:
            return refusal
        if not isinstance(request.json, dict):
            return Answer(400, {"message": "Invalid JSON in request body"})
        if request.path == "/users/track":
            return self._track(request.json)
        return self._delete(request.json)

    def _auth_refusal(self, request: RecordedRequest, permission: str) -> Answer | None:
        header = request.header("authorization") or ""
        key = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if key not in self.keys:
            return Answer(401, {"message": "Invalid API key: " + (key[-4:] or "(none)")})
        if permission not in self.keys[key]:
            return Answer(
                403,
                {"message": f"The API key does not have the {permission} permission"},
            )
        return None

    def _track(self, body: dict) -> Answer:
        arrays = {name: body.get(name) or [] for name in ("attributes", "events", "purchases")}
        total = sum(len(objects) for objects in arrays.values())
        if total > OBJECTS_PER_REQUEST:
            return Answer(
                400,
                {"message": f"Too many objects: {total}, at most {OBJECTS_PER_REQUEST} a request"},
            )
        errors, valid = [], []
        for array, objects in arrays.items():
            for index, payload in enumerate(objects):
                reason = _refusal(array, payload, self.blocked)
                if reason:
                    errors.append({"type": reason, "input_array": array, "index": index})
                else:
                    valid.append((array, payload))
        if not valid:
            return Answer(400, {"message": NO_VALID_DATA, "errors": errors})
        with self._state_lock:
            for array, payload in valid:
                self._apply(array, payload)
        answer: dict[str, Any] = {"message": "success"}
        for array in arrays:
            processed = sum(1 for name, _ in valid if name == array)
            if processed:
                answer[f"{array}_processed"] = processed
        if errors:
            answer["errors"] = errors
        return Answer(201, answer)

    def _apply(self, array: str, payload: dict) -> None:
        external_id = payload["external_id"]
        if array == "attributes":
            if payload.get("_update_existing_only") and external_id not in self.users:
                return
            profile = self.users.setdefault(external_id, {})
            for name, value in payload.items():
                if name in ("external_id", "_update_existing_only"):
                    continue
                if value is None:
                    profile.pop(name, None)
                else:
                    profile[name] = value
            return
        self.users.setdefault(external_id, {})
        properties = payload.get("properties") or {}
        if array == "events":
            self.events.append(payload)
            key = properties.get("masivo_dedupe_id") or (properties.get("metadata") or {}).get(
                "masivo_dedupe_id"
            )
            self.event_counts[(external_id, payload["name"], key)] += 1
        else:
            self.purchases.append(payload)
            key = properties.get("masivo_dedupe_id")
            self.purchase_counts[(external_id, payload["product_id"], key)] += 1

    def _delete(self, body: dict) -> Answer:
        kinds = [kind for kind in DELETE_KINDS if kind in body]
        if len(kinds) != 1:
            return Answer(400, {"message": "Exactly one kind of identifier is required"})
        ids = body[kinds[0]]
        if not isinstance(ids, list) or len(ids) > IDS_PER_DELETE:
            return Answer(
                400, {"message": f"At most {IDS_PER_DELETE} identifiers can be deleted at once"}
            )
        deleted = 0
        with self._state_lock:
            for external_id in ids if kinds[0] == "external_ids" else []:
                self.deleted.append(external_id)
                if self.users.pop(external_id, None) is not None:
                    deleted += 1
        return Answer(201, {"deleted": deleted, "message": "success"})


def _refusal(array: str, payload, blocked: set[str]) -> str | None:
    if not isinstance(payload, dict):
        return f"{array} objects must be JSON objects"
    if not any(payload.get(name) for name in IDENTIFIERS):
        return NO_IDENTIFIER
    if not payload.get("external_id"):
        return "this fake keeps profiles by external_id only"
    if payload["external_id"] in blocked:
        return BLOCKED
    if array == "events" and not (payload.get("name") and payload.get("time")):
        return "events need a name and a time"
    if array == "purchases":
        missing = [f for f in ("product_id", "currency", "price", "time") if f not in payload]
        if missing:
            return f"purchases need {', '.join(missing)}"
    return None
