"""A webhook receiver that does what a careful one does: verify the Standard Webhooks
signature (standardwebhooks, with the secrets it was given), and apply each webhook-id once.

`applied` holds the payload of each webhook-id applied (in order of first arrival), `seen`
how many times each arrived; a request whose signature does not verify is answered 401 and
applied nothing. Scripted answers (`script`, `answer_when`) come first, as in every fake: a
scripted 500 is a delivery the receiver did not take.
"""

from __future__ import annotations

from collections import Counter

from standardwebhooks import Webhook, WebhookVerificationError

from tests.fakes.base import Answer, FakeServer, RecordedRequest


class WebhookReceiver(FakeServer):
    name = "webhook-receiver"

    def __init__(self):
        super().__init__()
        self.secrets: list[str] = []
        self.applied: dict[str, dict] = {}
        self.seen: Counter[str] = Counter()
        self.rejected: list[RecordedRequest] = []

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.secrets = []
            self.applied = {}
            self.seen = Counter()
            self.rejected = []

    def trust(self, *secrets: str) -> None:
        self.secrets = list(secrets)

    def route(self, request: RecordedRequest) -> Answer:
        payload = self.verified(request)
        if payload is None:
            with self._lock:
                self.rejected.append(request)
            return Answer(401, {"error": "bad signature"})
        webhook_id = request.header("webhook-id")
        with self._lock:
            self.seen[webhook_id] += 1
            self.applied.setdefault(webhook_id, payload)
        return Answer(200, {"ok": True})

    def verified(self, request: RecordedRequest) -> dict | None:
        """The payload if any trusted secret verifies the request (as a receiver would)."""
        for secret in self.secrets:
            try:
                return Webhook(secret).verify(request.body, request.headers)
            except (WebhookVerificationError, ValueError):
                continue
        return None

    @staticmethod
    def signature_verifies(request: RecordedRequest, secret: str, signature: str) -> bool:
        """Whether one of the space-separated signatures, alone, verifies with `secret`."""
        headers = dict(request.headers) | {"webhook-signature": signature}
        try:
            Webhook(secret).verify(request.body, headers)
        except (WebhookVerificationError, ValueError):
            return False
        return True
