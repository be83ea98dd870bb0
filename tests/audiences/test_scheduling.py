"""When audiences recalculate: the services queue their own runs, due-selection, the cascade to
dependents, and the beat sweep (audiences.services, audiences.scheduling)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audiences import scheduling
from audiences.models import Audience, Recalculation
from audiences.recalculation import recalculation_run
from audiences.services import audience_create, audience_recalculate_request, audience_update
from masivo.tenancy import wakeups
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.errors import Conflict
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

MX = {"version": 1, "root": {"profile": {"field": "country", "op": "eq", "value": "MX"}}}


def referencing(audience_id: int) -> dict:
    return {"version": 1, "root": {"audience": {"id": audience_id, "in": True}}}


@pytest.fixture
def woken(monkeypatch) -> list[tuple[str, dict]]:
    calls = []
    record = lambda name, **kwargs: calls.append((name, kwargs))  # noqa: E731
    monkeypatch.setattr(wakeups, "task_wake", record)
    monkeypatch.setattr(scheduling, "task_wake", record)
    return calls


def runs(workspace) -> list[tuple]:
    with workspace_scope(workspace.id):
        return list(
            Recalculation.objects.order_by("id").values_list("audience__name", "reason", "status")
        )


def test_creating_a_rules_audience_queues_its_first_run_and_wakes_it_after_commit(
    workspace, woken, django_capture_on_commit_callbacks
):
    with workspace_scope(workspace.id), django_capture_on_commit_callbacks(execute=True):
        mexico = audience_create(workspace=workspace, data={"name": "Mexico", "rules": MX})
        audience_create(workspace=workspace, data={"name": "VIP", "kind": "list"})
        assert woken == []  # not before the transaction commits

    assert runs(workspace) == [("Mexico", "created", "queued")]
    with workspace_scope(workspace.id):
        run = Recalculation.objects.get()
    assert (run.audience_id, run.version) == (mexico.id, 1)
    assert woken == [
        ("audiences.recalculate", {"workspace_id": workspace.id, "recalculation_id": run.id})
    ]


def test_a_new_version_queues_a_run_and_other_changes_queue_none(
    workspace, woken, django_capture_on_commit_callbacks
):
    with workspace_scope(workspace.id):
        mexico = audience_create(workspace=workspace, data={"name": "Mexico", "rules": MX})
        with django_capture_on_commit_callbacks(execute=True):
            audience_update(audience=mexico, data={"name": "México", "schedule": "hourly"})
            audience_update(audience=mexico, data={"rules": MX})  # the same rules
        assert woken == []
        with django_capture_on_commit_callbacks(execute=True):
            updated = audience_update(audience=mexico, data={"rules": referencing_nothing()})

    assert updated.version == 2
    assert runs(workspace) == [
        ("México", "created", "queued"),
        ("México", "rules changed", "queued"),
    ]
    assert [name for name, _ in woken] == ["audiences.recalculate"]


def referencing_nothing() -> dict:
    return {"version": 1, "root": {"profile": {"field": "country", "op": "eq", "value": "AR"}}}


def test_recalculate_now_is_refused_for_an_uploaded_list(workspace, woken):
    with workspace_scope(workspace.id):
        vip = audience_create(workspace=workspace, data={"name": "VIP", "kind": "list"})
        with pytest.raises(Conflict) as refused:
            audience_recalculate_request(audience=vip, reason="requested")

    assert (refused.value.field, refused.value.message) == (
        "kind",
        "an uploaded list is not recalculated: its members are added",
    )
    assert runs(workspace) == []


def test_due_audiences_come_referenced_ones_first(workspace):
    now = timezone.now()
    with workspace_scope(workspace.id):
        base = audience_create(workspace=workspace, data={"name": "Base", "rules": MX}, now=now)
        audience_create(
            workspace=workspace, data={"name": "Top", "rules": referencing(base.id)}, now=now
        )
        later = audience_create(workspace=workspace, data={"name": "Later", "rules": MX}, now=now)
        Audience.objects.filter(id=later.id).update(next_run_at=now + timedelta(hours=1))
        due = scheduling.audiences_due(now=now)

    assert [(audience.name, audience.depends_on) for audience in due] == [
        ("Base", []),
        ("Top", [base.id]),
    ]


def test_a_time_based_audience_is_due_an_hour_after_its_last_run(workspace):
    now = timezone.now()
    window = {"version": 1, "root": {"event": {"name": "purchase",
                                               "within": {"last": 7, "unit": "days"}}}}  # fmt: skip
    with workspace_scope(workspace.id):
        audience = audience_create(workspace=workspace, data={"name": "Recent", "rules": window})
        Audience.objects.filter(id=audience.id).update(
            next_run_at=now + timedelta(days=1), last_run_at=now - timedelta(minutes=59)
        )
        not_yet = scheduling.audiences_due(now=now)
        Audience.objects.filter(id=audience.id).update(last_run_at=now - timedelta(hours=1))
        due = scheduling.audiences_due(now=now)

    assert (not_yet, [a.name for a in due]) == ([], ["Recent"])


def test_a_run_that_changed_members_queues_the_audiences_referencing_it(workspace, woken):
    with workspace_scope(workspace.id):
        CustomerFactory(workspace=workspace, country="MX")
        base = audience_create(workspace=workspace, data={"name": "Base", "rules": MX})
        audience_create(workspace=workspace, data={"name": "Top", "rules": referencing(base.id)})
        audience_create(workspace=workspace, data={"name": "Other", "rules": MX})
        first = Recalculation.objects.get(audience=base)
        ran = scheduling.recalculation_process(recalculation=first)
        again = scheduling.recalculation_cascade(
            recalculation=recalculation_run(
                recalculation=audience_recalculate_request(audience=base, reason="requested")
            )
        )

    assert (ran.status, ran.entered) == ("succeeded", 1)
    assert again == []  # the second run changed no one: nothing to cascade
    assert runs(workspace) == [
        ("Base", "created", "succeeded"),
        ("Top", "created", "queued"),
        ("Other", "created", "queued"),
        ("Top", "dependency", "queued"),
        ("Base", "requested", "succeeded"),
    ]


def test_beat_wakes_workspaces_with_due_audiences_and_runs_to_wake_again(
    workspace, other_workspace, woken
):
    now = timezone.now()
    with workspace_scope(workspace.id):
        audience_create(workspace=workspace, data={"name": "Due", "rules": MX}, now=now)
        lost = Recalculation.objects.get()
        Recalculation.objects.filter(id=lost.id).update(created_at=now - timedelta(hours=1))
    with workspace_scope(other_workspace.id):
        audience = audience_create(workspace=other_workspace, data={"name": "Later", "rules": MX})
        Audience.objects.filter(id=audience.id).update(next_run_at=now + timedelta(hours=1))

    woken_workspaces = scheduling.recalculations_due_wake(now=now)

    assert woken_workspaces == [workspace.id]
    assert woken == [
        ("audiences.recalculate_workspace_due", {"workspace_id": workspace.id}),
        ("audiences.recalculate", {"workspace_id": workspace.id, "recalculation_id": lost.id}),
    ]
