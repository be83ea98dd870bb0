"""Recalculations and list uploads as jobs: failures are recorded and isolated, transient errors
retry with backoff, and work whose worker went silent is taken again and resumed."""

import io
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from audiences import lists
from audiences.lists import LIST_UPLOAD_TASK, list_upload_create, list_upload_run
from audiences.membership import MEMBERSHIP_LOCK_NAMESPACE
from audiences.models import Audience, ListUpload, Membership, Recalculation
from audiences.recalculation import recalculation_create, recalculation_run
from audiences.scheduling import audiences_due_recalculate
from audiences.services import audience_create
from audiences.tasks import resume_stalled_list_uploads
from masivo.jobs import jobs_to_wake
from masivo.tenancy.context import workspace_scope
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

MEXICO = {"version": 1, "root": {"profile": {"field": "country", "op": "eq", "value": "MX"}}}


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        yield workspace


def rules_audience(workspace, name, rules=MEXICO, schedule="daily"):
    return audience_create(
        workspace=workspace, data={"name": name, "rules": rules, "schedule": schedule}
    )


def break_rules(audience):
    """Rules stored in a shape this version cannot read (as after a bad manual edit)."""
    Audience.objects.filter(id=audience.id).update(rules={"version": 99, "root": {}})


def test_a_failing_recalculation_ends_failed_with_its_reason_and_the_next_run_stays(scope):
    audience = rules_audience(scope, "Broken")
    break_rules(audience)
    before = timezone.now()

    run = recalculation_run(recalculation=recalculation_create(audience=audience, reason="test"))

    stored = Recalculation.objects.get(id=run.id)
    assert (stored.status, stored.attempts, stored.size) == ("failed", 1, None)
    assert stored.error.startswith("InvalidRules: ")
    assert stored.finished_at >= before
    audience.refresh_from_db()
    assert audience.last_run_at == stored.finished_at
    assert audience.next_run_at == stored.finished_at + timedelta(days=1)


def test_one_failing_audience_never_blocks_the_others_of_its_workspace(scope):
    broken = rules_audience(scope, "Broken")
    mexico = rules_audience(scope, "Mexico")
    break_rules(broken)
    CustomerFactory(workspace=scope, country="MX")

    ran = audiences_due_recalculate(now=timezone.now())

    assert ran == 2
    statuses = dict(
        Recalculation.objects.filter(reason="schedule").values_list("audience_id", "status")
    )
    assert statuses == {broken.id: "failed", mexico.id: "succeeded"}
    assert Audience.objects.get(id=mexico.id).size == 1


def test_the_api_shows_a_failed_run_and_its_error(scope, api):
    audience = rules_audience(scope, "Broken")
    break_rules(audience)
    recalculation_run(recalculation=recalculation_create(audience=audience, reason="test"))

    runs = api.get(f"/api/v1/audiences/{audience.id}/recalculate").json()

    assert [(run["reason"], run["status"]) for run in runs] == [
        ("test", "failed"), ("created", "queued")
    ]  # fmt: skip
    assert runs[0]["error"].startswith("InvalidRules: ")


def test_a_transient_error_queues_the_run_again_with_backoff(scope):
    audience = rules_audience(scope, "Mexico")
    run = recalculation_create(audience=audience, reason="test")
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], dbname=settings["NAME"],
        user=settings["USER"], password=settings["PASSWORD"], autocommit=True,
    ) as other:  # fmt: skip
        other.execute("SELECT pg_advisory_lock(%s, %s)", [MEMBERSHIP_LOCK_NAMESPACE, audience.id])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '100ms'")
        before = timezone.now()
        recalculation_run(recalculation=run)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    stored = Recalculation.objects.get(id=run.id)
    assert (stored.status, stored.attempts) == ("queued", 1)
    assert "lock timeout" in stored.error
    backoff = timedelta(seconds=10)  # Job.FIRST_BACKOFF
    assert before + backoff <= stored.retry_at <= timezone.now() + backoff
    assert recalculation_run(recalculation=stored).status == "queued"  # not due yet
    assert jobs_to_wake(Recalculation, reason="test", now=stored.retry_at) == [(scope.id, run.id)]


