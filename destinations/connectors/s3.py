"""Amazon S3 (and S3-compatible stores): audience members as files, one object per batch.

A sync run is one folder, named by the run's session id and dated by the day it started (UTC):

    {prefix}audiences/{audience}/dt=YYYY-MM-DD/run-{session_id}/{op}-{batch_seq:05d}.{ext}[.gz]

`op` is `snapshot` (a full replace), `added` or `removed` (an incremental run). A batch sent
again after a crash has the same session id and sequence number, so it overwrites the same
object with the same bytes (gzip written with a fixed mtime): applied once. What was written is
kept in `session.state`, so the run's `manifest.json` (every object with its row count and
SHA-256) can be written by `run_finish` after a crash and resume. A snapshot run also points
the audience's `latest.json` at its folder. See docs/destinations/s3.md.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import secrets
from datetime import UTC, datetime

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings
from django.utils import timezone
from django.utils.text import slugify
from rest_framework import serializers

from destinations.connectors.base import (
    AUDIENCES,
    REPLACE,
    BatchRejected,
    BatchResult,
    Connector,
    ConnectorError,
    DestinationBroken,
    Member,
    RetryLater,
    Session,
)
from destinations.connectors.http import checked_base_url
from destinations.models import DestinationKind
from masivo.outbound import UnsafeURL, url_check
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField

# The identifier columns every file carries, in this order (empty when the sync does not send
# one or the customer has none): a reader sees one schema whatever the sync chose.
IDENTIFIER_COLUMNS = ("external_id", "email", "phone", "first_name", "last_name", "country")
SNAPSHOT, ADDED, REMOVED = "snapshot", "added", "removed"
CONNECTION_TEST_KEY = "_masivo_connection_test"

BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
FOLDER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,199}$")
ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")

# Who answers what (S3 error codes; a HEAD has no body, so only its status).
THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
             "ServiceUnavailable", "InternalError", "RequestTimeout", "ExpiredToken", "503",
             "500"}  # fmt: skip
BROKEN = {
    "NoSuchBucket": "the bucket {bucket!r} does not exist",
    "404": "the bucket {bucket!r} does not exist",
    "AccessDenied": "access denied to the bucket {bucket!r}: the credentials (or the role) "
    "need s3:PutObject and s3:DeleteObject on it",
    "403": "access denied to the bucket {bucket!r}: the credentials (or the role) need "
    "s3:ListBucket, s3:PutObject and s3:DeleteObject on it",
    "AllAccessDisabled": "all access to the bucket {bucket!r} is disabled",
    "InvalidAccessKeyId": "the access key id is not known to AWS",
    "SignatureDoesNotMatch": "the secret access key does not match the access key id",
    "InvalidToken": "the session token is invalid",
    "AccountProblem": "the AWS account has a problem that stops the request",
}


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true or false (DRF's BooleanField also takes "yes", 1, "on"…)."""

    default_error_messages = {"invalid": "must be true or false"}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class S3Config(RefusesUnknownFields):
    bucket = StrictCharField(max_length=63)
    prefix = StrictCharField(max_length=512, allow_blank=True, default="masivo/")
    region = StrictCharField(max_length=40, default="us-east-1")
    format = serializers.ChoiceField(choices=["csv", "jsonl"], default="csv")
    gzip = StrictBooleanField(default=True)
    endpoint_url = StrictCharField(max_length=500, allow_blank=True, default="")
    role_arn = StrictCharField(max_length=2048, allow_blank=True, default="")
    external_id = StrictCharField(max_length=1224, allow_blank=True, default="")
    # Event exports by day (destinations.exports): on or off, and which event names (all
    # when empty).
    export_events = StrictBooleanField(default=False)
    export_event_names = serializers.ListField(
        child=StrictCharField(max_length=200), max_length=200, default=list
    )

    def validate_bucket(self, value: str) -> str:
        if not BUCKET_PATTERN.match(value) or ".." in value:
            raise serializers.ValidationError(
                "an S3 bucket name: 3-63 characters of a-z, 0-9, dots and hyphens"
            )
        return value

    def validate_prefix(self, value: str) -> str:
        value = value.lstrip("/")
        if value and not value.endswith("/"):
            value += "/"
        return value

    def validate_endpoint_url(self, value: str) -> str:
        """Through the SSRF guard, and https unless the outbound allow-list names the host:
        requests are signed with the keys and carry customers' data."""
        return checked_base_url(value, "") if value.strip() else ""

    def validate_role_arn(self, value: str) -> str:
        if value and not ROLE_ARN_PATTERN.match(value):
            raise serializers.ValidationError("an IAM role ARN: arn:aws:iam::<account>:role/<name>")
        return value


