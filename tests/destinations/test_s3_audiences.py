"""The S3 connector against moto's server: audience exports (one object per batch, manifests,
latest.json), the connection test, and how S3's errors reach the sync engine."""

import gzip
import hashlib

import pytest
import time_machine

from destinations.connectors.base import (
    BatchRejected,
    ConnectorError,
    DestinationBroken,
    Member,
    RetryLater,
    Session,
)
from destinations.connectors.s3 import S3Config, S3Connector
from destinations.models import Destination
from masivo.tenancy.context import workspace_scope
from tests.fakes import s3 as fake_s3
from tests.fakes.base import Answer, FakeServer
from tests.fakes.s3 import KEYS

moto_s3, moto_auth, s3_bucket = fake_s3.moto_s3, fake_s3.moto_auth, fake_s3.s3_bucket

pytestmark = pytest.mark.django_db

RUN_TIME = "2026-03-04T23:59:30+00:00"
ANA = Member(1, {"external_id": "u-1", "email": "ana@example.com"})
BEN = Member(2, {"email": "ben@example.com", "country": "MX"})
CAROL = Member(3, {"external_id": "u-3", "first_name": 'Carol, "C"'})


def s3_destination(workspace, bucket, **config) -> Destination:
    with workspace_scope(workspace.id):
        return Destination.objects.create(
            workspace=workspace,
            kind="s3",
            name="Data lake",
            key="s3",
            config={"bucket": bucket.name, "endpoint_url": bucket.endpoint_url, **config},
            credentials={"access_key_id": KEYS["aws_access_key_id"],
                         "secret_access_key": KEYS["aws_secret_access_key"]},
        )  # fmt: skip


def session(seq: int) -> Session:
    return Session(session_id=77, batch_seq=seq, estimated_total=3, state={})


class Run:
    """One sync run as the engine drives it: each call's session starts from the state the
    previous call left (what the engine persists), `seq` is the batch's sequence number."""

    def __init__(self, connector, remote_id: str, state: dict | None = None):
        self.connector, self.remote_id, self.state = connector, remote_id, state or {}

    def __getattr__(self, method: str):
        def call(*args, seq: int, **kwargs):
            session = Session(session_id=77, batch_seq=seq, estimated_total=3, state=self.state)
            result = getattr(self.connector, method)(self.remote_id, *args, session=session,
                                                     **kwargs)  # fmt: skip
            self.state = session.state
            return result

        return call


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


FOLDER = "masivo/audiences/vip-a1b2c3/dt=2026-03-04/run-77/"


@time_machine.travel(RUN_TIME, tick=False)
def test_a_snapshot_run_writes_one_gzip_csv_per_batch_then_the_manifest_and_latest(
    workspace, s3_bucket
):
    connector = S3Connector(s3_destination(workspace, s3_bucket))
    run = Run(connector, "vip-a1b2c3")
    run.run_begin(mode="full", seq=0)
    run.replace_batch([ANA, BEN], seq=1, last=False)
    run.replace_batch([CAROL], seq=2, last=True)

    assert s3_bucket.object_keys() == [
        FOLDER + "manifest.json",
        FOLDER + "snapshot-00001.csv.gz",
        FOLDER + "snapshot-00002.csv.gz",
        "masivo/audiences/vip-a1b2c3/latest.json",
    ]
    header = "customer_id,external_id,email,phone,first_name,last_name,country\n"
    assert s3_bucket.text(FOLDER + "snapshot-00001.csv.gz") == (
        header + "1,u-1,ana@example.com,,,,\n2,,ben@example.com,,,,MX\n"
    )
    assert s3_bucket.text(FOLDER + "snapshot-00002.csv.gz") == (
        header + '3,u-3,,,"Carol, ""C""",,\n'
    )
    first, second = (s3_bucket.body(FOLDER + f"snapshot-0000{n}.csv.gz") for n in (1, 2))
    assert s3_bucket.json(FOLDER + "manifest.json") == {
        "version": 1,
        "audience": "vip-a1b2c3",
        "run": 77,
        "mode": "snapshot",
        "run_at": RUN_TIME,
        "format": "csv",
        "gzip": True,
        "columns": ["customer_id", "external_id", "email", "phone", "first_name", "last_name",
                    "country"],
        "rows": 3,
        "objects": [
            {"key": FOLDER + "snapshot-00001.csv.gz", "op": "snapshot", "rows": 2,
             "bytes": len(first), "sha256": sha(first)},
            {"key": FOLDER + "snapshot-00002.csv.gz", "op": "snapshot", "rows": 1,
             "bytes": len(second), "sha256": sha(second)},
        ],
    }  # fmt: skip
    assert s3_bucket.json("masivo/audiences/vip-a1b2c3/latest.json") == {
        "run": 77,
        "run_at": RUN_TIME,
        "folder": FOLDER,
        "manifest": FOLDER + "manifest.json",
        "rows": 3,
    }
    assert [(o["key"].rsplit("/", 1)[1], o["rows"]) for o in run.state["objects"]] == [
        ("snapshot-00001.csv.gz", 2),
        ("snapshot-00002.csv.gz", 1),
    ]


