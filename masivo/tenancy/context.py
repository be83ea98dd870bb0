"""The workspace context: which tenant the current request or task acts for.

Both walls read it: the scoped manager filters by it (wall one) and the database backend mirrors
it into the Postgres settings that row-level security checks (wall two). It is a ContextVar, so
threads and asyncio tasks each carry their own.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scope:
    workspace_id: int | None = None
    all_workspaces_reason: str | None = None

    @property
    def is_all_workspaces(self) -> bool:
        return self.all_workspaces_reason is not None


NO_SCOPE = Scope()
_scope: contextvars.ContextVar[Scope] = contextvars.ContextVar("masivo_scope", default=NO_SCOPE)


class MissingWorkspaceContext(RuntimeError):
    """A tenant model was queried outside any workspace context."""


def current_scope() -> Scope:
    return _scope.get()


def current_workspace_id() -> int | None:
    return _scope.get().workspace_id


def require_workspace_id() -> int:
    workspace_id = _scope.get().workspace_id
    if workspace_id is None:
        raise MissingWorkspaceContext("this needs a workspace context (workspace_scope)")
    return workspace_id


@contextmanager
def workspace_scope(workspace_id: int) -> Iterator[None]:
    """Act for one workspace: tenant queries inside see only its rows."""
    if not isinstance(workspace_id, int) or isinstance(workspace_id, bool):
        raise TypeError(f"workspace_id must be an int, not {type(workspace_id).__name__}")
    token = _scope.set(Scope(workspace_id=workspace_id))
    try:
        yield
    finally:
        _scope.reset(token)


@contextmanager
def all_workspaces(*, reason: str, log_level: int = logging.INFO) -> Iterator[None]:
    """The escape hatch for the few cross-tenant jobs (beat sweeps, key lookup, operators).

    Visible on purpose: every use names why it must see every workspace, each entry is logged
    with that reason (at INFO; the API-key lookup, which runs on requests, passes DEBUG), and
    tests/tenancy/test_all_workspaces_sites.py lists the call sites, so a new one is a reviewed
    change.
    """
    if not reason:
        raise ValueError("all_workspaces() needs a reason")
    logger.log(
        log_level,
        "entering all-workspaces scope: %s",
        reason,
        extra={"all_workspaces_reason": reason},
    )
    token = _scope.set(Scope(all_workspaces_reason=reason))
    try:
        yield
    finally:
        _scope.reset(token)


def set_scope_for_request(scope: Scope) -> contextvars.Token:
    """Used by middleware/authentication, which cannot wrap the request in a `with` block."""
    return _scope.set(scope)


def reset_scope(token: contextvars.Token | None = None) -> None:
    if token is not None:
        _scope.reset(token)
    else:
        _scope.set(NO_SCOPE)
