"""Writes for organizations, workspaces, members, accounts and API keys (invitations are in
`invitations`)."""

from __future__ import annotations

import logging
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from masivo.tenancy import keycache, keys
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import all_workspaces, workspace_scope
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed, Unavailable
from masivo.tenancy.models import ApiKey, Member, Organization, Workspace
from masivo.tenancy.roles import Permission, Role, role_at_least

LAST_USED_RESOLUTION = timedelta(minutes=1)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MintedKey:
    """A key just created: the only moment its token is known."""

    api_key: ApiKey
    token: str


def _require(actor: Actor, permission: Permission) -> None:
    if not actor.can(permission):
        raise NotAllowed(f"the {actor.role} role may not {permission.value.replace('_', ' ')}")


def organization_create(*, name: str) -> Organization:
    name = name.strip()
    if not name:
        raise InvalidInput("an organization needs a name", field="name")
    base = slugify(name)[:50] or "org"
    slug, suffix = base, 1
    while Organization.objects.filter(slug=slug).exists():
        suffix += 1
        slug = f"{base}-{suffix}"
    return Organization.objects.create(name=name, slug=slug)


def _validate_timezone(value: str) -> str:
    if value not in zoneinfo.available_timezones():
        raise InvalidInput(f"{value!r} is not an IANA time zone", field="timezone")
    return value


def workspace_create(
    *, organization: Organization, name: str, timezone_name: str = "UTC"
) -> Workspace:
    name = name.strip()
    if not name:
        raise InvalidInput("a workspace needs a name", field="name")
    _validate_timezone(timezone_name)
    if organization.workspaces.filter(name__iexact=name).exists():
        raise Conflict(f"a workspace named {name!r} already exists", field="name")
    try:
        with transaction.atomic():
            return Workspace.objects.create(
                organization=organization, name=name, timezone=timezone_name
            )
    except IntegrityError as error:
        raise Conflict(f"a workspace named {name!r} already exists", field="name") from error


@transaction.atomic
def workspace_provision(
    *, organization: Organization, name: str, timezone_name: str = "UTC"
) -> tuple[Workspace, MintedKey, MintedKey]:
    """A new workspace with its write key and a first admin secret key."""
    workspace = workspace_create(organization=organization, name=name, timezone_name=timezone_name)
    with workspace_scope(workspace.id):
        write_key = api_key_create(
            workspace=workspace, kind=ApiKey.Kind.WRITE, name="Default write key"
        )
        secret_key = api_key_create(
            workspace=workspace, kind=ApiKey.Kind.SECRET, name="Default secret key", role=Role.ADMIN
        )
    return workspace, write_key, secret_key


def workspace_update(
    *, workspace: Workspace, actor: Actor, name: str | None = None, timezone_name: str | None = None
) -> Workspace:
    """Rename and/or set the time zone; everything is checked before anything changes."""
    _require(actor, Permission.MANAGE_WORKSPACE)
    if name is not None:
        name = name.strip()
        if not name:
            raise InvalidInput("a workspace needs a name", field="name")
        clash = workspace.organization.workspaces.filter(name__iexact=name).exclude(id=workspace.id)
        if clash.exists():
            raise Conflict(f"a workspace named {name!r} already exists", field="name")
    if timezone_name is not None:
        _validate_timezone(timezone_name)
    if name is not None:
        workspace.name = name
    if timezone_name is not None:
        workspace.timezone = timezone_name
    workspace.save(update_fields=["name", "timezone"])
    workspaces_key_caches_invalidate(workspace_ids=[workspace.id])
    return workspace


def api_key_create(
    *,
    workspace: Workspace,
    kind: str,
    name: str,
    role: str = "",
    actor: Actor | None = None,
) -> MintedKey:
    """Mint a key. Needs the workspace in context (the table is under RLS)."""
    if actor is not None:
        _require(actor, Permission.MANAGE_KEYS)
    name = name.strip()
    if not name:
        raise InvalidInput("a key needs a name", field="name")
    if kind == ApiKey.Kind.WRITE:
        role = ""
    elif kind == ApiKey.Kind.SECRET:
        if role not in (Role.ADMIN, Role.MARKETER, Role.VIEWER):
            raise InvalidInput("a secret key's role is admin, marketer or viewer", field="role")
        if actor is not None and not role_at_least(actor.role, role):
            raise NotAllowed(
                f"a {actor.role} cannot create a key with the {role} role", field="role"
            )
    else:
        raise InvalidInput("kind is 'write' or 'secret'", field="kind")
    token = keys.generate_token(kind)
    api_key = ApiKey.objects.create(
        workspace=workspace,
        kind=kind,
        name=name,
        role=role,
        prefix=keys.display_prefix(token),
        token_hash=keys.hash_token(token),
        created_by_id=actor.user_id if actor else None,
    )
    return MintedKey(api_key=api_key, token=token)


def _key_caches_invalidate_after_commit(token_hashes: list[str]) -> None:
    def invalidate():
        try:
            keycache.tokens_invalidate(token_hashes)
        except redis.RedisError:
            # Only a backstop is left for the processes that cached these keys: MAX_AGE_SECONDS.
            logger.error("api key caches not invalidated: Redis unavailable", exc_info=True)

    transaction.on_commit(invalidate)


