"""With split roles the application role owns nothing: it reads and writes rows, but it cannot
switch row-level security off, change a table or make itself a role. It connects here on a
connection of its own to this run's test database (the suite itself runs as the schema owner)."""

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg import errors

from masivo.dbsetup import login_of

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not settings.DATABASE_OWNER_URL, reason="single-role set-up (no DATABASE_OWNER_URL)"
    ),
]

REFUSED = [
    ("ALTER TABLE profiles_customer DISABLE ROW LEVEL SECURITY", "must be owner of table"),
    ("ALTER TABLE profiles_customer NO FORCE ROW LEVEL SECURITY", "must be owner of table"),
    ("DROP POLICY workspace_isolation ON profiles_customer", "must be owner of"),
    ("ALTER TABLE profiles_customer ADD COLUMN stolen text", "must be owner of table"),
    ("DROP TABLE profiles_customer", "must be owner of table"),
    ("TRUNCATE profiles_customer", "permission denied for table profiles_customer"),
    ("CREATE TABLE profiles_mine (id int)", "permission denied for schema public"),
    ("CREATE ROLE intruder", "permission denied to create role"),
    ("CREATE ROLE intruder SUPERUSER", "must be superuser to create superusers"),
    ("ALTER ROLE CURRENT_USER BYPASSRLS", "permission denied|must be superuser"),
]


@pytest.fixture
def as_app():
    settings_dict = connection.settings_dict
    with psycopg.connect(
        dbname=settings_dict["NAME"],
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        user=login_of(settings.DATABASE_URL)["USER"],
        password=login_of(settings.DATABASE_URL)["PASSWORD"] or None,
        autocommit=True,
    ) as app:
        app.execute("SET lock_timeout = '5s'")
        yield app


def test_the_suite_runs_as_the_owner_and_the_app_is_another_role(as_app):
    owner = login_of(settings.DATABASE_OWNER_URL)["USER"]
    assert as_app.execute("SELECT current_user").fetchone()[0] != owner
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == owner


@pytest.mark.parametrize(("statement", "refusal"), REFUSED)
def test_the_app_role_cannot_change_the_schema_or_roles(as_app, statement, refusal):
    with pytest.raises(errors.InsufficientPrivilege, match=refusal):
        as_app.execute(statement)


def test_the_app_role_owns_nothing_and_may_read_and_write_every_table(as_app):
    owned = as_app.execute(
        "SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole"
    ).fetchone()
    missing = as_app.execute(
        """
        SELECT tablename FROM pg_tables
        WHERE schemaname = 'public'
          AND NOT (has_table_privilege(format('%I.%I', schemaname, tablename), 'SELECT')
               AND has_table_privilege(format('%I.%I', schemaname, tablename), 'INSERT')
               AND has_table_privilege(format('%I.%I', schemaname, tablename), 'UPDATE')
               AND has_table_privilege(format('%I.%I', schemaname, tablename), 'DELETE'))
        UNION ALL
        SELECT sequencename FROM pg_sequences
        WHERE schemaname = 'public'
          AND NOT has_sequence_privilege(format('%I.%I', schemaname, sequencename), 'USAGE')
        """
    ).fetchall()
    assert (owned, missing) == ((0,), [])


def test_row_level_security_still_binds_the_app_role(as_app):
    assert as_app.execute("SELECT count(*) FROM profiles_customer").fetchone() == (0,)
