"""/api/v1/destinations/syncs: create (a remote audience made at the Meta fake, or an existing
one), filter, change, run now / pause / resume with their 409s, the run history, one run and
its replay, failed records; bad input named by field, roles, and another workspace's ids."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from destinations.models import AudienceSync, SyncRecord, SyncRun
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from tests.conftest import bearer_client, mint_secret_key
from tests.destinations.test_api_destinations import ACCOUNT, URL, connect, meta, post
from tests.factories import AudienceFactory
from tests.fakes.meta import meta_fake, meta_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

SYNCS = f"{URL}/syncs"
__all__ = ["meta"]  # the fixture, imported


@pytest.fixture
def audience(workspace):
    with workspace_scope(workspace.id):
        return AudienceFactory(workspace=workspace, name="VIP")


@pytest.fixture
def destination_id(api, meta):
    return connect(api)["id"]


def sync_body(audience, destination_id, **changes) -> dict:
    return {"audience_id": audience.id, "destination_id": destination_id,
            "remote_audience_name": "Masivo VIP"} | changes  # fmt: skip


def create(api, audience, destination_id, **changes) -> dict:
    response = post(api, SYNCS, sync_body(audience, destination_id, **changes))
    assert response.status_code == 201, response.content
    return response.json()


def without_times(body: dict) -> dict:
    times = ("id", "created_at", "updated_at", "next_run_at", "last_run")
    return {k: v for k, v in body.items() if k not in times}


def test_create_makes_the_remote_audience_and_queues_the_first_run(
    api, workspace, audience, destination_id, meta
):
    answer = create(api, audience, destination_id, mode="full", interval_minutes=30)

    remote_id = answer["remote_audience_id"]
    assert meta.audiences[remote_id].name == "Masivo VIP"
    assert meta.audiences[remote_id].account_id == ACCOUNT
    assert without_times(answer) == {
        "audience_id": audience.id, "audience_name": "VIP", "destination_id": destination_id,
        "destination_name": "Meta ads", "mode": "full", "trigger": "schedule",
        "interval_minutes": 30, "identifiers": ["email", "phone"],
        "remote_audience_id": remote_id, "remote_audience_name": "Masivo VIP",
        "status": "active", "last_run_at": None, "remote_size": 0, "lag_seconds": None,
        "created_by": answer["created_by"],
    }  # fmt: skip
    assert without_times_run(answer["last_run"]) == {
        "sync_id": answer["id"], "status": "queued", "phase": "plan", "mode": "full",
        "reason": "created", "to_add": 0, "to_remove": 0, "added": 0, "removed": 0, "failed": 0,
        "skipped": {}, "percent": 100, "duration_ms": None, "attempts": 0, "error": "",
        "error_samples": [], "started_at": None, "finished_at": None,
    }  # fmt: skip
    assert api.get(f"{SYNCS}/{answer['id']}").json() == answer


def without_times_run(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in ("id", "created_at")}


def test_an_existing_remote_audience_and_the_filters(api, workspace, audience, destination_id):
    with workspace_scope(workspace.id):
        other = AudienceFactory(workspace=workspace, name="Churned")
    first = create(
        api, audience, destination_id, remote_audience_name="", remote_audience_id="6000000001",
        identifiers=["email", "external_id"],
    )  # fmt: skip
    second = create(api, other, destination_id)

    by_audience = api.get(SYNCS, {"audience_id": audience.id}).json()["results"]
    by_destination = api.get(SYNCS, {"destination_id": destination_id}).json()["results"]
    bad_filter = api.get(SYNCS, {"audience_id": "x"})

    assert (first["remote_audience_id"], first["identifiers"]) == (
        "6000000001", ["email", "external_id"],
    )  # fmt: skip
    assert [s["id"] for s in by_audience] == [first["id"]]
    assert [s["id"] for s in by_destination] == [second["id"], first["id"]]
    assert bad_filter.status_code == 400
    assert bad_filter.json()["errors"] == {"audience_id": ["a whole number, 1 or more"]}
    assert api.get(f"{URL}/{destination_id}").json()["sync_count"] == 2


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"identifiers": ["email", "fax"]}, "identifiers.1",
         "Meta Custom Audiences takes email, phone, first_name, last_name, country, external_id, "
         "madid"),
        ({"identifiers": [7]}, "identifiers.0", "must be a string"),
        ({"identifiers": []}, "identifiers", None),
        ({"mode": "sometimes"}, "mode", None),
        ({"interval_minutes": 0}, "interval_minutes", "1-44640 minutes"),
        ({"remote_audience_name": ""}, "remote_audience_id", None),
        ({"remote_audience_id": "1"}, "remote_audience_id", None),
        ({"audience_id": 0}, "audience_id", None),
        ({"surprise": True}, "surprise", "unknown field"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(
    api, workspace, audience, destination_id, changes, field, message
):
    response = post(api, SYNCS, sync_body(audience, destination_id, **changes))

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == [field], errors
    if message is not None:
        assert errors[field] == [message]
    with workspace_scope(workspace.id):
        assert AudienceSync.objects.count() == 0


def test_a_foreign_audience_or_destination_is_refused_as_missing(
    api, other_api, other_workspace, audience, destination_id
):
    with workspace_scope(other_workspace.id):
        foreign = AudienceFactory(workspace=other_workspace)
    theirs = {"kind": "meta", "name": "Theirs", "config": {"ad_account_id": "1"},
              "credentials": {"access_token": "t"}}  # fmt: skip
    foreign_destination = post(other_api, URL, theirs).json()

    by_audience = post(api, SYNCS, sync_body(foreign, destination_id))
    by_destination = post(api, SYNCS, sync_body(audience, foreign_destination["id"]))

    assert by_audience.json()["errors"] == {
        "audience_id": [f"no audience {foreign.id} in this workspace"]
    }
    assert by_destination.json()["errors"] == {
        "destination_id": [f"no destination {foreign_destination['id']} in this workspace"]
    }


def test_a_disabled_destination_refuses_new_syncs_with_409(api, audience, destination_id):
    post(api, f"{URL}/{destination_id}/disable")

    response = post(api, SYNCS, sync_body(audience, destination_id))

    assert response.status_code == 409
    assert response.json() == {
        "detail": "the destination is disabled; enable it first", "code": "conflict",
        "errors": {"destination_id": ["the destination is disabled; enable it first"]},
    }  # fmt: skip


def test_the_list_takes_the_same_queries_for_one_sync_or_many(api, workspace, destination_id,
                                                              history):  # fmt: skip
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(SYNCS).status_code == 200
        return len(captured)

    one = queries()
    with workspace_scope(workspace.id):
        for name in ("A", "B", "C"):
            audience = AudienceFactory(workspace=workspace, name=name)
            sync = AudienceSync.objects.create(workspace=workspace, audience=audience,
                                               destination_id=destination_id,
                                               remote_audience_id=name)  # fmt: skip
            SyncRun.objects.create(workspace=workspace, sync=sync, mode="incremental",
                                   status="succeeded", finished_at=timezone.now())  # fmt: skip

    assert queries() == one
    assert len(api.get(SYNCS).json()["results"]) == 4


def test_patch_changes_mode_interval_and_identifiers(api, audience, destination_id):
    sync_id = create(api, audience, destination_id)["id"]

    patched = api.patch(
        f"{SYNCS}/{sync_id}", {"mode": "full", "interval_minutes": 15, "identifiers": ["phone"]},
        content_type="application/json",
    )  # fmt: skip

    body = patched.json()
    assert (body["mode"], body["interval_minutes"], body["identifiers"]) == ("full", 15, ["phone"])


def test_run_now_returns_the_open_run_and_pause_makes_it_409(api, workspace, audience,
                                                             destination_id):  # fmt: skip
    sync = create(api, audience, destination_id)

    ran = post(api, f"{SYNCS}/{sync['id']}/run")
    paused = post(api, f"{SYNCS}/{sync['id']}/pause")
    refused = post(api, f"{SYNCS}/{sync['id']}/run")
    resumed = post(api, f"{SYNCS}/{sync['id']}/resume")

    assert ran.status_code == 202
    assert ran.json()["id"] == sync["last_run"]["id"]  # one open run per sync
    assert paused.json()["status"] == "paused"
    assert refused.status_code == 409
    assert refused.json() == {
        "detail": "the sync is paused; resume it first", "code": "conflict",
        "errors": {"status": ["the sync is paused; resume it first"]},
    }  # fmt: skip
    assert resumed.json()["status"] == "active"
    with workspace_scope(workspace.id):
        assert SyncRun.objects.count() == 1


@pytest.fixture
def history(api, workspace, audience, destination_id):
    """A sync whose first run succeeded, a second that is dead, and two failed records."""
    sync_id = create(api, audience, destination_id)["id"]
    now = timezone.now()
    with workspace_scope(workspace.id):
        first = SyncRun.objects.get()
        SyncRun.objects.filter(id=first.id).update(
            status="succeeded", phase="done", to_add=10, added=8, failed=2,
            skipped={"no_consent": 3, "no_identifier": 1}, started_at=now - timedelta(minutes=10),
            finished_at=now - timedelta(minutes=10) + timedelta(milliseconds=1500),
        )  # fmt: skip
        dead = SyncRun.objects.create(
            workspace=workspace, sync_id=sync_id, mode="incremental", status="dead",
            phase="add", to_add=5, added=1, error="Meta kept answering 500",
            error_samples=[{"customer_id": 7, "op": "add", "error": "invalid email"}],
            started_at=now - timedelta(minutes=2), finished_at=now - timedelta(minutes=1),
        )  # fmt: skip
        for customer_id, attempts in ((7, 2), (9, 1)):
            SyncRecord.objects.create(
                workspace=workspace, sync_id=sync_id, customer_id=customer_id,
                failed_run_id=first.id, attempts=attempts, error=f"invalid entry {customer_id}",
            )  # fmt: skip
        SyncRecord.objects.create(workspace=workspace, sync_id=sync_id, customer_id=11,
                                  sent={"email": "x"}, wanted={"email": "x"})  # fmt: skip
    return sync_id, first, dead


def test_runs_newest_first_with_counts_and_one_run(api, history):
    sync_id, first, dead = history

    runs = api.get(f"{SYNCS}/{sync_id}/runs").json()["results"]
    one = api.get(f"{SYNCS}/{sync_id}/runs/{first.id}").json()
    sync = api.get(f"{SYNCS}/{sync_id}").json()

    assert [run["id"] for run in runs] == [dead.id, first.id]
    assert without_times_run(one) | {"started_at": None, "finished_at": None} == {
        "sync_id": sync_id, "status": "succeeded", "phase": "done", "mode": "incremental",
        "reason": "created", "to_add": 10, "to_remove": 0, "added": 8, "removed": 0, "failed": 2,
        "skipped": {"no_consent": 3, "no_identifier": 1}, "percent": 100, "duration_ms": 1500,
        "attempts": 0, "error": "", "error_samples": [], "started_at": None, "finished_at": None,
    }  # fmt: skip
    assert runs[0]["percent"] == 20
    assert runs[0]["error_samples"] == [{"customer_id": 7, "op": "add", "error": "invalid email"}]
    assert sync["last_run"]["id"] == dead.id
    assert 598 <= sync["lag_seconds"] <= 600  # 10 minutes less 1.5 s ago


def test_failed_records_with_reasons(api, history):
    sync_id, first, _ = history

    records = api.get(f"{SYNCS}/{sync_id}/failed-records").json()["results"]

    assert [{k: r[k] for k in ("customer_id", "error", "attempts", "failed_run_id")}
            for r in records] == [
        {"customer_id": 9, "error": "invalid entry 9", "attempts": 1, "failed_run_id": first.id},
        {"customer_id": 7, "error": "invalid entry 7", "attempts": 2, "failed_run_id": first.id},
    ]  # fmt: skip


def test_replay_a_dead_run_queues_a_new_one_and_a_succeeded_run_is_409(api, workspace, history):
    sync_id, first, dead = history

    replayed = post(api, f"{SYNCS}/{sync_id}/runs/{dead.id}/replay")
    refused = post(api, f"{SYNCS}/{sync_id}/runs/{first.id}/replay")

    assert replayed.status_code == 202
    assert (replayed.json()["status"], replayed.json()["reason"]) == ("queued", "replay")
    assert replayed.json()["id"] not in (first.id, dead.id)
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "only a dead or failed run can be replayed; this one is succeeded"
    )
    assert api.get(f"{SYNCS}/{sync_id}/runs/{dead.id}/replay").status_code == 405


def test_a_run_of_another_sync_is_404(api, workspace, destination_id, history):
    first = history[1]
    with workspace_scope(workspace.id):
        other = AudienceFactory(workspace=workspace)
    other_sync = create(api, other, destination_id)["id"]

    assert api.get(f"{SYNCS}/{other_sync}/runs/{first.id}").status_code == 404
    assert post(api, f"{SYNCS}/{other_sync}/runs/{first.id}/replay").status_code == 404


def test_viewers_read_and_may_not_run_pause_or_delete(api, workspace, history):
    sync_id, first, dead = history
    viewer = bearer_client(mint_secret_key(workspace, Role.VIEWER))

    reads = [viewer.get(f"{SYNCS}/{sync_id}{suffix}").status_code
             for suffix in ("", "/runs", f"/runs/{first.id}", "/failed-records")]  # fmt: skip
    writes = [post(viewer, f"{SYNCS}/{sync_id}/run"), post(viewer, f"{SYNCS}/{sync_id}/pause"),
              post(viewer, f"{SYNCS}/{sync_id}/runs/{dead.id}/replay"),
              viewer.delete(f"{SYNCS}/{sync_id}")]  # fmt: skip

    assert reads == [200] * 4
    assert [r.status_code for r in writes] == [403] * 4
    assert writes[0].json() == {
        "detail": "the viewer role may not edit marketing", "code": "permission_denied",
    }  # fmt: skip
    with workspace_scope(workspace.id):
        assert AudienceSync.objects.get().status == "active"
        assert SyncRun.objects.count() == 2


def test_a_marketer_creates_syncs(workspace, audience, destination_id):
    marketer = bearer_client(mint_secret_key(workspace, Role.MARKETER))

    assert post(marketer, SYNCS, sync_body(audience, destination_id)).status_code == 201


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("patch", ""), ("delete", ""), ("post", "/run"), ("post", "/pause"),
     ("post", "/resume"), ("get", "/runs"), ("get", "/failed-records")],
)  # fmt: skip
def test_another_workspaces_sync_is_404(api, other_api, history, method, suffix):
    sync_id = history[0]

    response = getattr(other_api, method)(
        f"{SYNCS}/{sync_id}{suffix}", {}, content_type="application/json"
    )

    assert response.status_code == 404
    assert other_api.get(f"{SYNCS}/{sync_id}/runs/{history[1].id}").status_code == 404


def test_delete_stops_syncing(api, workspace, history):
    sync_id = history[0]

    assert api.delete(f"{SYNCS}/{sync_id}").status_code == 204
    with workspace_scope(workspace.id):
        assert (AudienceSync.objects.count(), SyncRun.objects.count()) == (0, 0)