@time_machine.travel(RUN_TIME, tick=False)
def test_an_incremental_run_writes_jsonl_changes_with_the_op_and_a_manifest_at_the_end(
    workspace, s3_bucket
):
    connector = S3Connector(
        s3_destination(workspace, s3_bucket, format="jsonl", gzip=False, prefix="exports/")
    )
    run = Run(connector, "vip")
    run.run_begin(mode="incremental", seq=0)
    run.members_remove([BEN], seq=1)
    run.members_add([ANA, CAROL], seq=2)
    run.run_finish(seq=2)

    folder = "exports/audiences/vip/dt=2026-03-04/run-77/"
    assert s3_bucket.object_keys() == [
        folder + "added-00002.jsonl",
        folder + "manifest.json",
        folder + "removed-00001.jsonl",
    ]
    nobody = dict.fromkeys(["external_id", "email", "phone", "first_name", "last_name",
                            "country"])  # fmt: skip
    assert s3_bucket.jsonl(folder + "added-00002.jsonl") == [
        {"customer_id": 1, **nobody, "external_id": "u-1", "email": "ana@example.com",
         "op": "added"},
        {"customer_id": 3, **nobody, "external_id": "u-3", "first_name": 'Carol, "C"',
         "op": "added"},
    ]  # fmt: skip
    assert s3_bucket.body(folder + "removed-00001.jsonl") == (
        b'{"customer_id":2,"external_id":null,"email":"ben@example.com","phone":null,'
        b'"first_name":null,"last_name":null,"country":"MX","op":"removed"}\n'
    )
    manifest = s3_bucket.json(folder + "manifest.json")
    assert (manifest["mode"], manifest["rows"], manifest["format"], manifest["gzip"]) == (
        "changes",
        3,
        "jsonl",
        False,
    )
    assert manifest["columns"][-1] == "op"
    assert [(o["key"], o["op"], o["rows"]) for o in manifest["objects"]] == [
        (folder + "added-00002.jsonl", "added", 2),
        (folder + "removed-00001.jsonl", "removed", 1),
    ]


def test_a_batch_sent_again_after_a_crash_overwrites_the_same_object_with_the_same_bytes(
    workspace, s3_bucket
):
    connector = S3Connector(s3_destination(workspace, s3_bucket))
    with time_machine.travel(RUN_TIME, tick=False):
        run = Run(connector, "vip")
        run.replace_batch([ANA, BEN], seq=1, last=False)
    before = s3_bucket.body("masivo/audiences/vip/dt=2026-03-04/run-77/snapshot-00001.csv.gz")
    # The worker died before the engine saw the answer; it resumes the next day with the
    # state it had persisted and sends batch 1 again, then the rest.
    with time_machine.travel("2026-03-05T00:10:00+00:00", tick=False):
        with workspace_scope(workspace.id):
            resumed = S3Connector(Destination.objects.get(id=connector.destination.id))
        again = Run(resumed, "vip", state=run.state)
        again.replace_batch([ANA, BEN], seq=1, last=False)
        again.replace_batch([], seq=2, last=True)

    folder = "masivo/audiences/vip/dt=2026-03-04/run-77/"
    assert s3_bucket.object_keys() == [
        folder + "manifest.json",
        folder + "snapshot-00001.csv.gz",
        folder + "snapshot-00002.csv.gz",
        "masivo/audiences/vip/latest.json",
    ]
    assert s3_bucket.body(folder + "snapshot-00001.csv.gz") == before
    assert gzip.decompress(before).count(b"\n") == 3
    manifest = s3_bucket.json(folder + "manifest.json")
    assert [(o["key"], o["rows"]) for o in manifest["objects"]] == [
        (folder + "snapshot-00001.csv.gz", 2),
        (folder + "snapshot-00002.csv.gz", 0),
    ]
    assert manifest["run_at"] == RUN_TIME


