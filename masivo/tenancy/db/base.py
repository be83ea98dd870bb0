"""PostgreSQL backend that mirrors the workspace context into row-level-security settings.

Every tenant table's policy reads two settings: `masivo.workspace_id` (the workspace whose rows are
visible) and `masivo.all_workspaces` ('on' only inside the named escape hatch). Before each
statement, this backend makes the connection's settings equal the current context, sending a
`set_config` only when they differ. A rollback reverts settings changed inside the transaction,
so after any rollback the connection's state is treated as unknown and set again.
"""

from django.db.backends.postgresql import base as postgresql

from masivo.tenancy.context import current_scope

_UNKNOWN = object()
_SET_SCOPE_SQL = (
    "SELECT set_config('masivo.workspace_id', %s, false), "
    "set_config('masivo.all_workspaces', %s, false)"
)


def scope_settings() -> tuple[str, str]:
    scope = current_scope()
    workspace = "" if scope.workspace_id is None else str(scope.workspace_id)
    return workspace, "on" if scope.is_all_workspaces else ""


class DatabaseWrapper(postgresql.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._scope_on_connection = _UNKNOWN
        self.execute_wrappers.append(self._apply_scope)

    def init_connection_state(self):
        super().init_connection_state()
        self._scope_on_connection = _UNKNOWN

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._scope_on_connection = _UNKNOWN

    def _savepoint_rollback(self, sid):
        # On the raw connection: the transaction may be aborted, so no set_config may go first.
        with self.wrap_database_errors, self.connection.cursor() as raw_cursor:
            raw_cursor.execute(self.ops.savepoint_rollback_sql(sid))
        self._scope_on_connection = _UNKNOWN

    def _close(self):
        self._scope_on_connection = _UNKNOWN
        return super()._close()

    def apply_scope(self) -> None:
        """Bring the connection's RLS settings in line with the context.

        Call it before using the raw psycopg connection directly (COPY); Django's own cursors
        call it before every statement.
        """
        wanted = scope_settings()
        if self._scope_on_connection != wanted:
            # A plain cursor of its own: the statement's cursor may be a server-side one.
            with self.wrap_database_errors, self.connection.cursor() as raw_cursor:
                raw_cursor.execute(_SET_SCOPE_SQL, wanted)
            self._scope_on_connection = wanted

    def _apply_scope(self, execute, sql, params, many, context):
        self.apply_scope()
        return execute(sql, params, many, context)
