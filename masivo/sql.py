"""Raw SQL helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def server_bound_cursor() -> Iterator[psycopg.Cursor]:
    """A cursor on Django's connection (same transaction, same workspace scope) that sends the
    parameters apart from the statement (server-side binding).

    For statements with large parameters (a batch as one JSON document, arrays of thousands of
    ids): Django's cursor binds client-side, quoting every parameter into the statement's text,
    which costs more CPU than Postgres spends running it (BENCHMARKS.md, ingestion). The
    connection's row-level-security settings are brought in line with the workspace context
    first, as Django's own cursors do before every statement, and errors leaving the block are
    Django's.
    """
    connection.ensure_connection()
    connection.apply_scope()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor
