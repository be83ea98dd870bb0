"""API keys looked up once per process, with revocation still immediate across processes.

A token's key (with its workspace and organization) is kept in this process's memory, and
trusted only while the token's version in Redis is the one read *before* the key was loaded
from the database. Revoking a key, or changing its workspace, deletes that version, so the next
request in any process finds a new one and reloads. The version is random (never a counter), so
Redis losing its data, or a flush, also makes every process reload.

When Redis cannot be asked, the lookup goes to the database and this process's entries are
dropped: a stale entry is never used. Revoking needs Redis (the service refuses with 503
otherwise), so a revocation cannot slip past a process that was idle during an outage.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass

import redis
from django.conf import settings

from masivo.tenancy.models import ApiKey, Organization, Workspace
from masivo.tenancy.redis import get_redis

logger = logging.getLogger(__name__)

MAX_ENTRIES = 10_000  # a process serving more distinct keys than this starts over
# A backstop only: the one window the version cannot close is Redis dying between a revoke's
# commit and its second delete (api_key_revoke), so an entry is reloaded after this at most.
MAX_AGE_SECONDS = 300


@dataclass(frozen=True)
class _Entry:
    version: bytes
    loaded_at: float
    api_key: dict
    workspace: dict
    organization: dict


_entries: dict[str, _Entry] = {}


def version_key(token_hash: str) -> str:
    return f"{settings.MASIVO_REDIS_PREFIX}apikey:{token_hash}:version"


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.fields}


def _rebuilt(entry: _Entry) -> ApiKey:
    """Fresh model instances for each request, so a view that changes one (workspace_update
    sets the name on request.workspace) never changes what other requests see."""
    workspace = Workspace(**entry.workspace)
    workspace.organization = Organization(**entry.organization)
    api_key = ApiKey(**entry.api_key)
    api_key.workspace = workspace
    for instance in (api_key, workspace, workspace.organization):
        instance._state.adding = False
    return api_key


def current_version(token_hash: str) -> bytes:
    """The token's version, made (randomly) when Redis has none. Raises redis.RedisError."""
    client = get_redis()
    key = version_key(token_hash)
    version = client.get(key)
    if version is None:
        client.set(key, secrets.token_hex(8), nx=True)
        version = client.get(key)
    return version


def cached_api_key(token_hash: str) -> tuple[ApiKey | None, bytes | None]:
    """(this process's key for the token, or None when it has no current one; the token's
    version, to store with a fresh load, or None when Redis is down and nothing may be kept)."""
    try:
        version = current_version(token_hash)
    except redis.RedisError:
        logger.warning("api key cache skipped: Redis unavailable", exc_info=True)
        _entries.clear()
        return None, None
    entry = _entries.get(token_hash)
    if entry is None or entry.version != version:
        return None, version
    if time.monotonic() - entry.loaded_at > MAX_AGE_SECONDS:
        return None, version
    return _rebuilt(entry), version


def api_key_remember(token_hash: str, api_key: ApiKey, *, version: bytes) -> None:
    """Keep an active key, loaded (or last changed) after `version` was read. An entry already
    held keeps its load time, so MAX_AGE_SECONDS counts from the database read."""
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
    held = _entries.get(token_hash)
    _entries[token_hash] = _Entry(
        version=version,
        loaded_at=held.loaded_at if held and held.version == version else time.monotonic(),
        api_key=_fields(api_key),
        workspace=_fields(api_key.workspace),
        organization=_fields(api_key.workspace.organization),
    )


def api_key_forget(token_hash: str) -> None:
    """Drop this process's entry (a revoked or unknown token)."""
    _entries.pop(token_hash, None)


def tokens_invalidate(token_hashes: list[str]) -> None:
    """Every process reloads these keys on their next request. Raises redis.RedisError."""
    for token_hash in token_hashes:
        _entries.pop(token_hash, None)
    if token_hashes:
        get_redis().delete(*[version_key(token_hash) for token_hash in token_hashes])


def cache_clear() -> None:
    """This process's entries only (tests, and after an outage)."""
    _entries.clear()
