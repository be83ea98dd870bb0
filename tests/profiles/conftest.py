import base64
import gzip
import json

import pytest
from django.test import Client

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.services import api_key_create


@pytest.fixture
def write_key(workspace):
    with workspace_scope(workspace.id):
        return api_key_create(workspace=workspace, kind="write", name="app").token


class TrackingClient:
    """Talks to /v1/* the way Segment's libraries do: Basic auth with the write key."""

    def __init__(self, write_key: str):
        auth = base64.b64encode(f"{write_key}:".encode()).decode()
        self.client = Client(HTTP_AUTHORIZATION=f"Basic {auth}")

    def post(self, path: str, body, *, gzipped: bool = False, raw: bytes | None = None):
        data = raw if raw is not None else json.dumps(body).encode()
        headers = {}
        if gzipped:
            data = gzip.compress(data)
            headers["HTTP_CONTENT_ENCODING"] = "gzip"
        return self.client.post(f"/v1/{path}", data, content_type="application/json", **headers)


@pytest.fixture
def tracking(write_key):
    return TrackingClient(write_key)


@pytest.fixture
def in_workspace(workspace):
    with workspace_scope(workspace.id):
        yield workspace
