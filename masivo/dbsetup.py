"""Creating Masivo's database roles: an application login that row-level security binds, and,
when asked, a separate owner of the schema.

Postgres exempts superusers and roles with BYPASSRLS from every policy, so Masivo must never
connect as one. A table's owner can also switch its policies off (`ALTER TABLE … DISABLE ROW
LEVEL SECURITY`), so in the split set-up the application role owns nothing: the owner role runs
the migrations and owns every table, and the application role holds only the DML it needs. This
creates (or repairs) the roles and their database using an administrator's connection; `masivo
db bootstrap` and the embedded runtime both call it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB NOCREATEROLE"


def _ensure_role(admin, role: str, password: str | None) -> None:
    exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
    verb = "ALTER" if exists else "CREATE"
    statement = sql.SQL("{} ROLE {} " + ROLE_ATTRIBUTES).format(sql.SQL(verb), sql.Identifier(role))
    if password:
        statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
    admin.execute(statement)


def _ensure_database(admin, database: str, owner: str) -> None:
    has_db = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
    verb = "ALTER DATABASE {} OWNER TO {}" if has_db else "CREATE DATABASE {} OWNER {}"
    admin.execute(sql.SQL(verb).format(sql.Identifier(database), sql.Identifier(owner)))


def bootstrap_app_role(*, admin_url: str, role: str, password: str | None, database: str) -> None:
    """The single-role set-up: the application role owns the database (and so the tables)."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        _ensure_role(admin, role, password)
        has_db = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if not has_db:
            _ensure_database(admin, database, role)


# Objects of the schema the application role may still own from a single-role install; a table's
# own sequences (serial, identity) follow the table.
_OWNED_BY_APP = """
SELECT format('ALTER %%s %%I.%%I OWNER TO %%I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                             WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              n.nspname, c.relname, %(owner)s::text)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relowner = %(app)s::text::regrole AND n.nspname = 'public'
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype IN ('a', 'i'))
UNION ALL
SELECT format('ALTER ROUTINE %%s OWNER TO %%I', p.oid::regprocedure, %(owner)s::text)
FROM pg_proc p
WHERE p.proowner = %(app)s::text::regrole AND p.pronamespace = 'public'::regnamespace
"""


def grant_app_privileges(cursor, *, owner: str, app: str) -> None:
    """The application role's DML on what exists, and on what `owner` creates later. Idempotent;
    run by the administrator (bootstrap) or by the owner itself (after a test database's
    migrations, which start from a template that has none of these defaults)."""
    names = {"owner": sql.Identifier(owner), "app": sql.Identifier(app)}
    for statement in [
        "GRANT USAGE ON SCHEMA public TO {app}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}",
        "GRANT EXECUTE ON ALL ROUTINES IN SCHEMA public TO {app}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        "GRANT USAGE, SELECT ON SEQUENCES TO {app}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        "GRANT EXECUTE ON ROUTINES TO {app}",
    ]:
        cursor.execute(sql.SQL(statement).format(**names))


def bootstrap_split_roles(
    *,
    admin_url: str,
    owner: str,
    owner_password: str | None,
    app: str,
    app_password: str | None,
    database: str,
) -> None:
    """The owner role owns the database and the schema; the application role gets DML only.
    Safe to run again, and turns a single-role install into a split one: what the application
    role owned in the schema passes to the owner."""
    if owner == app:
        raise ValueError("the owner and the application must be different roles")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        _ensure_role(admin, owner, owner_password)
        _ensure_role(admin, app, app_password)
        _ensure_database(admin, database, owner)
        admin.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(app)
            )
        )
    database_url = make_conninfo(admin_url, dbname=database)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(owner)))
        admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        for (statement,) in admin.execute(_OWNED_BY_APP, {"owner": owner, "app": app}).fetchall():
            admin.execute(statement)
        with admin.cursor() as cursor:
            grant_app_privileges(cursor, owner=owner, app=app)


def _role_and_database(url: str, what: str) -> tuple[str, str | None, str]:
    parts = urlsplit(url)
    role = unquote(parts.username or "")
    database = unquote(parts.path.lstrip("/"))
    if not role or not database:
        raise ValueError(f"the {what} URL must name a user and a database")
    return role, unquote(parts.password) if parts.password else None, database


def bootstrap_from_urls(*, admin_url: str, app_url: str, owner_url: str | None = None) -> str:
    role, password, database = _role_and_database(app_url, "app")
    if owner_url is None:
        bootstrap_app_role(admin_url=admin_url, role=role, password=password, database=database)
        return role
    owner, owner_password, owner_database = _role_and_database(owner_url, "owner")
    if owner_database != database:
        raise ValueError("the owner URL and the app URL must name the same database")
    bootstrap_split_roles(
        admin_url=admin_url,
        owner=owner,
        owner_password=owner_password,
        app=role,
        app_password=password,
        database=database,
    )
    return role


def login_of(url: str) -> dict:
    """The USER and PASSWORD of a postgres:// URL, as Django's DATABASES entry spells them."""
    parts = urlsplit(url)
    return {"USER": unquote(parts.username or ""), "PASSWORD": unquote(parts.password or "")}


@contextmanager
def schema_owner(owner_url: str | None) -> Iterator[None]:
    """Run the block (migrations, creating a test database) on the default connection as the
    owner role of `owner_url`; without one (the single-role set-up), as the application role.
    The database name stays: a test run has swapped in its own."""
    if not owner_url:
        yield
        return
    from django.db import connections

    connection = connections["default"]
    swapped = login_of(owner_url)
    saved = {key: connection.settings_dict[key] for key in swapped}
    connection.close()
    connection.settings_dict.update(swapped)
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def role_bypasses_rls(connection) -> bool:
    """True when the connected role would not be bound by row-level security."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        return bool(cursor.fetchone()[0])
