"""An S3 audience sync end to end: the sync engine (destinations.syncing) drives the connector
against moto's server, full then incremental, and a member's consent for the vendor counts."""

import pytest
from django.utils import timezone

from audiences.membership import cause_list, membership_apply
from destinations import services
from destinations.connectors.s3 import S3Connector
from destinations.models import SyncRun
from destinations.syncing import sync_run_execute
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from tests.factories import AudienceFactory, CustomerFactory
from tests.fakes import s3 as fake_s3
from tests.fakes.s3 import KEYS

moto_s3, s3_bucket = fake_s3.moto_s3, fake_s3.s3_bucket

pytestmark = pytest.mark.django_db

ADMIN = Actor(role=Role.ADMIN)
HEADER = "customer_id,external_id,email,phone,first_name,last_name,country"


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        yield workspace


def members(workspace, audience, entering=(), leaving=()):
    membership_apply(workspace_id=workspace.id, audience_id=audience.id,
                     entering=[p.id for p in entering], leaving=[p.id for p in leaving],
                     cause=cause_list("test"), now=timezone.now())  # fmt: skip


def test_a_full_then_an_incremental_run_write_their_folders(scope, s3_bucket, monkeypatch):
    monkeypatch.setattr(S3Connector, "batch_size", 2)
    audience = AudienceFactory(workspace=scope)
    people = [CustomerFactory(workspace=scope, external_id=f"u-{n}",
                              email=f"m{n}@example.com") for n in range(3)]  # fmt: skip
    denied = CustomerFactory(workspace=scope, external_id="u-no", email="no@example.com",
                             consent_vendors={"s3": {"status": "denied"}})  # fmt: skip
    members(scope, audience, entering=[*people, denied])
    destination = services.destination_create(
        workspace=scope, kind="s3", name="Lake", actor=ADMIN,
        config={"bucket": s3_bucket.name, "endpoint_url": s3_bucket.endpoint_url},
        credentials={"access_key_id": KEYS["aws_access_key_id"],
                     "secret_access_key": KEYS["aws_secret_access_key"]},
    )  # fmt: skip
    sync = services.sync_create(destination=destination, audience=audience, actor=ADMIN,
                                mode="full", remote_audience_name="VIP")  # fmt: skip

    full = sync_run_execute(run_id=SyncRun.objects.get(sync=sync).id)

    sync.refresh_from_db()
    audience_folder = f"masivo/audiences/{sync.remote_audience_id}/"
    day = full.remote_state["run_at"][:10]
    folder = f"{audience_folder}dt={day}/run-{full.session_id}/"
    assert sync.remote_audience_id.startswith("vip-")
    assert s3_bucket.object_keys() == [
        folder + "manifest.json",
        folder + "snapshot-00001.csv.gz",
        folder + "snapshot-00002.csv.gz",
        audience_folder + "latest.json",
    ]
    rows = [s3_bucket.text(folder + f"snapshot-0000{n}.csv.gz").splitlines() for n in (1, 2)]
    first, second, third = (f"{p.id},u-{n},m{n}@example.com,,,," for n, p in enumerate(people))
    assert rows == [[HEADER, first, second], [HEADER, third]]
    assert s3_bucket.json(audience_folder + "latest.json")["folder"] == folder
    assert [o["rows"] for o in full.remote_state["objects"]] == [2, 1]
    assert (full.status, full.added, full.skipped) == ("succeeded", 3, {"no_vendor_consent": 1})

    sync.mode = "incremental"
    sync.save()
    members(scope, audience, leaving=[people[0]])
    incremental = sync_run_execute(run_id=services.sync_run_request(sync=sync).id)

    changes = f"{audience_folder}dt={day}/run-{incremental.session_id}/"
    assert [key for key in s3_bucket.object_keys() if key.startswith(changes)] == [
        changes + "manifest.json", changes + "removed-00001.csv.gz",
    ]  # fmt: skip
    assert s3_bucket.text(changes + "removed-00001.csv.gz").splitlines() == [
        f"{HEADER},op",
        f"{people[0].id},u-0,m0@example.com,,,,,removed",
    ]
    assert s3_bucket.json(changes + "manifest.json")["mode"] == "changes"
    assert s3_bucket.json(audience_folder + "latest.json")["folder"] == folder
    assert (incremental.status, incremental.removed) == ("succeeded", 1)
