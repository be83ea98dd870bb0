"""Consumers' cursors: advanced with the consumer's effects, locked against a second worker,
one per workspace (and per scope)."""

import threading

import pytest
from django.db import connection, transaction

from audiences.models import Audience
from masivo.feeds.models import NO_SCOPE, FeedCursor
from masivo.feeds.registry import UnknownConsumer
from masivo.feeds.selectors import BEGINNING, FeedPosition, feed_rows_after
from masivo.feeds.services import (
    CursorMoved,
    TransactionRequired,
    feed_advance,
    feed_consume,
    feed_cursor_create,
    feed_read,
)
from masivo.tenancy.context import MissingWorkspaceContext, workspace_scope
from tests.factories import AudienceFactory
from tests.feeds.support import FEED, add_change, wait_until_committed_rows_readable

pytestmark = pytest.mark.django_db(transaction=True)


class Crash(Exception):
    pass


def consume(workspace, consumer, *, scope=None, limit=1000) -> list[int]:
    with (
        workspace_scope(workspace.id),
        feed_consume(
            workspace_id=workspace.id, feed=FEED, consumer=consumer, scope=scope, limit=limit
        ) as batch,
    ):
        return [row["id"] for row in batch.rows]


def cursor_position(workspace, consumer, scope=NO_SCOPE) -> FeedPosition:
    with workspace_scope(workspace.id):
        cursor = FeedCursor.objects.get(consumer=consumer, feed=FEED, scope=scope)
    return FeedPosition(int(cursor.last_xid), cursor.last_id)


@pytest.fixture
def changes(audience):
    """Four committed changes of `audience`, readable."""
    rows = [add_change(audience, customer_id) for customer_id in (11, 12, 13, 14)]
    wait_until_committed_rows_readable()
    return [row.id for row in rows]


def test_a_batch_is_read_in_order_and_the_cursor_moves_past_it(workspace, consumers, changes):
    consumers("sync")
    assert consume(workspace, "sync", limit=3) == changes[:3]
    assert cursor_position(workspace, "sync").id == changes[2]
    assert consume(workspace, "sync", limit=3) == changes[3:]
    assert consume(workspace, "sync") == []


def test_a_crash_after_reading_undoes_the_consumers_effects_and_its_cursor(
    workspace, consumers, changes
):
    consumers("sync")
    assert consume(workspace, "sync", limit=1) == changes[:1]
    before = cursor_position(workspace, "sync")
    with pytest.raises(Crash), workspace_scope(workspace.id):
        with feed_consume(workspace_id=workspace.id, feed=FEED, consumer="sync") as batch:
            AudienceFactory(workspace=workspace, name="an effect of the batch")
            raise Crash
    assert [row["id"] for row in batch.rows] == changes[1:]
    assert cursor_position(workspace, "sync") == before
    with workspace_scope(workspace.id):
        assert not Audience.objects.filter(name="an effect of the batch").exists()
    assert consume(workspace, "sync") == changes[1:]


def test_a_second_worker_of_the_consumer_waits_and_then_reads_the_next_rows(
    workspace, consumers, changes
):
    consumers("sync")
    second_read = []

    def second_worker():
        try:
            second_read.append(consume(workspace, "sync", limit=2))
        finally:
            connection.close()

    with workspace_scope(workspace.id), transaction.atomic():
        first = feed_read(workspace_id=workspace.id, feed=FEED, consumer="sync", limit=2)
        worker = threading.Thread(target=second_worker)
        worker.start()
        worker.join(timeout=1)
        assert worker.is_alive()
        feed_advance(batch=first)
    worker.join(timeout=30)
    assert [row["id"] for row in first.rows] == changes[:2]
    assert second_read == [changes[2:]]


def test_a_batch_cannot_be_applied_twice(workspace, consumers, changes):
    consumers("sync")
    with workspace_scope(workspace.id):
        with transaction.atomic():
            batch = feed_read(workspace_id=workspace.id, feed=FEED, consumer="sync")
            feed_advance(batch=batch)
        with pytest.raises(CursorMoved), transaction.atomic():
            feed_advance(batch=batch)
    assert cursor_position(workspace, "sync") == batch.end


