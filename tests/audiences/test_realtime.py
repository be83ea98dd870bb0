"""Real-time membership: the ingestion follow-up re-evaluates only the audiences it could change."""

import pytest

from audiences.models import Audience, Membership, MembershipChange
from audiences.services import audience_create
from masivo.pipeline import process_events_now
from masivo.tenancy.context import workspace_scope

pytestmark = pytest.mark.django_db


def make(workspace, name, root, realtime=True):
    with workspace_scope(workspace.id):
        return audience_create(
            workspace=workspace,
            data={"name": name, "rules": {"version": 1, "root": root}, "is_realtime": realtime},
        )


def follow_up(workspace):
    with workspace_scope(workspace.id):
        process_events_now(workspace=workspace)


def members(workspace, audience):
    with workspace_scope(workspace.id):
        return sorted(
            Membership.objects.filter(audience=audience).values_list(
                "customer__external_id", "source"
            )
        )


def logged(workspace, audience):
    with workspace_scope(workspace.id):
        return list(
            MembershipChange.objects.filter(audience=audience)
            .order_by("id")
            .values_list("kind", "source")
        )


def test_a_tracked_event_enters_matching_realtime_audiences(tracking, workspace):
    buyers = make(workspace, "Buyers", {"event": {"name": "purchase"}})
    batch_buyers = make(
        workspace, "Buyers (batch)", {"event": {"name": "purchase"}}, realtime=False
    )
    tracking.post("track", {"userId": "u1", "event": "purchase", "messageId": "1"})
    follow_up(workspace)
    assert members(workspace, buyers) == [("u1", "realtime")]
    assert logged(workspace, buyers) == [("enter", "realtime")]
    assert members(workspace, batch_buyers) == []
    with workspace_scope(workspace.id):
        assert Audience.objects.get(id=buyers.id).size == 1


def test_only_audiences_mentioning_the_event_or_profile_are_evaluated(tracking, workspace):
    mexico = make(workspace, "Mexico", {"profile": {"field": "country", "op": "eq", "value": "MX"}})
    tracking.post("identify", {"userId": "u1", "messageId": "1"})
    follow_up(workspace)
    assert members(workspace, mexico) == []
    tracking.post(
        "identify", {"userId": "u1", "traits": {"address": {"country": "MX"}}, "messageId": "2"}
    )
    follow_up(workspace)
    assert members(workspace, mexico) == [("u1", "realtime")]


def test_an_event_makes_a_member_leave(tracking, workspace):
    never = make(
        workspace,
        "Never bought",
        {"event": {"name": "purchase", "count": {"op": "eq", "value": 0}}},
    )
    tracking.post("identify", {"userId": "u1", "messageId": "1"})
    follow_up(workspace)
    assert members(workspace, never) == [("u1", "realtime")]  # a new customer: judged at once
    tracking.post("track", {"userId": "u1", "event": "purchase", "messageId": "2"})
    follow_up(workspace)
    assert members(workspace, never) == []
    assert logged(workspace, never) == [("enter", "realtime"), ("exit", "realtime")]


def test_anonymous_activity_enters_nothing(tracking, workspace):
    buyers = make(workspace, "Buyers", {"event": {"name": "purchase"}})
    tracking.post("track", {"anonymousId": "a1", "event": "purchase", "messageId": "1"})
    follow_up(workspace)
    assert members(workspace, buyers) == []