@time_machine.travel(RUN_TIME, tick=False)
def test_a_full_run_of_nobody_still_writes_an_empty_snapshot_and_latest(workspace, s3_bucket):
    connector = S3Connector(s3_destination(workspace, s3_bucket, gzip=False))
    run = Run(connector, "vip")
    run.run_begin(mode="full", seq=0)
    run.run_finish(seq=0)

    folder = "masivo/audiences/vip/dt=2026-03-04/run-77/"
    assert s3_bucket.object_keys() == [
        folder + "manifest.json",
        folder + "snapshot-00001.csv",
        "masivo/audiences/vip/latest.json",
    ]
    assert s3_bucket.text(folder + "snapshot-00001.csv") == (
        "customer_id,external_id,email,phone,first_name,last_name,country\n"
    )
    assert s3_bucket.json("masivo/audiences/vip/latest.json")["rows"] == 0


def test_a_sync_may_choose_the_identifiers_every_file_has_a_column_for():
    assert S3Connector.identifier_choices() == [
        "external_id", "email", "phone", "first_name", "last_name", "country",
    ]  # fmt: skip


def test_audience_create_names_a_folder_without_calling_s3(workspace, s3_bucket):
    connector = S3Connector(s3_destination(workspace, s3_bucket))
    first, second = connector.audience_create("VIP · México"), connector.audience_create("VIP")

    assert first.startswith("vip-mexico-") and len(first) == len("vip-mexico-") + 6
    assert second.startswith("vip-") and first != second
    assert s3_bucket.object_keys() == []


def test_a_folder_that_is_not_a_plain_name_is_rejected(workspace, s3_bucket):
    connector = S3Connector(s3_destination(workspace, s3_bucket))

    with pytest.raises(BatchRejected, match="is not a plain name"):
        connector.members_add("../other", [ANA], session=session(1))
    assert s3_bucket.object_keys() == []


def test_the_connection_test_writes_and_deletes_its_object(workspace, s3_bucket):
    connector = S3Connector(s3_destination(workspace, s3_bucket, prefix="lake/"))

    assert connector.test_connection() == (
        f"wrote and deleted s3://{s3_bucket.name}/lake/_masivo_connection_test"
    )
    assert s3_bucket.object_keys() == []


def test_a_missing_bucket_fails_the_connection_test_and_breaks_a_run(workspace, s3_bucket):
    destination = s3_destination(workspace, s3_bucket)
    destination.config["bucket"] = "masivo-no-such-bucket"

    with pytest.raises(ConnectorError) as failed:
        S3Connector(destination).test_connection()
    assert str(failed.value) == (
        "S3 connection test failed: the bucket 'masivo-no-such-bucket' does not exist (404)"
    )
    with pytest.raises(DestinationBroken) as broken:
        S3Connector(destination).members_add("vip", [ANA], session=session(1))
    assert str(broken.value) == "the bucket 'masivo-no-such-bucket' does not exist (NoSuchBucket)"
    assert broken.value.code == "NoSuchBucket"


def iam_user_with_policy(moto, actions: list[str]) -> dict:
    iam = moto.client("iam")
    name = f"masivo-{len(iam.list_users()['Users'])}"
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="s3",
        PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        f'"Action": {actions!r}, "Resource": "*"}}]}}'.replace("'", '"'),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def test_access_denied_breaks_the_destination(workspace, s3_bucket, moto_s3, moto_auth):
    destination = s3_destination(workspace, s3_bucket)
    destination.credentials = iam_user_with_policy(moto_s3, ["s3:ListBucket"])
    moto_auth.enforce()

    with pytest.raises(DestinationBroken) as broken:
        S3Connector(destination).members_add("vip", [ANA], session=session(1))
    assert str(broken.value) == (
        f"access denied to the bucket {s3_bucket.name!r}: the credentials (or the role) need "
        "s3:PutObject and s3:DeleteObject on it (AccessDenied)"
    )
    with pytest.raises(ConnectorError, match=r"S3 connection test failed: access denied"):
        S3Connector(destination).test_connection()


def test_an_unknown_access_key_breaks_the_destination(workspace, s3_bucket, moto_auth):
    destination = s3_destination(workspace, s3_bucket)
    moto_auth.enforce()

    with pytest.raises(DestinationBroken) as broken:
        S3Connector(destination).members_add("vip", [ANA], session=session(1))
    assert str(broken.value) == "the access key id is not known to AWS (InvalidAccessKeyId)"