def test_a_stateless_read_has_no_cursor_to_advance(workspace, changes):
    with workspace_scope(workspace.id):
        batch = feed_rows_after(workspace_id=workspace.id, feed=FEED, after=BEGINNING, limit=10)
        with pytest.raises(ValueError), transaction.atomic():
            feed_advance(batch=batch)


def test_reading_for_a_consumer_needs_a_transaction(workspace, consumers):
    consumers("sync")
    with workspace_scope(workspace.id), pytest.raises(TransactionRequired):
        feed_read(workspace_id=workspace.id, feed=FEED, consumer="sync")


@pytest.mark.parametrize(
    ("consumer", "scope", "error"),
    [
        ("unknown", None, UnknownConsumer),
        ("sync", 1, ValueError),
        ("per-audience", None, ValueError),
    ],
)
def test_reads_refuse_an_unknown_consumer_or_the_wrong_kind_of_scope(
    workspace, consumers, consumer, scope, error
):
    consumers("sync")
    consumers("per-audience", is_scoped=True)
    with workspace_scope(workspace.id), transaction.atomic(), pytest.raises(error):
        feed_read(workspace_id=workspace.id, feed=FEED, consumer=consumer, scope=scope)
    with workspace_scope(workspace.id):
        assert FeedCursor.objects.count() == 0


def test_reads_refuse_to_run_for_a_workspace_other_than_the_one_in_context(
    workspace, other_workspace, consumers
):
    consumers("sync")
    with workspace_scope(other_workspace.id), transaction.atomic():
        with pytest.raises(MissingWorkspaceContext):
            feed_read(workspace_id=workspace.id, feed=FEED, consumer="sync")


def test_a_new_consumer_starts_from_the_beginning_or_from_now(
    workspace, audience, consumers, changes
):
    consumers("from-the-beginning")
    consumers("from-now")
    with workspace_scope(workspace.id):
        started = feed_cursor_create(
            workspace_id=workspace.id, feed=FEED, consumer="from-now", from_now=True
        )
    later = add_change(audience, 15)
    wait_until_committed_rows_readable()
    assert started.id == 0
    assert consume(workspace, "from-now") == [later.id]
    assert consume(workspace, "from-the-beginning") == [*changes, later.id]


def test_creating_a_cursor_that_exists_leaves_it_where_it_is(workspace, consumers, changes):
    consumers("sync")
    consume(workspace, "sync", limit=2)
    with workspace_scope(workspace.id):
        position = feed_cursor_create(
            workspace_id=workspace.id, feed=FEED, consumer="sync", from_now=True
        )
    assert position == cursor_position(workspace, "sync")
    assert position.id == changes[1]


def test_workspaces_have_their_own_rows_and_cursors(workspace, other_workspace, consumers):
    consumers("sync")
    with workspace_scope(other_workspace.id):
        theirs = AudienceFactory(workspace=other_workspace)
    with workspace_scope(workspace.id):
        ours = AudienceFactory(workspace=workspace)
    our_rows = [add_change(ours, 1).id, add_change(ours, 2).id]
    their_rows = [add_change(theirs, 3).id]
    wait_until_committed_rows_readable()
    assert consume(workspace, "sync", limit=1) == our_rows[:1]
    assert consume(other_workspace, "sync") == their_rows
    assert consume(workspace, "sync") == our_rows[1:]
    assert cursor_position(other_workspace, "sync").id == their_rows[0]


def test_a_scoped_consumer_keeps_one_cursor_per_audience(
    workspace, audience, second_audience, consumers
):
    consumers("per-audience", is_scoped=True)
    first = [add_change(audience, 1).id, add_change(second_audience, 2).id]
    second = [add_change(audience, 3).id, add_change(second_audience, 4).id]
    wait_until_committed_rows_readable()
    assert consume(workspace, "per-audience", scope=audience.id) == [first[0], second[0]]
    assert consume(workspace, "per-audience", scope=audience.id) == []
    assert consume(workspace, "per-audience", scope=second_audience.id, limit=1) == [first[1]]
    assert cursor_position(workspace, "per-audience", scope=audience.id).id == second[0]
    assert cursor_position(workspace, "per-audience", scope=second_audience.id).id == first[1]
