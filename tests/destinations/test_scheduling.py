"""When syncs run: on a schedule, after each recalculation, and streaming (membership changes
batched, a run planned for just those customers); and the beat's sweep of lost runs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.membership import cause_list, membership_apply
from audiences.models import Recalculation
from destinations import scheduling, services
from destinations.identifiers import sha256_hex
from destinations.models import AudienceSync, SyncRun
from destinations.syncing import sync_run_execute
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from profiles.consent import consent_update
from tests.factories import AudienceFactory, CustomerFactory
from tests.feeds.support import wait_until_committed_rows_readable

pytestmark = pytest.mark.django_db(transaction=True)
ADMIN = Actor(role=Role.ADMIN)


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        yield workspace


def consented(workspace, email):
    customer = CustomerFactory(workspace=workspace, email=email)
    return consent_update(customer=customer, changes={"advertising": "granted"}, source="t")


def linked(workspace, audience, trigger, **options):
    destination = services.destination_create(workspace=workspace, kind="test", name="P",
                                              config={}, credentials={}, actor=ADMIN)  # fmt: skip
    sync = services.sync_create(destination=destination, audience=audience, actor=ADMIN,
                                trigger=trigger, remote_audience_name="A", **options)  # fmt: skip
    first = SyncRun.objects.get(sync=sync)
    sync_run_execute(run_id=first.id)
    return sync


def test_a_scheduled_sync_is_due_after_its_interval(scope, platform):
    sync = linked(scope, AudienceFactory(workspace=scope), "schedule", interval_minutes=30)
    later = timezone.now() + timedelta(minutes=31)

    assert scheduling.syncs_due(now=timezone.now())["schedule"] == []
    assert scheduling.syncs_due(now=later)["schedule"] == [(scope.id, sync.id)]
    run_id = scheduling.sync_due_request(sync_id=sync.id, now=later)

    assert SyncRun.objects.get(id=run_id).reason == "schedule"
    sync.refresh_from_db()
    assert sync.next_run_at == later + timedelta(minutes=30)


def test_a_recalculation_sync_runs_once_after_each_successful_recalculation(scope, platform):
    audience = AudienceFactory(workspace=scope)
    sync = linked(scope, audience, "recalculation")
    assert scheduling.syncs_due()["recalculation"] == []

    Recalculation.objects.create(workspace=scope, audience=audience, version=1, reason="rules",
                                 status="succeeded", finished_at=timezone.now())  # fmt: skip
    assert scheduling.syncs_due()["recalculation"] == [(scope.id, sync.id)]
    run_id = scheduling.sync_due_request(sync_id=sync.id)

    assert SyncRun.objects.get(id=run_id).reason == "recalculation"
    assert scheduling.syncs_due()["recalculation"] == []


def test_a_streaming_sync_sends_just_the_customers_who_moved(scope, platform):
    audience = AudienceFactory(workspace=scope)
    ana, bob = consented(scope, "ana@example.com"), consented(scope, "bob@example.com")
    sync = linked(scope, audience, "streaming", interval_minutes=1)
    now = timezone.now()
    membership_apply(workspace_id=scope.id, audience_id=audience.id, entering=[ana.id, bob.id],
                     leaving=(), cause=cause_list("t"), now=now)  # fmt: skip
    wait_until_committed_rows_readable()
    AudienceSync.objects.filter(id=sync.id).update(next_run_at=now)

    assert scheduling.syncs_due(now=now)["streaming"] == [(scope.id, sync.id)]
    run = SyncRun.objects.get(id=scheduling.sync_due_request(sync_id=sync.id))
    assert (run.reason, run.customer_ids) == ("streaming", sorted([ana.id, bob.id]))
    run = sync_run_execute(run_id=run.id)
    assert (run.status, run.added) == ("succeeded", 2)
    assert platform.audiences["a"] == {sha256_hex("ana@example.com"),
                                       sha256_hex("bob@example.com")}  # fmt: skip

    membership_apply(workspace_id=scope.id, audience_id=audience.id, entering=(),
                     leaving=[bob.id], cause=cause_list("t"), now=now)  # fmt: skip
    wait_until_committed_rows_readable()
    run = SyncRun.objects.get(id=scheduling.sync_due_request(sync_id=sync.id))
    assert run.customer_ids == [bob.id]
    assert sync_run_execute(run_id=run.id).removed == 1
    assert platform.audiences["a"] == {sha256_hex("ana@example.com")}
    # Nothing moved: no run.
    assert scheduling.sync_due_request(sync_id=sync.id) is None


def test_the_sweep_wakes_runs_whose_worker_died(scope, platform):
    sync = linked(scope, AudienceFactory(workspace=scope), "schedule")
    run = services.sync_run_request(sync=sync)
    SyncRun.objects.filter(id=run.id).update(
        status="running", heartbeat_at=timezone.now() - timedelta(minutes=5)
    )

    assert (scope.id, run.id) in scheduling.runs_to_wake()