def test_a_run_whose_worker_went_silent_is_woken_and_taken_again(scope):
    audience = rules_audience(scope, "Mexico")
    CustomerFactory(workspace=scope, country="MX")
    run = recalculation_create(audience=audience, reason="test")
    long_ago = timezone.now() - timedelta(hours=1)
    Recalculation.objects.filter(id=run.id).update(
        status="running", attempts=1, started_at=long_ago, heartbeat_at=long_ago
    )

    assert jobs_to_wake(Recalculation, reason="test") == [(scope.id, run.id)]
    finished = recalculation_run(recalculation=run)

    assert (finished.status, finished.attempts, finished.entered) == ("succeeded", 2, 1)
    assert jobs_to_wake(Recalculation, reason="test") == []


def test_a_list_upload_killed_midway_resumes_after_its_checkpoint(scope, monkeypatch):
    vip = audience_create(workspace=scope, data={"name": "VIP", "kind": "list"})
    people = [CustomerFactory(workspace=scope, email=f"p{n}@example.com") for n in range(5)]
    content = "email\n" + "".join(f"p{n}@example.com\n" for n in range(5))
    upload = list_upload_create(
        audience=vip, upload=io.BytesIO(content.encode()), filename="vip.csv",
        identifier="email", create_missing=False, actor="test",
    )  # fmt: skip
    monkeypatch.setattr(lists, "BATCH", 2)
    # What a worker killed after its first batch leaves behind: rows 2-3 applied, checkpoint 3.
    upload.refresh_from_db()
    long_ago = timezone.now() - timedelta(hours=1)
    ListUpload.objects.filter(id=upload.id).update(
        status="running", attempts=1, heartbeat_at=long_ago, started_at=long_ago
    )
    first = lists._apply(upload, [(2, "p0@example.com"), (3, "p1@example.com")], long_ago)
    ListUpload.objects.filter(id=upload.id).update(
        next_row=3, rows_added=upload.rows_added, rows_already=upload.rows_already
    )

    list_upload_run(list_upload=upload)

    upload.refresh_from_db()
    assert first == []
    assert (upload.status, upload.attempts, upload.next_row) == ("succeeded", 2, 6)
    assert (upload.rows_added, upload.rows_already, upload.rows_invalid) == (5, 0, 0)
    assert set(Membership.objects.values_list("customer_id", flat=True)) == {p.id for p in people}
    assert Audience.objects.get(id=vip.id).size == 5


def test_an_upload_that_is_not_utf8_fails_with_the_reason(scope):
    vip = audience_create(workspace=scope, data={"name": "VIP", "kind": "list"})
    upload = list_upload_create(
        audience=vip, upload=io.BytesIO(b"email\n" + b"a@example.com\n" * 10 + b"\xff\xfe\n"),
        filename="vip.csv", identifier="email", create_missing=False, actor="test",
    )  # fmt: skip

    list_upload_run(list_upload=upload)

    upload.refresh_from_db()
    assert (upload.status, upload.error) == ("failed", "the file is not UTF-8 text")
    assert list_upload_run(list_upload=upload).status == "failed"  # finished: a no-op


def test_the_beat_wakes_a_silent_list_upload_and_not_a_fresh_one(scope, monkeypatch):
    woken = []
    monkeypatch.setattr(lists, "task_wake", lambda name, **kwargs: woken.append((name, kwargs)))
    vip = audience_create(workspace=scope, data={"name": "VIP", "kind": "list"})

    def create(content: bytes) -> ListUpload:
        return list_upload_create(
            audience=vip, upload=io.BytesIO(content), filename="vip.csv", identifier="email",
            create_missing=True, actor="test",
        )  # fmt: skip

    silent, fresh = create(b"a@example.com\n"), create(b"b@example.com\n")
    long_ago = timezone.now() - timedelta(hours=1)
    ListUpload.objects.filter(id=silent.id).update(
        status="running", attempts=1, created_at=long_ago, started_at=long_ago,
        heartbeat_at=long_ago,
    )  # fmt: skip

    assert resume_stalled_list_uploads() == 1
    assert woken == [(LIST_UPLOAD_TASK, {"workspace_id": scope.id, "upload_id": silent.id})]
    assert ListUpload.objects.get(id=fresh.id).status == "queued"
    finished = list_upload_run(list_upload=silent)
    assert (finished.status, finished.attempts, finished.rows_created) == ("succeeded", 2, 1)
