"""A connection as the application role (DATABASE_URL's), which may not run DDL, to this run's
test database: the suite itself runs as the schema owner (tests/conftest.py)."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import connection

from masivo.dbsetup import login_of


@contextmanager
def app_role_connection() -> Iterator[psycopg.Connection]:
    settings_dict = connection.settings_dict
    login = login_of(settings.DATABASE_URL)
    with psycopg.connect(
        dbname=settings_dict["NAME"],
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        user=login["USER"],
        password=login["PASSWORD"] or None,
        autocommit=True,
    ) as app:
        app.execute("SET lock_timeout = '5s'")
        yield app
