"""Retention: only rows older than the age that every consumer holding them has passed."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from audiences.models import MembershipChange
from masivo.feeds import tasks
from masivo.feeds.models import NO_SCOPE, FeedCursor
from masivo.feeds.registry import Feed, feed_consumer_register, registered_feed
from masivo.feeds.retention import feed_rows_delete_expired
from masivo.tenancy.context import workspace_scope
from profiles.apps import PROCESSED_EVENTS_FEED as PROCESSED
from profiles.apps import PROFILE_CHANGES_FEED
from profiles.models import ProfileChange
from tests.factories import AudienceFactory
from tests.feeds.support import FEED, add_change

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=2)
# The other feeds of the workspace, with nothing to delete.
NOTHING_ELSE = {PROFILE_CHANGES_FEED: 0, PROCESSED: 0}


def kept_ids(workspace) -> list[int]:
    with workspace_scope(workspace.id):
        return list(MembershipChange.objects.order_by("id").values_list("id", flat=True))


def place_cursor(change: MembershipChange, consumer: str, scope: int = NO_SCOPE) -> None:
    """A cursor just after `change` (as if the consumer had applied it)."""
    with workspace_scope(change.workspace_id):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT xid::text FROM audiences_membershipchange WHERE id = %s", [change.id]
            )
            xid = int(cursor.fetchone()[0])
        FeedCursor.objects.create(
            workspace_id=change.workspace_id, consumer=consumer, feed=FEED, scope=scope,
            last_xid=xid, last_id=change.id,
        )  # fmt: skip


def expire(workspace, **options) -> dict[str, int]:
    with workspace_scope(workspace.id):
        return feed_rows_delete_expired(
            workspace_id=workspace.id, older_than=timedelta(days=30), now=NOW, **options
        )


@pytest.fixture
def rows(audience):
    """Three old changes and two recent ones, in that order."""
    changed = [OLD, OLD, OLD, RECENT, RECENT]
    return [add_change(audience, index, changed_at=at) for index, at in enumerate(changed)]


def ids(changes) -> list[int]:
    return [change.id for change in changes]


def test_with_no_consumers_rows_go_by_age_alone(workspace, rows):
    assert expire(workspace) == {FEED: 3, **NOTHING_ELSE}
    assert kept_ids(workspace) == ids(rows[3:])


def test_a_consumer_that_starts_from_now_holds_nothing_where_it_has_no_cursor(
    workspace, consumers, rows
):
    consumers("journeys", starts_from_now=True)
    assert expire(workspace) == {FEED: 3, **NOTHING_ELSE}  # not followed here: by age alone


def test_a_consumer_that_starts_from_now_holds_through_its_cursor(workspace, consumers, rows):
    consumers("journeys", starts_from_now=True)
    place_cursor(rows[0], "journeys")
    assert expire(workspace) == {FEED: 1, **NOTHING_ELSE}
    assert kept_ids(workspace) == ids(rows[1:])


def test_a_family_holds_through_each_members_cursor(workspace, consumers, rows):
    consumers("destinations.forwarding", per_key=True)
    place_cursor(rows[0], "destinations.forwarding:7")
    place_cursor(rows[2], "destinations.forwarding:8")
    assert expire(workspace) == {FEED: 1, **NOTHING_ELSE}  # the slower member holds
    assert kept_ids(workspace) == ids(rows[1:])


@pytest.mark.parametrize("batch_size", [1, 2, 5000])
def test_an_unscoped_consumer_keeps_the_old_rows_it_has_not_read(
    workspace, consumers, rows, batch_size
):
    consumers("journeys")
    place_cursor(rows[1], "journeys")
    assert expire(workspace, batch_size=batch_size) == {FEED: 2, **NOTHING_ELSE}
    assert kept_ids(workspace) == ids(rows[2:])


def test_recent_rows_stay_even_when_every_consumer_has_read_them(workspace, consumers, rows):
    consumers("journeys")
    place_cursor(rows[-1], "journeys")
    assert expire(workspace) == {FEED: 3, **NOTHING_ELSE}
    assert kept_ids(workspace) == ids(rows[3:])


def test_the_slowest_consumer_decides(workspace, consumers, rows):
    consumers("journeys")
    consumers("push-topics")
    place_cursor(rows[2], "journeys")
    place_cursor(rows[0], "push-topics")
    assert expire(workspace) == {FEED: 1, **NOTHING_ELSE}
    assert kept_ids(workspace) == ids(rows[1:])


def test_an_unscoped_consumer_that_never_read_a_workspace_holds_all_of_it(
    workspace, other_workspace, consumers, rows
):
    consumers("journeys")
    with workspace_scope(other_workspace.id):
        theirs = AudienceFactory(workspace=other_workspace)
    their_rows = [add_change(theirs, 1, changed_at=OLD), add_change(theirs, 2, changed_at=OLD)]
    place_cursor(their_rows[-1], "journeys")
    assert expire(workspace) == {FEED: 0, **NOTHING_ELSE}
    assert expire(other_workspace) == {FEED: 2, **NOTHING_ELSE}
    assert kept_ids(workspace) == ids(rows)
    assert kept_ids(other_workspace) == []


def test_a_consumer_that_does_not_hold_retention_keeps_nothing(workspace, consumers, rows):
    consumers("best-effort", holds_retention=False)
    place_cursor(rows[0], "best-effort")
    assert expire(workspace) == {FEED: 3, **NOTHING_ELSE}


def test_a_scoped_consumer_holds_only_the_scopes_it_follows(
    workspace, audience, second_audience, consumers
):
    consumers("destination-sync", is_scoped=True)
    followed = [add_change(audience, 1, changed_at=OLD)]
    others = [add_change(second_audience, 2, changed_at=OLD)]
    followed.append(add_change(audience, 3, changed_at=OLD))
    others.append(add_change(second_audience, 4, changed_at=OLD))
    followed.append(add_change(audience, 5, changed_at=RECENT))
    place_cursor(followed[0], "destination-sync", scope=audience.id)
    assert expire(workspace) == {FEED: 3, **NOTHING_ELSE}
    assert kept_ids(workspace) == ids(followed[1:])


def test_old_rows_behind_a_young_one_wait_for_a_later_pass(workspace, audience):
    rows = [
        add_change(audience, index, changed_at=at) for index, at in enumerate([OLD, RECENT, OLD])
    ]
    assert expire(workspace) == {FEED: 1, **NOTHING_ELSE}
    assert kept_ids(workspace) == ids(rows[1:])


def test_the_beat_task_queues_one_pass_per_workspace(workspace, other_workspace, monkeypatch):
    queued = []
    monkeypatch.setattr(
        tasks.delete_expired_workspace_feed_rows, "delay", lambda **kwargs: queued.append(kwargs)
    )
    assert tasks.delete_expired_feed_rows() == 2
    assert queued == [{"workspace_id": workspace.id}, {"workspace_id": other_workspace.id}]


def test_the_workspace_task_uses_the_configured_age(workspace, rows, settings):
    settings.MASIVO_FEED_RETENTION_DAYS = 1
    result = tasks.delete_expired_workspace_feed_rows(workspace_id=workspace.id)
    assert result == {FEED: 5, **NOTHING_ELSE}
    assert kept_ids(workspace) == []


def add_profile_change(workspace, customer_id, *, changed_at, processed_at) -> ProfileChange:
    with workspace_scope(workspace.id):
        return ProfileChange.objects.create(
            workspace=workspace, customer_id=customer_id, kind=ProfileChange.Kind.UPDATED,
            keys=["field:country"], source="api", changed_at=changed_at, processed_at=processed_at,
        )  # fmt: skip


def kept_profile_change_ids(workspace) -> list[int]:
    with workspace_scope(workspace.id):
        return list(ProfileChange.objects.order_by("id").values_list("id", flat=True))


def test_profile_changes_are_a_feed_whose_unprocessed_rows_are_pending():
    assert registered_feed(PROFILE_CHANGES_FEED) == Feed(
        name="profile_changes", table="profiles_profilechange", age_column="changed_at",
        pending_column="processed_at",
    )  # fmt: skip


def test_an_old_profile_change_the_follow_up_has_not_processed_is_kept(workspace):
    processed = OLD + timedelta(seconds=1)
    changes = [
        add_profile_change(workspace, 1, changed_at=OLD, processed_at=processed),
        add_profile_change(workspace, 2, changed_at=OLD, processed_at=None),
        add_profile_change(workspace, 3, changed_at=OLD, processed_at=processed),
        add_profile_change(workspace, 4, changed_at=RECENT, processed_at=RECENT),
    ]

    assert expire(workspace, batch_size=1) == {FEED: 0, PROFILE_CHANGES_FEED: 2, PROCESSED: 0}
    assert kept_profile_change_ids(workspace) == ids(changes[1::2])

    with workspace_scope(workspace.id):
        ProfileChange.objects.filter(id=changes[1].id).update(processed_at=NOW)
    assert expire(workspace) == {FEED: 0, PROFILE_CHANGES_FEED: 1, PROCESSED: 0}
    assert kept_profile_change_ids(workspace) == ids(changes[3:])


def test_a_consumer_past_an_unprocessed_profile_change_does_not_free_it(workspace):
    feed_consumer_register(feed=PROFILE_CHANGES_FEED, name="journeys")  # reset by `consumers`
    change = add_profile_change(workspace, 1, changed_at=OLD, processed_at=None)
    with workspace_scope(workspace.id):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT xid::text FROM profiles_profilechange WHERE id = %s", [change.id]
            )
            xid = int(cursor.fetchone()[0])
        FeedCursor.objects.create(
            workspace_id=workspace.id, consumer="journeys", feed=PROFILE_CHANGES_FEED,
            scope=NO_SCOPE, last_xid=xid, last_id=change.id,
        )  # fmt: skip

    assert expire(workspace) == {FEED: 0, **NOTHING_ELSE}
    assert kept_profile_change_ids(workspace) == [change.id]