class S3Credentials(RefusesUnknownFields):
    access_key_id = StrictCharField(max_length=128, required=False)
    secret_access_key = StrictCharField(max_length=128, required=False)

    def validate(self, data):
        if bool(data.get("access_key_id")) != bool(data.get("secret_access_key")):
            raise serializers.ValidationError("give both access_key_id and secret_access_key")
        return data


def sha256_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def encode_rows(rows: list[dict], columns: list[str], *, fmt: str, compress: bool) -> bytes:
    """Rows as CSV (a header line, `\\n` line ends) or JSON lines, gzipped with mtime 0 so the
    same rows give the same bytes (a re-written object keeps its SHA-256)."""
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_csv_value(row.get(name)) for name in columns] for row in rows])
        body = text.getvalue().encode()
    else:
        body = b"".join(
            json.dumps({name: row.get(name) for name in columns}, ensure_ascii=False,
                       separators=(",", ":"), default=str).encode() + b"\n"
            for row in rows
        )  # fmt: skip
    return gzip.compress(body, mtime=0) if compress else body


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


class S3Connector(Connector):
    kind = DestinationKind.S3
    label = "Amazon S3"
    summary = "Exports audience members and events as CSV or JSON lines files to an S3 bucket."
    docs_anchor = "s3"
    capabilities = frozenset({AUDIENCES, REPLACE})
    platform = "plain"
    default_identifiers = ("external_id", "email")
    offered_identifiers = IDENTIFIER_COLUMNS
    # The workspace's own data going to its own bucket: no purpose applies, only the vendor
    # decision for this destination's key.
    consent_purpose = None
    batch_size = 10_000
    config_serializer = S3Config
    credentials_serializer = S3Credentials

    def __init__(self, destination):
        super().__init__(destination)
        self._client = None

    # Settings --------------------------------------------------------------------------------

    @property
    def bucket(self) -> str:
        return self.config["bucket"]

    @property
    def prefix(self) -> str:
        return self.config.get("prefix", "masivo/")

    @property
    def file_format(self) -> str:
        return self.config.get("format", "csv")

    @property
    def compress(self) -> bool:
        return self.config.get("gzip", True)

    def extension(self, *, compress: bool | None = None) -> str:
        compress = self.compress if compress is None else compress
        return self.file_format + (".gz" if compress else "")

    # The client ------------------------------------------------------------------------------

    def client(self):
        """A boto3 S3 client for this destination, made once per connector. botocore's own
        retries are off: backoff belongs to the sync engine (RetryLater)."""
        if self._client is None:
            with _errors_mapped(self.bucket):
                self._client = self._make_client()
        return self._client

    def _make_client(self):
        endpoint_url = self.config.get("endpoint_url") or None
        if endpoint_url:
            try:
                url_check(endpoint_url)
            except UnsafeURL as refusal:
                raise DestinationBroken(f"endpoint_url refused: {refusal}") from None
        region = self.config.get("region") or "us-east-1"
        boto_config = BotoConfig(
            region_name=region,
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        keys = self._credentials(endpoint_url, boto_config)
        session = boto3.session.Session()
        return session.client("s3", endpoint_url=endpoint_url, config=boto_config, **keys)

    def _credentials(self, endpoint_url: str | None, boto_config: BotoConfig) -> dict:
        """Static keys, or the role's temporary keys (assumed with the static keys, or with the
        server's own credentials where the deployment allows it)."""
        static = {
            "aws_access_key_id": self.credentials.get("access_key_id"),
            "aws_secret_access_key": self.credentials.get("secret_access_key"),
        }
        has_static = bool(static["aws_access_key_id"])
        role_arn = self.config.get("role_arn")
        if not has_static and not getattr(settings, "MASIVO_S3_SERVER_CREDENTIALS", False):
            raise DestinationBroken("no credentials: give an access key id and secret")
        if not has_static and not (role_arn and self.config.get("external_id")):
            # Masivo's own identity writes only through a role the customer made for it, with
            # an external id: otherwise any workspace could name a bucket that trusts Masivo.
            raise DestinationBroken(
                "without an access key, a role_arn and its external_id are needed"
            )
        if not role_arn:
            return static
        # S3-compatible stores that offer STS (MinIO) serve it at the same endpoint.
        sts = boto3.session.Session().client(
            "sts", endpoint_url=endpoint_url, config=boto_config,
            **(static if has_static else {}),
        )  # fmt: skip
        request = {"RoleArn": role_arn, "RoleSessionName": f"masivo-{self.destination.id}",
                   "DurationSeconds": 3600}  # fmt: skip
        if self.config.get("external_id"):
            request["ExternalId"] = self.config["external_id"]
        temporary = sts.assume_role(**request)["Credentials"]
        return {
            "aws_access_key_id": temporary["AccessKeyId"],
            "aws_secret_access_key": temporary["SecretAccessKey"],
            "aws_session_token": temporary["SessionToken"],
        }

    def put(self, key: str, body, *, content_type: str) -> None:
        """One object (bytes, or a file open for reading from its start), overwritten if it
        is there."""
        with _errors_mapped(self.bucket):
            self.client().put_object(Bucket=self.bucket, Key=key, Body=body,
                                     ContentType=content_type)  # fmt: skip

    def keys_under(self, prefix: str) -> list[str]:
        with _errors_mapped(self.bucket):
            pages = (
                self.client()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=self.bucket, Prefix=prefix)
            )
            return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def delete(self, key: str) -> None:
        with _errors_mapped(self.bucket):
            self.client().delete_object(Bucket=self.bucket, Key=key)

    def content_type(self, *, compress: bool | None = None) -> str:
        compress = self.compress if compress is None else compress
        if compress:
            return "application/gzip"
        return "text/csv" if self.file_format == "csv" else "application/x-ndjson"

    # Every connector -------------------------------------------------------------------------

    def test_connection(self) -> str:
        key = f"{self.prefix}{CONNECTION_TEST_KEY}"
        try:
            with _errors_mapped(self.bucket):
                client = self.client()
                client.head_bucket(Bucket=self.bucket)
                client.put_object(Bucket=self.bucket, Key=key, Body=b"ok\n")
                client.delete_object(Bucket=self.bucket, Key=key)
        except ConnectorError as error:
            raise ConnectorError(f"S3 connection test failed: {error}", code=error.code) from None
        return f"wrote and deleted s3://{self.bucket}/{key}"

    # Audiences -------------------------------------------------------------------------------

    def audience_create(self, name: str) -> str:
        """A folder name: the audience's name as a slug, made unique by a short suffix (two
        audiences of one name must not share a folder). Nothing is created at S3."""
        slug = slugify(name)[:60].strip("-") or "audience"
        return f"{slug}-{secrets.token_hex(3)}"

    def run_begin(self, remote_id: str, *, mode: str, session: Session) -> None:
        _run_state(session, mode=mode)

    def members_add(self, remote_id: str, members: list[Member], *, session: Session):
        return self._write(remote_id, members, op=ADDED, session=session)

    def members_remove(self, remote_id: str, members: list[Member], *, session: Session):
        return self._write(remote_id, members, op=REMOVED, session=session)

    def replace_batch(
        self, remote_id: str, members: list[Member], *, session: Session, last: bool
    ) -> BatchResult:
        result = self._write(remote_id, members, op=SNAPSHOT, session=session)
        if last:
            self._finish(remote_id, session)
        return result

    def run_finish(self, remote_id: str, *, session: Session) -> None:
        state = _run_state(session)
        if state["mode"] == SNAPSHOT and not any(o["op"] == SNAPSHOT for o in state["objects"]):
            # A snapshot of nobody is still a snapshot: readers of latest.json see it empty.
            self._write(remote_id, [], op=SNAPSHOT, session=session, seq=1)
        self._finish(remote_id, session)

    # Files -----------------------------------------------------------------------------------

    def audience_folder(self, remote_id: str) -> str:
        if not FOLDER_PATTERN.match(remote_id or ""):
            raise BatchRejected(
                f"audience folder {remote_id!r} is not a plain name (letters, digits, . _ = -)"
            )
        return f"{self.prefix}audiences/{remote_id}/"

    def run_folder(self, remote_id: str, session: Session) -> str:
        state = _run_state(session)
        day = datetime.fromisoformat(state["run_at"]).date().isoformat()
        return f"{self.audience_folder(remote_id)}dt={day}/run-{session.session_id}/"

    def columns(self, op: str) -> list[str]:
        return ["customer_id", *IDENTIFIER_COLUMNS] + ([] if op == SNAPSHOT else ["op"])

    def _write(
        self, remote_id: str, members: list[Member], *, op: str, session: Session,
        seq: int | None = None,
    ) -> BatchResult:  # fmt: skip
        seq = session.batch_seq if seq is None else seq
        key = f"{self.run_folder(remote_id, session)}{op}-{seq:05d}.{self.extension()}"
        rows = [
            {
                "customer_id": m.customer_id,
                **m.identifiers,
                **({} if op == SNAPSHOT else {"op": op}),
            }
            for m in members
        ]
        body = encode_rows(rows, self.columns(op), fmt=self.file_format, compress=self.compress)
        self.put(key, body, content_type=self.content_type())
        state = _run_state(session)
        entry = {"key": key, "op": op, "rows": len(rows), "bytes": len(body),
                 "sha256": sha256_of(body)}  # fmt: skip
        state["objects"] = [o for o in state["objects"] if o["key"] != key] + [entry]
        return BatchResult()

    def _finish(self, remote_id: str, session: Session) -> None:
        """The manifest (and, for a snapshot, `latest.json`): written again by a resumed run
        with the same content, since everything in them comes from `session.state`."""
        state = _run_state(session)
        folder = self.run_folder(remote_id, session)
        objects = sorted(state["objects"], key=lambda o: o["key"])
        mode = SNAPSHOT if state["mode"] == SNAPSHOT or any(
            o["op"] == SNAPSHOT for o in objects) else "changes"  # fmt: skip
        manifest = {
            "version": 1,
            "audience": remote_id,
            "run": session.session_id,
            "mode": mode,
            "run_at": state["run_at"],
            "format": self.file_format,
            "gzip": self.compress,
            "columns": self.columns(SNAPSHOT if mode == SNAPSHOT else ADDED),
            "rows": sum(o["rows"] for o in objects),
            "objects": [{name: o[name] for name in ("key", "op", "rows", "bytes", "sha256")}
                        for o in objects],
        }  # fmt: skip
        self.put(f"{folder}manifest.json", _json_bytes(manifest), content_type="application/json")
        if mode == SNAPSHOT:
            latest = {"run": session.session_id, "run_at": state["run_at"], "folder": folder,
                      "manifest": f"{folder}manifest.json", "rows": manifest["rows"]}  # fmt: skip
            self.put(f"{self.audience_folder(remote_id)}latest.json", _json_bytes(latest),
                     content_type="application/json")  # fmt: skip


