"""Writers on connections of their own, and waiting for the feed's watermark.

The database server is shared (other test runs, other databases): their open transactions hold
the watermark back too, so a test waits for it instead of assuming it has moved.
"""

from __future__ import annotations

import time

import psycopg
from django.db import connection
from django.utils import timezone

from audiences.apps import MEMBERSHIP_CHANGES_FEED
from audiences.models import MembershipChange
from masivo.feeds.selectors import feed_watermark
from masivo.tenancy.context import workspace_scope

FEED = MEMBERSHIP_CHANGES_FEED

_INSERT_SQL = """
INSERT INTO audiences_membershipchange
       (workspace_id, audience_id, customer_id, kind, source, reason, actor, changed_at)
VALUES (%s, %s, %s, 'enter', 'recalculation', 'matches', '', %s)
RETURNING id, xid::text
"""


def connect() -> psycopg.Connection:
    """A new real connection to the test database, as the application role."""
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
    )


class Writer:
    """One transaction at a time on its own connection, like a web or worker process."""

    def __init__(self, workspace_id: int):
        self.workspace_id = workspace_id
        self.connection = connect()
        self.connection.execute(
            "SELECT set_config('masivo.workspace_id', %s, false)", [str(workspace_id)]
        )
        self.connection.commit()

    def take_xid(self) -> int:
        """Start the transaction's id now, before any row (so an earlier xid, a later id)."""
        return int(self.connection.execute("SELECT pg_current_xact_id()::text").fetchone()[0])

    def insert(self, *, audience_id: int, customer_id: int, changed_at=None) -> tuple[int, int]:
        """Insert one change row; returns its (xid, id)."""
        row_id, xid = self.connection.execute(
            _INSERT_SQL,
            [self.workspace_id, audience_id, customer_id, changed_at or timezone.now()],
        ).fetchone()
        return int(xid), row_id

    def commit(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        self.connection.rollback()

    def close(self) -> None:
        self.connection.close()


def wait_for_watermark(*, above: int, timeout: float = 120.0) -> None:
    """Until every transaction with an xid up to `above` has ended (call outside a transaction)."""
    deadline = time.monotonic() + timeout
    while feed_watermark() <= above:
        if time.monotonic() > deadline:
            raise AssertionError(f"the watermark stayed at or below {above} for {timeout} s")
        time.sleep(0.02)


def wait_until_committed_rows_readable(timeout: float = 120.0) -> None:
    """Until every transaction running now (with an xid) has ended."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
        next_xid = int(cursor.fetchone()[0])
    wait_for_watermark(above=next_xid - 1, timeout=timeout)


def add_change(audience, customer_id, **fields) -> MembershipChange:
    """One change row, written directly (in the test's own transaction)."""
    with workspace_scope(audience.workspace_id):
        return MembershipChange.objects.create(
            workspace_id=audience.workspace_id, audience=audience, customer_id=customer_id,
            kind=MembershipChange.Kind.ENTER, source=MembershipChange.Source.RECALCULATION,
            reason=MembershipChange.Reason.MATCHES, **fields,
        )  # fmt: skip
