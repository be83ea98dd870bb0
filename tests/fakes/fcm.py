"""Firebase Cloud Messaging fake: Google's OAuth token endpoint, HTTP v1 `messages:send` (what
`send` and `send_each` call, one request a message), the v1 topic subscriptions that
`subscribe_to_topic` / `unsubscribe_from_topic` use in firebase-admin 7.7, and the legacy
Instance ID `iid/v1:batchAdd` / `batchRemove`.

`fake.service_account(project_id)` makes a service-account JSON whose RSA key the token
endpoint knows; the token endpoint verifies the signed JWT the SDK sends, so a key it does not
know (`registered=False`) is refused as Google does (`invalid_grant`). Sends need a token it
issued. Targets (`fid`, the deprecated `token`) in `fake.unregistered_tokens` get
UNREGISTERED; `quota_exceeded`, `server_error` and `invalid_token` build the other answers.

Mind that firebase-admin retries by itself (urllib3's Retry, 4 times): on 500 and 503, and on
429 when it carries Retry-After, sleeping that long. Script as many answers as it will try.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from collections import Counter
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.base import Answer, FakeServer, RecordedRequest

SEND = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
SUBSCRIPTION = re.compile(
    r"^/v1/projects/([^/]+)/registrations/([^/]+)/topicSubscriptions(?:/(.+))?$"
)
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


@lru_cache(maxsize=4)
def _rsa_key(slot: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _is_api_call(request: RecordedRequest) -> bool:
    return request.path != "/token"


class FcmFake(FakeServer):
    name = "fcm"

    def __init__(self):
        super().__init__()
        self.public_keys: dict[str, rsa.RSAPublicKey] = {}
        self.issued_tokens: set[str] = set()
        self.unregistered_tokens: set[str] = set()
        self.topics: dict[str, set[str]] = {}
        self._counter = itertools.count(1)
        self._state_lock = threading.Lock()
        # Accepted sends per (data.masivo_dedupe_key, target token): the send pipeline's
        # tests count deliveries by it.
        self.delivered_keys: Counter[tuple[str, str]] = Counter()

    def reset(self) -> None:
        super().reset()
        self.public_keys.clear()
        self.issued_tokens.clear()
        self.unregistered_tokens.clear()
        self.topics.clear()
        with self._state_lock:
            self.delivered_keys.clear()

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def service_account(self, project_id: str = "demo-project", *, registered: bool = True) -> dict:
        key = _rsa_key(0 if registered else 1)
        client_email = f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com"
        if registered:
            self.public_keys[client_email] = key.public_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": pem,
            "client_email": client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
        }

    def script(self, *answers: Answer, when=None) -> None:
        """As FakeServer.script, but by default for API calls only, never the token endpoint."""
        super().script(*answers, when=when or _is_api_call)

    @property
    def sends(self) -> list[RecordedRequest]:
        return [r for r in self.requests if SEND.match(r.path)]

    # Error answers as FCM gives them -----------------------------------------------------------

    @staticmethod
    def error(status: int, grpc_status: str, message: str, fcm_code: str | None = None,
              headers: dict | None = None) -> Answer:  # fmt: skip
        details = [{"@type": FCM_ERROR, "errorCode": fcm_code}] if fcm_code else []
        body = {"error": {"code": status, "message": message, "status": grpc_status}}
        if details:
            body["error"]["details"] = details
        return Answer(status, body, headers or {})

    @classmethod
    def unregistered(cls) -> Answer:
        return cls.error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")

    @classmethod
    def quota_exceeded(cls, retry_after: int = 10) -> Answer:
        return cls.error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Send requests'.",
            "QUOTA_EXCEEDED",
            {"Retry-After": str(retry_after)},
        )

    @classmethod
    def server_error(cls, status: int = 500) -> Answer:
        grpc = {503: "UNAVAILABLE"}.get(status, "INTERNAL")
        return cls.error(status, grpc, "Internal error encountered.", "INTERNAL")

    @classmethod
    def invalid_token(cls) -> Answer:
        return cls.error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            "INVALID_ARGUMENT",
        )

    # Behaviour ---------------------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> Answer:
        if request.path == "/token" and request.method == "POST":
            return self._token(request)
        if not self._is_authorized(request):
            return self.error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            )
        if match := SEND.match(request.path):
            return self._send(match.group(1), request)
        if match := SUBSCRIPTION.match(request.path):
            return self._subscription(request, match.group(2), match.group(3))
        if request.path in {"/iid/v1:batchAdd", "/iid/v1:batchRemove"}:
            return self._iid_batch(request, is_add=request.path.endswith("batchAdd"))
        return super().route(request)

    def _token(self, request: RecordedRequest) -> Answer:
        form = {name: values[-1] for name, values in (request.form or {}).items()}
        assertion = form.get("assertion", "")
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Answer(400, {"error": "unsupported_grant_type"})
        try:
            header, payload, signature = assertion.split(".")
            claims = json.loads(_b64url_decode(payload))
            public_key = self.public_keys[claims["iss"]]
            public_key.verify(
                _b64url_decode(signature),
                f"{header}.{payload}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, KeyError, InvalidSignature):
            return Answer(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            )
        token = f"ya29.fake-{next(self._counter)}"
        with self._state_lock:
            self.issued_tokens.add(token)
        return Answer(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _is_authorized(self, request: RecordedRequest) -> bool:
        token = (request.header("Authorization") or "").removeprefix("Bearer ")
        with self._state_lock:
            return token in self.issued_tokens

    def _send(self, project_id: str, request: RecordedRequest) -> Answer:
        message = (request.json or {}).get("message")
        targets = [
            name for name in ("fid", "token", "topic", "condition") if (message or {}).get(name)
        ]
        if len(targets) != 1:
            return Answer(
                400,
                {
                    "error": {
                        "code": 400,
                        "message": "Invalid value at 'message' (oneof target)",
                        "status": "INVALID_ARGUMENT",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.rpc.BadRequest",
                                "fieldViolations": [
                                    {"field": "message", "description": "exactly one target"}
                                ],
                            }
                        ],
                    }
                },
            )
        target = message.get("fid") or message.get("token")
        if target in self.unregistered_tokens:
            return self.unregistered()
        key = (message.get("data") or {}).get("masivo_dedupe_key")
        if key and not (request.json or {}).get("validate_only"):
            with self._state_lock:
                self.delivered_keys[(key, target)] += 1
        return Answer(200, {"name": f"projects/{project_id}/messages/{next(self._counter)}"})

    def _subscription(self, request: RecordedRequest, token: str, topic: str | None) -> Answer:
        if token in self.unregistered_tokens:
            return self.unregistered()
        with self._state_lock:
            if request.method == "POST":
                name = (request.query.get("topic_name") or [""])[-1]
                self.topics.setdefault(name, set()).add(token)
            elif request.method == "DELETE" and topic:
                self.topics.get(topic, set()).discard(token)
        return Answer(200, {})

    def _iid_batch(self, request: RecordedRequest, *, is_add: bool) -> Answer:
        body = request.json or {}
        topic = str(body.get("to", "")).removeprefix("/topics/")
        results = []
        with self._state_lock:
            members = self.topics.setdefault(topic, set())
            for token in body.get("registration_tokens", []):
                if token in self.unregistered_tokens:
                    results.append({"error": "NOT_FOUND"})
                    continue
                (members.add if is_add else members.discard)(token)
                results.append({})
        return Answer(200, {"results": results})
