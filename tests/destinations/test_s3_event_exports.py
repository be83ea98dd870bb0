"""Event exports by day to S3 (destinations.exports) against moto's server: exact parts and
manifest, UTC day boundaries, vendor consent, resume from the checkpoint, S3 errors, the daily
schedule."""

import hashlib
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from destinations import exports
from destinations.exports import event_export_execute, event_export_schedule, event_exports_daily
from destinations.models import Destination, EventExport
from masivo.jobs import JobStatus
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.errors import InvalidInput, NotAllowed
from profiles.models import Event, ProfileSettings
from tests.factories import CustomerFactory
from tests.fakes import s3 as fake_s3
from tests.fakes.base import Answer, FakeServer
from tests.fakes.s3 import KEYS

moto_s3, s3_bucket = fake_s3.moto_s3, fake_s3.s3_bucket

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 4)
NOW = "2026-03-05T01:00:00+00:00"
FOLDER = "masivo/events/dt=2026-03-04/"
CSV_HEADER = "id,name,customer_id,external_id,occurred_at,received_at,properties,context\n"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def s3_destination(workspace, s3, **config) -> Destination:
    with workspace_scope(workspace.id):
        return Destination.objects.create(
            workspace=workspace, kind="s3", name="Data lake", key="lake",
            config={"bucket": s3.name, "endpoint_url": s3.endpoint_url, "prefix": "masivo/",
                    "format": "csv", **config},
            credentials={"access_key_id": KEYS["aws_access_key_id"],
                         "secret_access_key": KEYS["aws_secret_access_key"]},
        )  # fmt: skip


@pytest.fixture
def day_of_events(workspace):
    """Events on both sides of 2026-03-04 (UTC), of a customer, an anonymous visitor and a
    customer who denied the destination `lake`."""
    with workspace_scope(workspace.id):
        ana = CustomerFactory(workspace=workspace, external_id="u-ana")
        denied = CustomerFactory(workspace=workspace, external_id="u-no",
                                 consent_vendors={"lake": {"status": "denied"}})  # fmt: skip

        def event(name, occurred, customer=ana, **fields):
            return Event.objects.create(
                workspace=workspace, customer=customer, name=name, occurred_at=at(occurred),
                received_at=at(occurred) + timedelta(seconds=2), message_id=f"m-{occurred}",
                source="api", **fields,
            ).id  # fmt: skip

        ids = {
            "before": event("purchase", "2026-03-03T23:59:59.999999"),
            "first": event(
                "purchase",
                "2026-03-04T00:00:00",
                properties={"value": 10.5},
                context={"ip": "203.0.113.7"},
            ),
            "anonymous": event(
                "page", "2026-03-04T08:30:00", customer=None, properties={"path": '/a,"b"'}
            ),
            "denied": event("purchase", "2026-03-04T09:00:00", customer=denied),
            "last": event("signup", "2026-03-04T23:59:59.999999"),
            "after": event("purchase", "2026-03-05T00:00:00"),
        }
    return {"customer": ana.id, **ids}


def scheduled(workspace, destination, **options) -> EventExport:
    with workspace_scope(workspace.id):
        return event_export_schedule(destination=destination, day=DAY, now=at(NOW[:19]),
                                     **options)  # fmt: skip


def run(workspace, export) -> EventExport:
    with time_machine.travel(NOW, tick=False), workspace_scope(workspace.id):
        return event_export_execute(export_id=export.id)


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def test_a_day_is_exported_in_id_order_within_its_utc_bounds_without_denied_customers(
    workspace, s3_bucket, day_of_events
):
    ids, customer = day_of_events, day_of_events["customer"]
    export = run(workspace, scheduled(workspace, s3_destination(workspace, s3_bucket)))

    assert s3_bucket.object_keys() == [FOLDER + "manifest.json", FOLDER + "part-00001.csv.gz"]
    assert s3_bucket.text(FOLDER + "part-00001.csv.gz") == (
        CSV_HEADER + f"{ids['first']},purchase,{customer},u-ana,2026-03-04T00:00:00.000000Z,"
        '2026-03-04T00:00:02.000000Z,"{""value"": 10.5}","{""ip"": ""203.0.113.7""}"\n'
        + f"{ids['anonymous']},page,,,2026-03-04T08:30:00.000000Z,"
        '2026-03-04T08:30:02.000000Z,"{""path"": ""/a,\\""b\\""""}",{}\n'
        + f"{ids['last']},signup,{customer},u-ana,2026-03-04T23:59:59.999999Z,"
        "2026-03-05T00:00:01.999999Z,{},{}\n"
    )
    body = s3_bucket.body(FOLDER + "part-00001.csv.gz")
    part = {"key": FOLDER + "part-00001.csv.gz", "rows": 3, "bytes": len(body),
            "sha256": sha(body), "first_id": ids["first"], "last_id": ids["last"]}  # fmt: skip
    assert s3_bucket.json(FOLDER + "manifest.json") == {
        "version": 1, "day": "2026-03-04", "destination": "lake", "event_names": [],
        "format": "csv", "gzip": True,
        "columns": ["id", "name", "customer_id", "external_id", "occurred_at", "received_at",
                    "properties", "context"],
        "rows": 3, "objects": [part], "exported_at": "2026-03-05T01:00:00+00:00",
    }  # fmt: skip
    assert (export.status, export.rows, export.objects_written, export.checkpoint) == (
        JobStatus.SUCCEEDED,
        3,
        1,
        ids["last"],
    )
    assert (export.parts, export.manifest_key) == ([part], FOLDER + "manifest.json")