def _json_bytes(document: dict) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"


def _run_state(session: Session, *, mode: str | None = None) -> dict:
    """The run's bookkeeping in `session.state`, set up on first use: when it started (its
    folder's date, kept across a crash past midnight), its mode and the objects written. A
    change makes a new dict, so a caller comparing the state before and after sees it."""
    state = session.state
    wanted = {"run_at": state.get("run_at") or timezone.now().astimezone(UTC).isoformat(
        timespec="seconds"), "mode": state.get("mode", "changes"),
        "objects": state.get("objects", [])}  # fmt: skip
    if mode is not None:
        wanted["mode"] = SNAPSHOT if mode in ("full", "replace", SNAPSHOT) else "changes"
    if any(state.get(name) != value for name, value in wanted.items()):
        session.state = state = {**state, **wanted}
    return state


class _errors_mapped:
    """botocore's errors as the engine's: throttling, 5xx and the network → RetryLater;
    credentials or bucket gone → DestinationBroken; anything else → BatchRejected."""

    def __init__(self, bucket: str):
        self.bucket = bucket

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None or isinstance(error, ConnectorError):
            return False
        mapped = s3_error(error, self.bucket)
        if mapped is None:
            return False
        raise mapped from error


def s3_error(error: BaseException, bucket: str) -> ConnectorError | None:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        text = details.get("Message") or code
        if code in THROTTLED or status in (429, 500, 502, 503, 504):
            headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            retry_after = headers.get("retry-after")
            return RetryLater(
                f"S3 {code}: {text}",
                code=code,
                retry_after=float(retry_after) if _is_number(retry_after) else None,
            )
        if code in BROKEN:
            return DestinationBroken(f"{BROKEN[code].format(bucket=bucket)} ({code})", code=code)
        return BatchRejected(f"S3 {code}: {text}", code=code)
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return RetryLater(f"S3 unreachable: {error}")
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return DestinationBroken(f"no usable credentials: {error}")
    if isinstance(error, BotoCoreError):
        return BatchRejected(f"S3 client: {error}")
    return None


def _is_number(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
