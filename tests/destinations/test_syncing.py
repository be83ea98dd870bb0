"""The audience-sync engine (destinations.syncing) against a minimal platform fake: plans by
consent and identifiers, incremental adds and removes across runs, identifier changes, full
replace in sessions, partial failures retried by the next run, throttling and backoff,
dead-lettering and replay, a batch in flight resent after a crash and applied once, a broken
destination disabled, streaming runs from the membership feed, erasure and vendor denial."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.membership import cause_list, membership_apply
from destinations import services
from destinations.identifiers import sha256_hex
from destinations.models import AudienceSync, Destination, SyncRecord, SyncRun
from destinations.syncing import sync_run_execute
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from profiles.consent import consent_update
from profiles.models import Customer
from tests.factories import AudienceFactory, CustomerFactory
from tests.fakes.base import Answer

pytestmark = pytest.mark.django_db

ADMIN = Actor(role=Role.ADMIN)
LIST = cause_list("test")


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        yield workspace


def customer(workspace, email, *, advertising="granted", **fields):
    person = CustomerFactory(workspace=workspace, email=email, **fields)
    if advertising:
        person = consent_update(customer=person, changes={"advertising": advertising},
                                source="test")  # fmt: skip
    return person


def enter(workspace, audience, *people):
    membership_apply(workspace_id=workspace.id, audience_id=audience.id,
                     entering=[p.id for p in people], leaving=(), cause=LIST,
                     now=timezone.now())  # fmt: skip


def leave(workspace, audience, *people):
    membership_apply(workspace_id=workspace.id, audience_id=audience.id, entering=(),
                     leaving=[p.id for p in people], cause=LIST, now=timezone.now())  # fmt: skip


def make_sync(workspace, audience, mode="incremental"):
    destination = services.destination_create(
        workspace=workspace, kind="test", name="Platform", config={}, credentials={},
        actor=ADMIN,
    )  # fmt: skip
    return services.sync_create(destination=destination, audience=audience, actor=ADMIN,
                                mode=mode, remote_audience_name="VIP")  # fmt: skip


def run_now(sync, reason="manual"):
    run = services.sync_run_request(sync=sync, reason=reason)
    return sync_run_execute(run_id=run.id)


def test_incremental_runs_send_consented_members_then_only_the_difference(scope, platform):
    audience = AudienceFactory(workspace=scope)
    ana = customer(scope, "ana@example.com")
    bob = customer(scope, "bob@example.com")
    denied = customer(scope, "no@example.com", advertising="denied")
    no_email = customer(scope, None)
    enter(scope, audience, ana, bob, denied, no_email)
    sync = make_sync(scope, audience)
    first = SyncRun.objects.get(sync=sync)  # queued by the creation

    first = sync_run_execute(run_id=first.id)

    assert first.status == "succeeded"
    assert (first.to_add, first.added, first.to_remove, first.removed, first.failed) == (
        2, 2, 0, 0, 0)  # fmt: skip
    assert first.skipped == {"no_consent": 1, "no_identifier": 1}
    assert platform.audiences["vip"] == {sha256_hex("ana@example.com"),
                                         sha256_hex("bob@example.com")}  # fmt: skip
    sync.refresh_from_db()
    assert sync.remote_size == 2

    # Bob leaves, Cara joins, Ana changes her email: one remove of Bob, one of Ana's old
    # address, then the adds of Cara and Ana's new one.
    cara = customer(scope, "cara@example.com")
    enter(scope, audience, cara)
    leave(scope, audience, bob)
    Customer.objects.filter(id=ana.id).update(email="ana.new@example.com")
    platform.applications.clear()

    second = run_now(sync)

    assert (second.to_add, second.added, second.to_remove, second.removed) == (2, 2, 2, 2)
    assert sorted(platform.applications) == sorted(
        [
            ("remove", sha256_hex("bob@example.com")),
            ("remove", sha256_hex("ana@example.com")),
            ("add", sha256_hex("cara@example.com")),
            ("add", sha256_hex("ana.new@example.com")),
        ]
    )
    assert platform.audiences["vip"] == {sha256_hex("cara@example.com"),
                                         sha256_hex("ana.new@example.com")}  # fmt: skip
    assert set(SyncRecord.objects.filter(sync=sync).values_list("customer_id", flat=True)) == {
        ana.id, cara.id}  # fmt: skip

    platform.applications.clear()
    third = run_now(sync)
    assert (third.to_add, third.to_remove, platform.applications) == (0, 0, [])


def test_consent_withdrawal_vendor_denial_and_erasure_remove_people(scope, platform):
    from profiles.services.customers import customer_erase

    audience = AudienceFactory(workspace=scope)
    people = [customer(scope, f"p{n}@example.com") for n in range(4)]
    enter(scope, audience, *people)
    sync = make_sync(scope, audience)
    run_now(sync)
    assert len(platform.audiences["vip"]) == 4

    consent_update(customer=people[0], changes={"advertising": "denied"}, source="test")
    Customer.objects.filter(id=people[1].id).update(consent_vendors={"test": {"status": "denied"}})
    customer_erase(customer=Customer.objects.get(id=people[2].id), actor="test")

    run = run_now(sync)

    assert run.removed == 3
    assert platform.audiences["vip"] == {sha256_hex("p3@example.com")}
    assert run.skipped == {"no_consent": 1, "no_vendor_consent": 1}


def test_full_replace_goes_in_one_session_of_batches_closed_by_the_last(scope, platform):
    audience = AudienceFactory(workspace=scope)
    people = [customer(scope, f"m{n}@example.com") for n in range(5)]
    enter(scope, audience, *people)
    sync = make_sync(scope, audience, mode="full")
    platform.audiences["vip"] = {"stale"}

    run = sync_run_execute(run_id=SyncRun.objects.get(sync=sync).id)

    requests = platform.requests_to("/replace")
    assert [(r.json["seq"], r.json["last"], len(r.json["members"])) for r in requests] == [
        (1, False, 2), (2, False, 2), (3, True, 1)]  # fmt: skip
    assert len({r.json["session"] for r in requests}) == 1
    assert platform.audiences["vip"] == {sha256_hex(f"m{n}@example.com") for n in range(5)}
    assert (run.status, run.to_add, run.added) == ("succeeded", 5, 5)

    leave(scope, audience, people[0])
    again = run_now(sync)
    assert platform.audiences["vip"] == {sha256_hex(f"m{n}@example.com") for n in range(1, 5)}
    assert (again.to_add, again.added, again.to_remove) == (4, 4, 1)
    assert SyncRecord.objects.filter(sync=sync).count() == 4


def test_refused_members_are_counted_and_retried_by_the_next_run(scope, platform):
    audience = AudienceFactory(workspace=scope)
    good, bad = customer(scope, "good@example.com"), customer(scope, "bad@example.com")
    enter(scope, audience, good, bad)
    platform.fail_members = {sha256_hex("bad@example.com")}
    sync = make_sync(scope, audience)

    run = sync_run_execute(run_id=SyncRun.objects.get(sync=sync).id)

    assert (run.status, run.added, run.failed) == ("succeeded", 1, 1)
    assert run.error_samples == [{"customer_id": bad.id, "op": "add", "error": "invalid"}]
    record = SyncRecord.objects.get(sync=sync, customer_id=bad.id)
    assert (record.sent, record.failed_run_id, record.attempts, record.error) == (
        None, run.id, 1, "invalid")  # fmt: skip

    platform.fail_members = set()
    retried = run_now(sync)
    assert (retried.to_add, retried.added, retried.failed) == (1, 1, 0)
    assert sha256_hex("bad@example.com") in platform.audiences["vip"]


def test_throttling_backs_off_then_resumes_and_the_budget_dead_letters(scope, platform):
    audience = AudienceFactory(workspace=scope)
    enter(scope, audience, *[customer(scope, f"t{n}@example.com") for n in range(3)])
    sync = make_sync(scope, audience)
    run_id = SyncRun.objects.get(sync=sync).id
    platform.script(Answer(429, {}))

    run = sync_run_execute(run_id=run_id)

    assert run.status == "queued" and run.retry_at > timezone.now()
    assert run.error == "RetryLater: throttled"
    SyncRun.objects.filter(id=run_id).update(retry_at=timezone.now())
    run = sync_run_execute(run_id=run_id)
    assert (run.status, run.added) == ("succeeded", 3)
    assert platform.duplicates == 0

    leave_all = list(Customer.objects.values_list("id", flat=True))
    membership_apply(workspace_id=scope.id, audience_id=audience.id, entering=(),
                     leaving=leave_all, cause=LIST, now=timezone.now())  # fmt: skip
    platform.answer_when(lambda request: True, Answer(429, {}))
    run = services.sync_run_request(sync=sync)
    for _ in range(SyncRun.MAX_ATTEMPTS):
        SyncRun.objects.filter(id=run.id).update(retry_at=None)
        run = sync_run_execute(run_id=run.id)
    assert run.status == "dead"
    assert run.error.startswith(f"gave up after {SyncRun.MAX_ATTEMPTS} attempts")

    platform.reset()
    platform.audiences["vip"] = {sha256_hex(f"t{n}@example.com") for n in range(3)}
    replay = services.run_replay(run=run, actor=ADMIN)
    replay = sync_run_execute(run_id=replay.id)
    assert (replay.status, replay.removed) == ("succeeded", 3)
    assert platform.audiences["vip"] == set()


def test_a_batch_in_flight_at_a_crash_is_sent_again_with_its_numbers(scope, platform):
    audience = AudienceFactory(workspace=scope)
    enter(scope, audience, *[customer(scope, f"c{n}@example.com") for n in range(5)])
    sync = make_sync(scope, audience)
    run_id = SyncRun.objects.get(sync=sync).id
    seen = []

    def crash_after_the_second_batch(request):
        seen.append(request.json["seq"])
        if len(seen) == 2:
            # The platform applied it (the fake applies after this hook returns), the worker
            # dies before recording it: simulate by answering, then failing the worker.
            platform.on_request = None
            raise_later.append(True)

    raise_later: list = []
    platform.on_request = crash_after_the_second_batch
    original = sync_run_execute.__globals__["_confirm"]

    def dying_confirm(run, batch, failed):
        if raise_later:
            raise SystemExit("worker killed")
        return original(run, batch, failed)

    sync_run_execute.__globals__["_confirm"] = dying_confirm
    try:
        with pytest.raises(SystemExit):
            sync_run_execute(run_id=run_id)
    finally:
        sync_run_execute.__globals__["_confirm"] = original
    # The worker is gone: its heartbeat stops, and the sweep's claim takes the run again.
    SyncRun.objects.filter(id=run_id).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    run = sync_run_execute(run_id=run_id)

    assert run.status == "succeeded"
    adds = [(r.json["session"], r.json["seq"]) for r in platform.requests_to("/add")]
    assert [seq for _, seq in adds] == [1, 2, 2, 3]
    assert platform.duplicates == 1  # the resent batch, applied once
    assert sorted(email for _, email in platform.applications) == sorted(
        sha256_hex(f"c{n}@example.com") for n in range(5))  # fmt: skip


def test_revoked_credentials_disable_the_destination(scope, platform):
    audience = AudienceFactory(workspace=scope)
    enter(scope, audience, customer(scope, "x@example.com"))
    sync = make_sync(scope, audience)
    platform.script(Answer(401, {}))

    run = sync_run_execute(run_id=SyncRun.objects.get(sync=sync).id)

    assert (run.status, run.error) == ("failed", "the destination was disabled: token revoked")
    destination = Destination.objects.get(id=sync.destination_id)
    assert (destination.status, destination.disabled_reason) == ("disabled", "token revoked")


@pytest.mark.django_db(transaction=True)
def test_pausing_stops_between_batches(scope, platform):
    audience = AudienceFactory(workspace=scope)
    enter(scope, audience, *[customer(scope, f"s{n}@example.com") for n in range(5)])
    sync = make_sync(scope, audience)

    def pause_after_first(request):  # someone presses "pause" while the first batch goes
        platform.on_request = None
        with workspace_scope(scope.id):
            AudienceSync.objects.filter(id=sync.id).update(status="paused")

    platform.on_request = pause_after_first
    run = sync_run_execute(run_id=SyncRun.objects.get(sync=sync).id)

    assert (run.status, run.added, run.error) == ("canceled", 2, "the sync was paused")
    services.sync_set_paused(sync=sync, paused=False, actor=ADMIN)
    resumed = run_now(sync)
    assert (resumed.to_add, resumed.added) == (3, 3)
    assert len(platform.audiences["vip"]) == 5
