"""Creating the application's database role: a login that row-level security applies to.

Postgres exempts superusers and roles with BYPASSRLS from every policy, so Masivo must never
connect as one. This creates (or repairs) the role and its database using an administrator's
connection; `masivo db bootstrap` and the embedded runtime both call it.
"""

from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql


def bootstrap_app_role(*, admin_url: str, role: str, password: str | None, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        verb = "ALTER" if exists else "CREATE"
        statement = sql.SQL(
            "{} ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB NOCREATEROLE"
        ).format(sql.SQL(verb), sql.Identifier(role))
        if password:
            statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
        admin.execute(statement)
        has_db = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if not has_db:
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(role)
                )
            )


def bootstrap_from_urls(*, admin_url: str, app_url: str) -> str:
    parts = urlsplit(app_url)
    role = unquote(parts.username or "")
    database = unquote(parts.path.lstrip("/"))
    if not role or not database:
        raise ValueError("the app URL must name a user and a database")
    bootstrap_app_role(
        admin_url=admin_url,
        role=role,
        password=unquote(parts.password) if parts.password else None,
        database=database,
    )
    return role


def role_bypasses_rls(connection) -> bool:
    """True when the connected role would not be bound by row-level security."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        return bool(cursor.fetchone()[0])
