"""A minimal platform for the engine's tests: a real HTTP fake that keeps audiences as sets
and applies a (session, batch) once, and a connector that talks to it with `requests`. The
platform connectors have their own fakes (tests/fakes/); this one isolates the engine."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest
import requests

from destinations import connectors
from destinations.connectors.base import (
    AUDIENCES,
    DELETION,
    EVENTS,
    MEMBERSHIPS,
    PROFILES,
    REPLACE,
    BatchRejected,
    BatchResult,
    Connector,
    DestinationBroken,
    ForwardResult,
    RerunNeeded,
    RetryLater,
)
from tests.fakes.base import Answer, FakeServer


class PlatformFake(FakeServer):
    name = "platform"

    def __init__(self):
        super().__init__()
        self.audiences: dict[str, set[str]] = {}
        self.applied: set[tuple] = set()
        self.duplicates = 0
        self.applications: list[tuple[str, str]] = []  # (op, member) applied
        self.replacing: dict[str, set[str]] = {}
        self.fail_members: set[str] = set()
        self.on_request = None  # called with each request before it is applied
        self.forwarded: list[dict] = []  # items applied, once per dedupe id
        self.forward_duplicates = 0
        self.erased: list[str] = []
        self._state = threading.Lock()

    def reset(self) -> None:
        super().reset()
        self.audiences.clear()
        self.applied.clear()
        self.applications.clear()
        self.duplicates = 0
        self.forwarded.clear()
        self.forward_duplicates = 0
        self.erased.clear()

    def route(self, request):
        if self.on_request:
            self.on_request(request)
        parts = request.path.strip("/").split("/")
        if parts == ["forward"]:
            with self._state:
                seen = {item["dedupe_id"] for item in self.forwarded}
                for item in request.json["items"]:
                    if item["dedupe_id"] in seen:
                        self.forward_duplicates += 1
                    else:
                        self.forwarded.append(item)
            return Answer(200, {})
        if parts == ["erase"]:
            self.erased.extend(request.json["ids"])
            return Answer(200, {})
        if parts[:1] != ["audiences"] or len(parts) != 3:
            return super().route(request)
        audience, op, body = parts[1], parts[2], request.json
        key = (audience, body["session"], body["seq"], op)
        with self._state:
            if key in self.applied:
                self.duplicates += 1
                return Answer(200, {"failed": []})
            self.applied.add(key)
            held = self.audiences.setdefault(audience, set())
            failed = [m["customer_id"] for m in body["members"] if m["email"] in self.fail_members]
            good = [m for m in body["members"] if m["customer_id"] not in failed]
            for member in good:
                self.applications.append((op, member["email"]))
            if op == "add":
                held.update(m["email"] for m in good)
            elif op == "remove":
                held.difference_update(m["email"] for m in good)
            else:
                self.replacing.setdefault(audience, set()).update(m["email"] for m in good)
                if body["last"]:
                    self.audiences[audience] = self.replacing.pop(audience)
            return Answer(200, {"failed": failed})


class PlatformConnector(Connector):
    kind = "test"
    label = "Test platform"
    summary = "The engine tests' platform."
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {AUDIENCES, REPLACE, EVENTS, PROFILES, MEMBERSHIPS, DELETION}
    )
    platform = "meta"
    default_identifiers = ("email",)
    consent_purpose = "advertising"
    batch_size = 2
    url: ClassVar[str] = ""

    def _call(self, remote_id, op, members, session, last=False) -> BatchResult:
        body = {"session": session.session_id, "seq": session.batch_seq, "last": last,
                "members": [{"customer_id": m.customer_id, "email": m.identifiers.get("email")}
                            for m in members]}  # fmt: skip
        response = requests.post(f"{self.url}/audiences/{remote_id}/{op}", json=body, timeout=5)
        if response.status_code == 429:
            raise RetryLater("throttled", retry_after=1)
        if response.status_code == 401:
            raise DestinationBroken("token revoked")
        if response.status_code == 409:
            raise RerunNeeded("session timed out")
        if response.status_code >= 400:
            raise BatchRejected(f"refused: {response.status_code}")
        failed = response.json()["failed"]
        return BatchResult(failed={customer_id: "invalid" for customer_id in failed})

    def audience_create(self, name: str) -> str:
        return name.lower().replace(" ", "-")

    def members_add(self, remote_id, members, *, session):
        return self._call(remote_id, "add", members, session)

    def members_remove(self, remote_id, members, *, session):
        return self._call(remote_id, "remove", members, session)

    def replace_batch(self, remote_id, members, *, session, last):
        return self._call(remote_id, "replace", members, session, last)

    def _post(self, path, body):
        response = requests.post(f"{self.url}/{path}", json=body, timeout=5)
        if response.status_code == 429:
            raise RetryLater("throttled", retry_after=1)
        if response.status_code >= 400:
            raise BatchRejected(f"refused: {response.status_code}")

    def forward(self, items):
        self._post("forward", {"items": [
            {"dedupe_id": item.dedupe_id, "type": item.type, "kind": item.kind,
             "customer_id": item.customer_id,
             "email": (item.customer or {}).get("email"),
             "traits": (item.customer or {}).get("traits"),
             "event": (item.event or {}).get("name"),
             "audience": (item.audience or {}).get("name")} for item in items]})  # fmt: skip
        return ForwardResult(sent=len(items))

    def external_id_for(self, customer_id, external_id):
        return external_id or f"masivo-{customer_id}"

    def customers_erased(self, customers):
        self._post("erase", {"ids": [customer.remote_id for customer in customers]})


@pytest.fixture
def platform():
    fake = PlatformFake().start()
    PlatformConnector.url = fake.url
    connectors.CONNECTORS["test"] = PlatformConnector
    yield fake
    connectors.CONNECTORS.pop("test", None)
    fake.stop()