def test_parts_hold_at_most_the_part_size_and_jsonl_keeps_json_values(
    workspace, s3_bucket, day_of_events, monkeypatch
):
    monkeypatch.setattr(exports, "PART_ROWS", 2)
    monkeypatch.setattr(exports, "PAGE_ROWS", 1)
    ids, customer = day_of_events, day_of_events["customer"]
    destination = s3_destination(workspace, s3_bucket, format="jsonl")
    export = run(workspace, scheduled(workspace, destination))

    assert s3_bucket.object_keys() == [
        FOLDER + "manifest.json", FOLDER + "part-00001.jsonl.gz", FOLDER + "part-00002.jsonl.gz",
    ]  # fmt: skip
    assert s3_bucket.jsonl(FOLDER + "part-00001.jsonl.gz") == [
        {"id": ids["first"], "name": "purchase", "customer_id": customer, "external_id": "u-ana",
         "occurred_at": "2026-03-04T00:00:00.000000Z",
         "received_at": "2026-03-04T00:00:02.000000Z", "properties": {"value": 10.5},
         "context": {"ip": "203.0.113.7"}},
        {"id": ids["anonymous"], "name": "page", "customer_id": None, "external_id": None,
         "occurred_at": "2026-03-04T08:30:00.000000Z",
         "received_at": "2026-03-04T08:30:02.000000Z", "properties": {"path": '/a,"b"'},
         "context": {}},
    ]  # fmt: skip
    assert [row["id"] for row in s3_bucket.jsonl(FOLDER + "part-00002.jsonl.gz")] == [ids["last"]]
    manifest = s3_bucket.json(FOLDER + "manifest.json")
    assert [(o["key"], o["rows"], o["first_id"], o["last_id"]) for o in manifest["objects"]] == [
        (FOLDER + "part-00001.jsonl.gz", 2, ids["first"], ids["anonymous"]),
        (FOLDER + "part-00002.jsonl.gz", 1, ids["last"], ids["last"]),
    ]
    assert (export.rows, export.objects_written) == (3, 2)


def test_an_export_resumes_after_its_checkpoint_rewriting_the_unrecorded_part(
    workspace, s3_bucket, day_of_events, monkeypatch
):
    monkeypatch.setattr(exports, "PART_ROWS", 1)
    ids = day_of_events
    export = run(workspace, scheduled(workspace, s3_destination(workspace, s3_bucket)))
    written = {key: s3_bucket.body(key) for key in s3_bucket.object_keys()}
    # As if the worker died after uploading part 2 and before recording it: part 1 is
    # recorded (and, to show it is not written again, gone from the bucket).
    with workspace_scope(workspace.id):
        EventExport.objects.filter(id=export.id).update(
            status=JobStatus.RUNNING, heartbeat_at=at("2026-03-05T00:40:00"),
            checkpoint=ids["first"], objects_written=1, parts=export.parts[:1], rows=1,
            finished_at=None, manifest_key="",
        )  # fmt: skip
    s3_bucket.moto.client().delete_object(Bucket=s3_bucket.name, Key=FOLDER + "part-00001.csv.gz")
    s3_bucket.moto.client().delete_object(Bucket=s3_bucket.name, Key=FOLDER + "manifest.json")

    resumed = run(workspace, export)

    assert s3_bucket.object_keys() == [
        FOLDER + "manifest.json", FOLDER + "part-00002.csv.gz", FOLDER + "part-00003.csv.gz",
    ]  # fmt: skip
    for key in (FOLDER + "part-00002.csv.gz", FOLDER + "part-00003.csv.gz"):
        assert s3_bucket.body(key) == written[key]
    assert s3_bucket.json(FOLDER + "manifest.json")["objects"] == export.parts
    assert (resumed.status, resumed.rows, resumed.objects_written, resumed.attempts) == (
        JobStatus.SUCCEEDED,
        3,
        3,
        2,
    )


def test_exporting_a_day_again_rewrites_it_and_deletes_parts_no_longer_needed(
    workspace, s3_bucket, day_of_events, monkeypatch
):
    monkeypatch.setattr(exports, "PART_ROWS", 1)
    destination = s3_destination(workspace, s3_bucket)
    first = run(workspace, scheduled(workspace, destination))
    assert first.objects_written == 3

    again = run(workspace, scheduled(workspace, destination, event_names=["signup"], again=True))

    assert again.id == first.id
    assert s3_bucket.object_keys() == [FOLDER + "manifest.json", FOLDER + "part-00001.csv.gz"]
    assert s3_bucket.text(FOLDER + "part-00001.csv.gz").splitlines()[1].split(",")[:2] == [
        str(day_of_events["last"]),
        "signup",
    ]
    assert (again.rows, again.event_names, again.attempts) == (1, ["signup"], 1)


