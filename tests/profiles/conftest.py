import base64
import gzip
import json

import pytest
from django.test import Client

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.services import api_key_create
from tests.profiles.helpers import settle


@pytest.fixture
def write_key(workspace):
    with workspace_scope(workspace.id):
        return api_key_create(workspace=workspace, kind="write", name="app").token


class TrackingClient:
    """Talks to /v1/* the way Segment's libraries do: Basic auth with the write key.

    With `settle_in`, each call is followed by the ingestion follow-up, as a worker that keeps
    up would run it: the tests then see who each message was about, not the stored message.
    """

    def __init__(self, write_key: str, settle_in=None):
        auth = base64.b64encode(f"{write_key}:".encode()).decode()
        self.client = Client(HTTP_AUTHORIZATION=f"Basic {auth}")
        self.settle_in = settle_in

    def post(self, path: str, body, *, gzipped: bool = False, raw: bytes | None = None):
        data = raw if raw is not None else json.dumps(body).encode()
        headers = {}
        if gzipped:
            data = gzip.compress(data)
            headers["HTTP_CONTENT_ENCODING"] = "gzip"
        response = self.client.post(f"/v1/{path}", data, content_type="application/json", **headers)
        if self.settle_in is not None:
            settle(self.settle_in)
        return response


@pytest.fixture
def tracking(write_key, workspace):
    """The tracking API followed by the follow-up after each call."""
    return TrackingClient(write_key, settle_in=workspace)


@pytest.fixture
def raw_tracking(write_key):
    """The tracking API alone: what a 200 promises before the follow-up runs."""
    return TrackingClient(write_key)


@pytest.fixture
def in_workspace(workspace):
    with workspace_scope(workspace.id):
        yield workspace