def api_key_revoke(*, api_key: ApiKey, actor: Actor, now: datetime | None = None) -> ApiKey:
    """Revoke a key; it stops working on the next request, in every process. Revoking twice
    is a no-op.

    Every process's cached copy is invalidated in Redis twice: before the commit (if Redis
    cannot be told, nothing changes and the revoke is refused with 503: a process idle through
    the outage would otherwise trust its copy afterwards) and after it (a process that reloaded
    in between read the key still active)."""
    _require(actor, Permission.MANAGE_KEYS)
    if actor.api_key_id == api_key.id:
        raise Conflict("a key cannot revoke itself; use another key or the dashboard")
    now = now or timezone.now()
    with transaction.atomic():
        revoked = ApiKey.objects.filter(id=api_key.id, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if revoked:
            try:
                keycache.tokens_invalidate([api_key.token_hash])
            except redis.RedisError as error:
                raise Unavailable(
                    "the key could not be revoked: Redis, which tells every process, is "
                    "unavailable; nothing changed, try again"
                ) from error
            _key_caches_invalidate_after_commit([api_key.token_hash])
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def workspaces_key_caches_invalidate(*, workspace_ids: list[int]) -> None:
    """After the commit, every process reloads these workspaces' keys (and with them the
    workspace and organization each request carries): after a rename, a new time zone, a
    deletion. Call it before deleting, while the keys still exist."""
    with all_workspaces(reason="api key caches: a workspace changed or is deleted"):
        token_hashes = list(
            ApiKey.objects.filter(workspace_id__in=workspace_ids).values_list(
                "token_hash", flat=True
            )
        )
    for token_hash in token_hashes:  # this process at once: its next request sees the change
        keycache.api_key_forget(token_hash)
    _key_caches_invalidate_after_commit(token_hashes)


def _api_key_load(token_hash: str) -> ApiKey | None:
    # Logged at DEBUG: it runs on every request that misses this process's cache.
    with all_workspaces(
        reason="api key lookup: the token names its workspace", log_level=logging.DEBUG
    ):
        return (
            ApiKey.objects.select_related("workspace", "workspace__organization")
            .filter(token_hash=token_hash, revoked_at__isnull=True)
            .first()
        )


def api_key_authenticate(token: str, *, now: datetime | None = None) -> ApiKey | None:
    """The active key for a token, from any workspace; records when it was last used (at most
    once a minute). Served from this process's cache while Redis says the key is unchanged
    (`keycache`); from the database otherwise, and always when Redis is down."""
    if keys.token_kind(token) is None:
        return None
    now = now or timezone.now()
    token_hash = keys.hash_token(token)
    api_key, version = keycache.cached_api_key(token_hash)
    is_fresh = api_key is None
    if is_fresh:
        api_key = _api_key_load(token_hash)
        if api_key is None:
            keycache.api_key_forget(token_hash)
            return None
    is_used_long_ago = (
        api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION
    )
    if is_used_long_ago:
        with workspace_scope(api_key.workspace_id):
            ApiKey.objects.filter(id=api_key.id).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
            ).update(last_used_at=now)
        api_key.last_used_at = now
    if version is not None and (is_fresh or is_used_long_ago):
        keycache.api_key_remember(token_hash, api_key, version=version)
    return api_key


def _owner_count(organization: Organization) -> int:
    return organization.members.filter(role=Role.OWNER).count()


def _validate_role(role: str) -> str:
    if role not in Role.values:
        raise InvalidInput(f"role is one of {', '.join(Role.values)}", field="role")
    return role


def user_set_password(*, email: str, password: str) -> None:
    """Set an account's password (operators: `masivo user set-password`). Checked by the same
    validators as the dashboard's forms."""
    user = (
        get_user_model()
        .objects.filter(Q(username__iexact=email.strip()) | Q(email__iexact=email.strip()))
        .order_by("id")
        .first()
    )
    if user is None:
        raise InvalidInput(f"no account has the email {email.strip()!r}", field="email")
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as error:
        raise InvalidInput(" ".join(error.messages), field="password") from error
    user.set_password(password)
    user.save(update_fields=["password"])


def member_change_role(*, member: Member, role: str, actor: Actor) -> Member:
    _require(actor, Permission.MANAGE_MEMBERS)
    _validate_role(role)
    touches_owner = Role.OWNER in (member.role, role)
    if touches_owner and not actor.can(Permission.MANAGE_ORGANIZATION):
        raise NotAllowed("only owners can grant or take away the owner role", field="role")
    with transaction.atomic():
        # Lock the organization's owners so two demotions cannot both pass the last-owner check.
        list(member.organization.members.select_for_update().filter(role=Role.OWNER))
        if (
            member.role == Role.OWNER
            and role != Role.OWNER
            and _owner_count(member.organization) == 1
        ):
            raise Conflict("an organization needs at least one owner", field="role")
        member.role = role
        member.save(update_fields=["role"])
    return member


def member_remove(*, member: Member, actor: Actor) -> None:
    _require(actor, Permission.MANAGE_MEMBERS)
    if member.role == Role.OWNER and not actor.can(Permission.MANAGE_ORGANIZATION):
        raise NotAllowed("only owners can remove owners")
    with transaction.atomic():
        list(member.organization.members.select_for_update().filter(role=Role.OWNER))
        if member.role == Role.OWNER and _owner_count(member.organization) == 1:
            raise Conflict("an organization needs at least one owner")
        member.delete()