def test_a_workspace_that_requires_vendor_consent_exports_only_granted_customers(
    workspace, s3_bucket, day_of_events
):
    with workspace_scope(workspace.id):
        ProfileSettings.objects.create(workspace=workspace, vendor_consent_required=True)
        allowed = CustomerFactory(workspace=workspace, external_id="u-yes",
                                  consent_vendors={"lake": {"status": "granted"}})  # fmt: skip
        granted = Event.objects.create(
            workspace=workspace, customer=allowed, name="purchase",
            occurred_at=at("2026-03-04T12:00:00"), message_id="m-yes", source="api",
        )  # fmt: skip

    export = run(workspace, scheduled(workspace, s3_destination(workspace, s3_bucket)))

    rows = s3_bucket.text(FOLDER + "part-00001.csv.gz").splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == [str(granted.id)]
    assert export.rows == 1


def test_a_day_without_events_writes_only_the_manifest(workspace, s3_bucket):
    export = run(workspace, scheduled(workspace, s3_destination(workspace, s3_bucket)))

    assert s3_bucket.object_keys() == [FOLDER + "manifest.json"]
    assert s3_bucket.json(FOLDER + "manifest.json")["objects"] == []
    assert (export.status, export.rows, export.objects_written) == (JobStatus.SUCCEEDED, 0, 0)


@pytest.fixture
def s3_stand_in():
    fake = FakeServer().start()
    yield fake
    fake.stop()


def test_throttling_queues_the_export_again_with_a_backoff(
    workspace, s3_bucket, day_of_events, s3_stand_in
):
    s3_stand_in.answer_when(lambda request: True, Answer(
        503, "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>",
        {"Content-Type": "application/xml"},
    ))  # fmt: skip
    destination = s3_destination(workspace, s3_bucket, endpoint_url=s3_stand_in.url)

    export = run(workspace, scheduled(workspace, destination))

    assert (export.status, export.error, export.checkpoint) == (
        JobStatus.QUEUED,
        "S3 SlowDown: Reduce your request rate.",
        0,
    )
    assert export.retry_at == at(NOW[:19]) + EventExport.FIRST_BACKOFF


def test_a_missing_bucket_fails_the_export_and_disables_the_destination(
    workspace, s3_bucket, day_of_events
):
    destination = s3_destination(workspace, s3_bucket, bucket="masivo-gone")

    export = run(workspace, scheduled(workspace, destination))

    assert (export.status, export.error) == (
        JobStatus.FAILED,
        "the bucket 'masivo-gone' does not exist (NoSuchBucket)",
    )
    with workspace_scope(workspace.id):
        destination.refresh_from_db()
    assert (destination.status, destination.disabled_reason) == (
        Destination.Status.DISABLED,
        "the bucket 'masivo-gone' does not exist (NoSuchBucket)",
    )


@pytest.mark.parametrize(
    ("day", "message"),
    [(date(2026, 3, 5), "a day before today (UTC): its events are complete"),
     (date(2026, 4, 1), "a day before today (UTC): its events are complete")],
)  # fmt: skip
def test_a_day_not_over_yet_is_refused(workspace, s3_bucket, day, message):
    destination = s3_destination(workspace, s3_bucket)

    with workspace_scope(workspace.id), pytest.raises(InvalidInput, match=re.escape(message)):
        event_export_schedule(destination=destination, day=day, now=at("2026-03-05T23:00:00"))
    with workspace_scope(workspace.id):
        assert not EventExport.objects.exists()


def test_a_marketer_may_not_export_events(workspace, s3_bucket):
    destination = s3_destination(workspace, s3_bucket)

    with workspace_scope(workspace.id), pytest.raises(NotAllowed):
        event_export_schedule(destination=destination, day=DAY, actor=Actor(role="marketer"),
                              now=at(NOW[:19]))  # fmt: skip


def test_the_daily_schedule_asks_once_for_yesterday_of_each_exporting_destination(
    workspace, other_workspace, s3_bucket
):
    exporting = s3_destination(workspace, s3_bucket, export_events=True,
                               export_event_names=["purchase"])  # fmt: skip
    with workspace_scope(workspace.id):
        quiet = Destination.objects.create(
            workspace=workspace, kind="s3", name="Quiet", key="quiet",
            config={"bucket": s3_bucket.name},
        )  # fmt: skip
    with workspace_scope(other_workspace.id):
        Destination.objects.create(
            workspace=other_workspace, kind="s3", name="Off", key="off", status="disabled",
            config={"bucket": s3_bucket.name, "export_events": True},
        )  # fmt: skip

    first = event_exports_daily(now=at(NOW[:19]))
    second = event_exports_daily(now=at(NOW[:19]))

    with workspace_scope(workspace.id):
        export = EventExport.objects.get()
    assert first == second == [(workspace.id, export.id)]
    assert (export.destination_id, export.day, export.event_names, export.status) == (
        exporting.id,
        DAY,
        ["purchase"],
        JobStatus.QUEUED,
    )
    assert quiet.id != export.destination_id
