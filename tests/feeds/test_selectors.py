"""Stateless reads after a position, and positions as text."""

import pytest

from masivo.feeds.selectors import BEGINNING, FeedPosition, feed_rows_after
from masivo.tenancy.context import workspace_scope
from tests.feeds.support import FEED, add_change, wait_until_committed_rows_readable


@pytest.mark.parametrize(
    ("text", "position"),
    [("0.0", BEGINNING), ("18446744073709551615.42", FeedPosition(2**64 - 1, 42))],
)
def test_a_position_survives_its_text_form(text, position):
    assert FeedPosition.decode(text) == position
    assert position.encode() == text


@pytest.mark.parametrize(
    "text",
    ["", "12", "12.", ".3", "-1.2", "1.2.3", "a.b", "\u0661.\u0662", "18446744073709551616.1",
     "1.9223372036854775808", "1" * 21 + ".1"],
)  # fmt: skip
def test_anything_else_is_not_a_position(text):
    with pytest.raises(ValueError):
        FeedPosition.decode(text)


@pytest.mark.django_db(transaction=True)
def test_pages_after_a_position_end_where_the_next_one_starts(workspace, audience):
    rows = [add_change(audience, customer_id) for customer_id in (1, 2, 3)]
    wait_until_committed_rows_readable()
    with workspace_scope(workspace.id):
        first = feed_rows_after(workspace_id=workspace.id, feed=FEED, after=BEGINNING, limit=2)
        rest = feed_rows_after(workspace_id=workspace.id, feed=FEED, after=first.end, limit=2)
        done = feed_rows_after(workspace_id=workspace.id, feed=FEED, after=rest.end, limit=2)
    assert [row["id"] for row in first.rows] == [rows[0].id, rows[1].id]
    assert first.end == FeedPosition(first.rows[-1]["xid"], rows[1].id)
    assert (first.has_more, rest.has_more, done.has_more) == (True, False, False)
    assert [row["customer_id"] for row in rest.rows] == [3]
    assert done.rows == []
    assert done.end == rest.end


@pytest.mark.django_db
def test_rows_of_a_transaction_still_open_are_not_read_even_by_itself(workspace, audience):
    add_change(audience, 1)
    with workspace_scope(workspace.id):
        batch = feed_rows_after(workspace_id=workspace.id, feed=FEED, after=BEGINNING, limit=10)
    assert batch.rows == []
