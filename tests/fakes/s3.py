"""Amazon S3 offline: moto's server on 127.0.0.1, started once per test session.

`s3_bucket` gives each test a bucket of its own (moto keeps its state in this process for the
whole session) and reads back what was written, for exact assertions. `moto_auth` makes moto
check credentials and IAM policies within one test (off otherwise: any key is accepted).
Import the fixtures in the test module that uses them.
"""

from __future__ import annotations

import gzip
import itertools
import json
from dataclasses import dataclass

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "AKIATESTMASIVO000001", "aws_secret_access_key": "moto-secret"}
_numbers = itertools.count(1)


@dataclass
class MotoS3:
    endpoint_url: str

    def client(self, service: str = "s3", **keys):
        return boto3.session.Session().client(
            service, endpoint_url=self.endpoint_url, region_name=REGION, **(keys or KEYS)
        )


@dataclass
class Bucket:
    moto: MotoS3
    name: str

    @property
    def endpoint_url(self) -> str:
        return self.moto.endpoint_url

    def object_keys(self) -> list[str]:
        listing = self.moto.client().list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def body(self, key: str) -> bytes:
        return self.moto.client().get_object(Bucket=self.name, Key=key)["Body"].read()

    def text(self, key: str) -> str:
        body = self.body(key)
        return (gzip.decompress(body) if key.endswith(".gz") else body).decode()

    def json(self, key: str):
        return json.loads(self.body(key))

    def jsonl(self, key: str) -> list[dict]:
        return [json.loads(line) for line in self.text(key).splitlines()]


@pytest.fixture(scope="session")
def moto_s3():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoS3(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_s3) -> Bucket:
    name = f"masivo-test-{next(_numbers)}"
    moto_s3.client().create_bucket(Bucket=name)
    return Bucket(moto=moto_s3, name=name)


class MotoAuth:
    """Switches moto's credential and IAM policy checks on (`enforce`, after the test made its
    IAM users: with the checks on, even that needs a user allowed to do it)."""

    def __init__(self, moto: MotoS3):
        self.moto = moto

    def enforce(self) -> None:
        self._set(b"0")

    def relax(self) -> None:
        self._set(b"inf")

    def _set(self, count: bytes) -> None:
        url = f"{self.moto.endpoint_url}/moto-api/reset-auth"
        requests.post(url, data=count, timeout=5).raise_for_status()


@pytest.fixture
def moto_auth(moto_s3):
    auth = MotoAuth(moto_s3)
    try:
        yield auth
    finally:
        auth.relax()
