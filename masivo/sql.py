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

    For statements with large parameters (a batch as one JSON document, arrays of hashes):
    Django's cursor binds client-side, quoting every parameter into the statement's text,
    which costs more CPU than Postgres spends running it (BENCHMARKS.md, ingestion). Errors are
    psycopg's own, not wrapped in django.db's classes: use it where none is caught.
    """
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        yield cursor
