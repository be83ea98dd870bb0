"""The ingestion follow-up's plumbing: the workspace task base, the sweep, idempotence."""

from datetime import timedelta

import pytest
from django.utils import timezone

from masivo.pipeline import process_events, process_events_now, sweep_unprocessed_events
from masivo.tenancy.context import MissingWorkspaceContext, current_workspace_id, workspace_scope
from masivo.tenancy.redis import get_redis
from profiles.models import Customer, Event
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def plant_event(workspace, *, received_minutes_ago: int, name="purchase", value=10):
    customer = Customer.objects.first() or CustomerFactory(workspace=workspace)
    return Event.objects.create(
        workspace=workspace,
        customer=customer,
        name=name,
        properties={"value": value},
        occurred_at=timezone.now() - timedelta(minutes=received_minutes_ago),
        received_at=timezone.now() - timedelta(minutes=received_minutes_ago),
        message_id=f"m-{received_minutes_ago}-{name}",
        source="api",
    )


def test_workspace_tasks_refuse_to_run_without_a_workspace_id():
    with pytest.raises(MissingWorkspaceContext, match="needs workspace_id=<int>"):
        process_events()


def test_workspace_tasks_run_inside_their_workspace(workspace):
    from celery import shared_task

    from masivo.tenancy.tasks import WorkspaceTask

    @shared_task(base=WorkspaceTask, name="tests.which_workspace")
    def which_workspace(*, workspace_id):
        return current_workspace_id()

    assert which_workspace(workspace_id=workspace.id) == workspace.id
    assert current_workspace_id() is None


def test_the_sweep_requeues_only_overdue_workspaces(workspace, other_workspace):
    with workspace_scope(workspace.id):
        plant_event(workspace, received_minutes_ago=5)
    with workspace_scope(other_workspace.id):
        plant_event(other_workspace, received_minutes_ago=0)
    queue = get_redis()
    before = queue.llen("celery")
    assert sweep_unprocessed_events() == [workspace.id]
    assert queue.llen("celery") == before + 1


def test_processing_twice_gives_the_same_figures(workspace):
    with workspace_scope(workspace.id):
        plant_event(workspace, received_minutes_ago=3, value=10)
        plant_event(workspace, received_minutes_ago=2, value=5)
        assert process_events(workspace_id=workspace.id) == 2
        first = Customer.objects.values("purchase_count", "purchase_total").get()
        Event.objects.update(processed_at=None)
        assert process_events_now(workspace=workspace) == 2
        second = Customer.objects.values("purchase_count", "purchase_total").get()
    assert first == second == {"purchase_count": 2, "purchase_total": first["purchase_total"]}
    assert str(first["purchase_total"]) == "15.00"
