"""Writers that commit out of order, on real connections: no row skipped, none read twice.

Row ids are allocated before commit, so a reader by id that has passed a fast writer's row skips
the slow writer's lower id when it commits. The feed reads by transaction id, below the oldest
transaction still running.
"""

import random
import threading
import time

import pytest

from masivo.feeds.services import feed_consume
from masivo.tenancy.context import workspace_scope
from tests.feeds.support import (
    FEED,
    Writer,
    wait_for_watermark,
    wait_until_committed_rows_readable,
)

pytestmark = pytest.mark.django_db(transaction=True)

CONSUMER = "test-consumer"


@pytest.fixture
def reader(workspace, consumers):
    """Consume the next batch (as a worker would) and return its rows' ids."""
    consumers(CONSUMER)

    def read(limit=1000) -> list[int]:
        with (
            workspace_scope(workspace.id),
            feed_consume(
                workspace_id=workspace.id, feed=FEED, consumer=CONSUMER, limit=limit
            ) as batch,
        ):
            return [row["id"] for row in batch.rows]

    return read


@pytest.fixture
def writers(workspace):
    opened = []

    def open_writer() -> Writer:
        opened.append(Writer(workspace.id))
        return opened[-1]

    yield open_writer
    for writer in opened:
        writer.close()


def drain(read) -> list[int]:
    wait_until_committed_rows_readable()
    seen = []
    while batch := read():
        seen += batch
    return seen


def test_a_slow_writer_holds_back_a_fast_writer_that_committed_after_it(reader, writers, audience):
    slow, fast = writers(), writers()
    slow_row = slow.insert(audience_id=audience.id, customer_id=1)
    fast_row = fast.insert(audience_id=audience.id, customer_id=2)
    fast.commit()
    assert slow_row < fast_row
    assert reader() == []
    slow.commit()
    wait_for_watermark(above=fast_row[0])
    assert reader() == [slow_row[1], fast_row[1]]
    assert reader() == []


def test_a_fast_writer_with_the_higher_id_is_read_first_and_the_slow_one_still_arrives(
    reader, writers, audience
):
    slow, fast = writers(), writers()
    fast_xid = fast.take_xid()
    slow_row = slow.insert(audience_id=audience.id, customer_id=1)
    fast_row = fast.insert(audience_id=audience.id, customer_id=2)
    fast.commit()
    assert fast_row[0] == fast_xid < slow_row[0]
    assert slow_row[1] < fast_row[1]
    wait_for_watermark(above=fast_xid)
    assert reader() == [fast_row[1]]
    slow.commit()
    wait_for_watermark(above=slow_row[0])
    assert reader() == [slow_row[1]]
    assert reader() == []


def test_rolled_back_rows_never_appear_and_do_not_hold_anything_back(reader, writers, audience):
    aborted, kept = writers(), writers()
    aborted.insert(audience_id=audience.id, customer_id=1)
    kept_row = kept.insert(audience_id=audience.id, customer_id=2)
    kept.commit()
    aborted.rollback()
    assert drain(reader) == [kept_row[1]]


def _shuffled_schedule(rng: random.Random, writer_count: int) -> list[tuple[int, str]]:
    """Each writer: maybe take its xid early, insert 1-3 rows, then commit or roll back; the
    writers' steps interleaved at random."""
    steps = []
    for writer in range(writer_count):
        own = ["xid"] if rng.random() < 0.5 else []
        own += ["insert"] * rng.randint(1, 3)
        own += ["rollback" if rng.random() < 0.2 else "commit"]
        steps.append([(writer, step) for step in own])
    schedule = []
    while any(steps):
        pending = rng.choice([own for own in steps if own])
        schedule.append(pending.pop(0))
    return schedule


@pytest.mark.parametrize("seed", range(6))
def test_writers_committing_in_shuffled_order_are_each_read_exactly_once(
    seed, reader, writers, audience
):
    rng = random.Random(seed)
    connections = [writers() for _ in range(5)]
    pending = {writer: [] for writer in range(len(connections))}
    committed, seen = [], []
    for writer, step in _shuffled_schedule(rng, len(connections)):
        if step == "xid":
            connections[writer].take_xid()
        elif step == "insert":
            row = connections[writer].insert(audience_id=audience.id, customer_id=writer)
            pending[writer].append(row)
        elif step == "commit":
            connections[writer].commit()
            committed += pending.pop(writer)
        else:
            connections[writer].rollback()
            pending.pop(writer)
        if rng.random() < 0.6:
            seen += reader(limit=rng.randint(1, 4))
    seen += drain(reader)
    assert seen == [row_id for _, row_id in sorted(committed)]


def test_threads_writing_and_a_reader_consuming_at_once_see_every_row_once(
    reader, writers, audience
):
    committed, lock = [], threading.Lock()
    connections = [writers() for _ in range(4)]

    def write(writer: Writer, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(8):
            rows = []
            for _ in range(rng.randint(1, 3)):
                rows.append(writer.insert(audience_id=audience.id, customer_id=seed))
                time.sleep(rng.random() / 100)
            if rng.random() < 0.2:
                writer.rollback()
                continue
            writer.commit()
            with lock:
                committed.extend(rows)

    threads = [
        threading.Thread(target=write, args=(writer, seed))
        for seed, writer in enumerate(connections)
    ]
    for thread in threads:
        thread.start()
    seen = []
    while any(thread.is_alive() for thread in threads):
        seen += reader(limit=5)
    for thread in threads:
        thread.join()
    seen += drain(reader)
    assert seen == [row_id for _, row_id in sorted(committed)]