def test_a_role_is_assumed_through_sts_and_its_keys_write(workspace, s3_bucket, moto_s3):
    destination = s3_destination(
        workspace, s3_bucket,
        role_arn="arn:aws:iam::123456789012:role/masivo-export", external_id="ws-1",
    )  # fmt: skip
    connector = S3Connector(destination)
    connector.members_add("vip", [ANA], session=session(1))

    keys = connector.client()._request_signer._credentials
    assert keys.access_key != KEYS["aws_access_key_id"] and keys.token
    assert len(s3_bucket.object_keys()) == 1


def test_without_keys_the_servers_own_credentials_are_refused(workspace, s3_bucket):
    destination = s3_destination(workspace, s3_bucket)
    destination.credentials = {}

    with pytest.raises(DestinationBroken, match=r"^no credentials: give an access key id"):
        S3Connector(destination).members_add("vip", [ANA], session=session(1))


S3_SLOW_DOWN = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    "<Message>Please reduce your request rate.</Message></Error>"
)


@pytest.fixture
def s3_stand_in():
    """S3 in trouble (moto never throttles): a fake that answers what S3 answers then."""
    fake = FakeServer().start()
    yield fake
    fake.stop()


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (Answer(503, S3_SLOW_DOWN, {"Content-Type": "application/xml"}), RetryLater,
         "S3 SlowDown: Please reduce your request rate."),
        (Answer(500, "", {}), RetryLater, "S3 500: Internal Server Error"),
        (Answer(400, '<Error><Code>EntityTooLarge</Code><Message>Too big</Message></Error>',
                {"Content-Type": "application/xml"}), BatchRejected, "S3 EntityTooLarge: Too big"),
    ],
)  # fmt: skip
def test_throttling_and_5xx_retry_later_and_other_errors_reject_the_batch(
    workspace, s3_bucket, s3_stand_in, answer, error, message
):
    destination = s3_destination(workspace, s3_bucket)
    destination.config["endpoint_url"] = s3_stand_in.url
    s3_stand_in.answer_when(lambda request: True, answer)

    with pytest.raises(error) as raised:
        S3Connector(destination).members_add("vip", [ANA], session=session(1))
    assert str(raised.value) == message
    assert len(s3_stand_in.requests) == 1  # botocore's own retries are off


def test_an_unreachable_endpoint_retries_later(workspace, s3_bucket, s3_stand_in):
    destination = s3_destination(workspace, s3_bucket)
    destination.config["endpoint_url"] = s3_stand_in.url
    s3_stand_in.stop()

    with pytest.raises(RetryLater, match=r"^S3 unreachable: Could not connect"):
        S3Connector(destination).members_add("vip", [ANA], session=session(1))


def test_a_private_endpoint_url_is_refused_in_the_config_and_at_send(
    workspace, s3_bucket, settings
):
    destination = s3_destination(workspace, s3_bucket)
    settings.MASIVO_OUTBOUND_ALLOWLIST = []

    config = S3Config(data={"bucket": "masivo-lake", "endpoint_url": s3_bucket.endpoint_url})
    assert not config.is_valid()
    assert list(config.errors) == ["endpoint_url"]
    with pytest.raises(DestinationBroken, match=r"^endpoint_url refused: "):
        S3Connector(destination).members_add("vip", [ANA], session=session(1))
    settings.MASIVO_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
    assert s3_bucket.object_keys() == []


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"bucket": "Bad_Bucket"}, ["bucket"]),
        ({"bucket": "masivo-lake", "gzip": "yes"}, ["gzip"]),
        ({"bucket": "masivo-lake", "format": "parquet"}, ["format"]),
        ({"bucket": "masivo-lake", "role_arn": "admin"}, ["role_arn"]),
        ({"bucket": "masivo-lake", "acl": "public-read"}, ["acl"]),
    ],
)
def test_the_config_is_strict(data, errors):
    config = S3Config(data=data)

    assert not config.is_valid()
    assert list(config.errors) == errors


def test_an_endpoint_url_must_be_https_unless_allow_listed():
    config = S3Config(data={"bucket": "masivo-lake", "endpoint_url": "http://8.8.8.8:9000"})

    assert not config.is_valid()
    assert config.errors == {"endpoint_url": ["must be an https URL (credentials go with it)"]}


def test_the_config_has_defaults_and_normalizes_the_prefix():
    config = S3Config(data={"bucket": "masivo-lake", "prefix": "/exports"})

    assert config.is_valid(), config.errors
    assert dict(config.validated_data) == {
        "bucket": "masivo-lake",
        "prefix": "exports/",
        "region": "us-east-1",
        "format": "csv",
        "gzip": True,
        "endpoint_url": "",
        "role_arn": "",
        "external_id": "",
        "export_events": False,
        "export_event_names": [],
    }
