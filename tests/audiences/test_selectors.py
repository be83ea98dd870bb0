"""The reads the dashboard adds: what the rule builder offers, size history, members, changes."""

from datetime import UTC, datetime, timedelta

import pytest

from audiences import selectors
from audiences.models import Membership, MembershipChange, Recalculation
from masivo.tenancy.context import workspace_scope
from profiles.models import Event
from tests.factories import AudienceFactory, CustomerFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def customer(workspace, **fields):
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, **fields)


def event(workspace, name, properties, minutes_ago=0, who=None):
    with workspace_scope(workspace.id):
        return Event.objects.create(
            workspace=workspace, customer=who, name=name, properties=properties,
            occurred_at=NOW - timedelta(minutes=minutes_ago),
            message_id=f"{name}-{minutes_ago}-{Event.objects.count()}", source="api",
        )  # fmt: skip


def test_profile_keys_seen_lists_tag_keys_and_trait_paths_with_their_usual_type(
    workspace, other_workspace
):
    customer(
        workspace, updated_at=NOW, tags={"vip": True, "a.b": 1},
        traits={
            "plan": "pro", "n": 10, "nothing": None, "bad.key": 1, "pets": ["cat"],
            "address": {"zip": "01000", "geo": {"lat": 1.5, "deep": {"x": 1}}},
        },
    )  # fmt: skip
    customer(workspace, updated_at=NOW - timedelta(hours=1), traits={"plan": 5})
    customer(workspace, updated_at=NOW - timedelta(hours=2), traits={"plan": "free"}, tags=[])
    customer(other_workspace, tags={"secret": 1}, traits={"secret": 1})

    with workspace_scope(workspace.id):
        seen = selectors.profile_keys_seen(workspace=workspace)

    assert seen == {
        "tags": [{"path": "a.b", "type": "number"}, {"path": "vip", "type": "boolean"}],
        "traits": [
            {"path": "address", "type": "object"},
            {"path": "address.geo", "type": "object"},
            {"path": "address.geo.deep", "type": "object"},
            {"path": "address.geo.lat", "type": "number"},
            {"path": "address.zip", "type": "string"},
            {"path": "n", "type": "number"},
            {"path": "pets", "type": "array"},
            {"path": "plan", "type": "string"},
        ],
    }


def test_profile_keys_seen_reads_only_the_most_recently_updated_customers(workspace):
    customer(workspace, updated_at=NOW, traits={"new": 1})
    customer(workspace, updated_at=NOW - timedelta(days=1), traits={"old": 1}, tags={"old": 1})

    with workspace_scope(workspace.id):
        seen = selectors.profile_keys_seen(workspace=workspace, sample=1)

    assert seen == {"tags": [], "traits": [{"path": "new", "type": "number"}]}


def test_event_names_seen_are_distinct_sorted_regardless_of_case_and_this_workspaces(
    workspace, other_workspace
):
    for minutes, name in enumerate(["purchase", "Added to Cart", "purchase", "page", "Zoom"]):
        event(workspace, name, {}, minutes)
    event(other_workspace, "secret", {})

    with workspace_scope(workspace.id):
        names = selectors.event_names_seen(workspace=workspace)
        first_two = selectors.event_names_seen(workspace=workspace, limit=2)

    assert names == ["Added to Cart", "page", "purchase", "Zoom"]
    assert len(first_two) == 2
    assert set(first_two) < set(names)


def test_event_property_paths_seen_reads_the_latest_events_of_that_name(workspace):
    event(workspace, "purchase", {"revenue": 10, "items": [1], "ship": {"city": "Puebla"}}, 0)
    event(workspace, "purchase", {"revenue": "n/a", "legacy": True}, 5)
    event(workspace, "purchase", {"revenue": 12}, 6)
    event(workspace, "page", {"path": "/"}, 0)

    with workspace_scope(workspace.id):
        latest = selectors.event_property_paths_seen(workspace=workspace, name="purchase")
        newest = selectors.event_property_paths_seen(workspace=workspace, name="purchase", sample=1)
        none = selectors.event_property_paths_seen(workspace=workspace, name="missing")

    assert latest == [
        {"path": "items", "type": "array"},
        {"path": "legacy", "type": "boolean"},
        {"path": "revenue", "type": "number"},
        {"path": "ship", "type": "object"},
        {"path": "ship.city", "type": "string"},
    ]
    assert [item["path"] for item in newest] == ["items", "revenue", "ship", "ship.city"]
    assert none == []


def run(workspace, audience, status, size=None, finished_at=None):
    with workspace_scope(workspace.id):
        return Recalculation.objects.create(
            workspace=workspace, audience=audience, version=1, reason="test", status=status,
            size=size, finished_at=finished_at,
        )  # fmt: skip


def test_size_history_is_the_last_succeeded_runs_oldest_first(workspace, other_workspace):
    with workspace_scope(workspace.id):
        mexico, quiet = AudienceFactory(workspace=workspace), AudienceFactory(workspace=workspace)
    times = [NOW - timedelta(hours=hours) for hours in (4, 3, 2, 1)]
    run(workspace, mexico, "succeeded", 10, times[0])
    run(workspace, mexico, "succeeded", 12, times[1])
    run(workspace, mexico, "failed")
    run(workspace, mexico, "succeeded", 9, times[2])
    run(workspace, mexico, "skipped", finished_at=times[3])
    run(workspace, mexico, "queued")

    with workspace_scope(workspace.id):
        history = selectors.audience_size_history(
            workspace=workspace, audience_ids=[mexico.id, quiet.id], runs=2
        )
        nothing = selectors.audience_size_history(workspace=workspace, audience_ids=[])

    assert history == {mexico.id: [(times[1], 12), (times[2], 9)], quiet.id: []}
    assert nothing == {}


def test_members_page_by_customer_id_newest_first(workspace):
    people = [customer(workspace) for _ in range(5)]
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace)
        Membership.objects.bulk_create(
            Membership(workspace=workspace, audience=audience, customer=person, source="list")
            for person in people[:4]
        )
        first = selectors.audience_members(audience=audience, limit=2)
        second = selectors.audience_members(
            audience=audience, before_customer_id=first[-1].customer_id, limit=2
        )

    assert [m.customer_id for m in first] == [people[3].id, people[2].id]
    assert [m.customer_id for m in second] == [people[1].id, people[0].id]
    assert first[0].customer.email == people[3].email


def test_recent_changes_and_runs_are_newest_first(workspace):
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace)
        changes = MembershipChange.objects.bulk_create(
            MembershipChange(
                workspace=workspace, audience=audience, customer_id=number, kind="enter",
                source="list",
            )
            for number in range(3)
        )  # fmt: skip
    runs = [run(workspace, audience, "succeeded", size) for size in range(3)]

    with workspace_scope(workspace.id):
        recent_changes = selectors.changes_recent(audience=audience, limit=2)
        recent_runs = selectors.recalculations_recent(audience=audience, limit=2)

    assert recent_changes == [changes[2], changes[1]]
    assert recent_runs == [runs[2], runs[1]]
