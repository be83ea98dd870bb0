"""A small threaded HTTP server that stands in for a provider in tests.

Every request is recorded, parsed (JSON or form body, query string, lower-cased headers). What
it answers is, in order: the next scripted answer whose route matches (`fake.script(...)`, a
FIFO queue), the first rule whose predicate holds (`fake.answer_when(...)`), else the
provider's own behaviour (`route`, in each subclass). Subclasses build answers the way their
provider does: 2xx, 429 with Retry-After, 5xx and the provider's permanent errors.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, list[str]] | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Answer:
    status: int
    body: Any = None  # dict or list: JSON; str or bytes: as is; None: empty
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", "text/plain"
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain"
        return json.dumps(self.body).encode(), "application/json"


Predicate = Callable[[RecordedRequest], bool]


class FakeServer:
    name = "fake"

    def __init__(self):
        self.requests: list[RecordedRequest] = []
        self._scripted: deque[tuple[Predicate, Answer]] = deque()
        self._rules: list[tuple[Predicate, Answer]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # Lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeServer:
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        """Forget requests, scripts and rules (and, in subclasses, provider state)."""
        with self._lock:
            self.requests.clear()
            self._scripted.clear()
            self._rules.clear()

    # Knobs -------------------------------------------------------------------------------------

    def script(self, *answers: Answer, when: Predicate | None = None) -> None:
        """Answer the next matching requests with `answers`, in order, once each."""
        with self._lock:
            self._scripted.extend((when or _always, answer) for answer in answers)

    def answer_when(self, predicate: Predicate, answer: Answer) -> None:
        """Answer every request `predicate` holds for with `answer` (until reset)."""
        with self._lock:
            self._rules.append((predicate, answer))

    def requests_to(self, path_part: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                request
                for request in self.requests
                if path_part in request.path and (method is None or request.method == method)
            ]

    # What subclasses provide ------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> Answer:
        return Answer(404, {"error": f"{self.name} fake: no route for {request.path}"})

    # Internals ---------------------------------------------------------------------------------

    def _answer(self, request: RecordedRequest) -> Answer:
        with self._lock:
            self.requests.append(request)
            for index, (predicate, answer) in enumerate(self._scripted):
                if predicate(request):
                    del self._scripted[index]
                    return answer
            for predicate, answer in self._rules:
                if predicate(request):
                    return answer
        return self.route(request)


class _QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-request (a sender killed by a test) is no error to print;
    the backlog holds a sender's concurrent connections (socketserver's default is 5)."""

    request_queue_size = 128

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _always(request: RecordedRequest) -> bool:
    return True


def parse_request(method: str, target: str, headers, body: bytes) -> RecordedRequest:
    parts = urlsplit(target)
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = lowered.get("content-type", "")
    parsed_json, form = None, None
    if body and "json" in content_type:
        try:
            parsed_json = json.loads(body)
        except ValueError:
            parsed_json = None
    elif body and "x-www-form-urlencoded" in content_type:
        form = parse_qs(body.decode(), keep_blank_values=True)
    return RecordedRequest(
        method=method,
        path=parts.path,
        query=parse_qs(parts.query, keep_blank_values=True),
        headers=lowered,
        body=body,
        json=parsed_json,
        form=form,
    )


def _handler_for(fake: FakeServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = parse_request(self.command, self.path, self.headers, body)
            answer = fake._answer(request)
            payload, content_type = answer.encoded()
            self.send_response(answer.status)
            headers = {"Content-Type": content_type, **answer.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format, *args):  # quiet: tests assert on `fake.requests`
            pass

    return Handler
