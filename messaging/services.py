"""Channel connections: connect, update, test and disconnect a workspace's provider accounts.

One owner for `ChannelConnection`: the API, the dashboard and later the send pipeline's
settings pages all call these. Managing connections is a workspace setting
(`Permission.MANAGE_WORKSPACE`, admins and owners).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from masivo.tenancy.actors import Actor
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed
from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Permission
from messaging.channels import PROVIDERS
from messaging.channels.base import Provider, TestOutcome
from messaging.models import ChannelConnection


def _require(actor: Actor) -> None:
    if not actor.can(Permission.MANAGE_WORKSPACE):
        raise NotAllowed("only admins and owners manage channel connections")


def provider_for(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown provider; one of {', '.join(PROVIDERS)}", field="provider"
        ) from None


def _clean(provider: Provider, values: dict) -> tuple[dict, dict]:
    """Split `values` into cleaned (settings, credentials); a field the provider does not have
    or a bad value is an InvalidInput naming it. An empty optional setting clears it."""
    settings, credentials = {}, {}
    for name, value in values.items():
        field = provider.fields.get(name)
        if field is None:
            raise InvalidInput(f"not a {provider.label} setting", field=name)
        try:
            cleaned = field.clean(value)
        except ValueError as error:
            raise InvalidInput(str(error), field=name) from None
        if field.is_secret and cleaned in ("", None):
            raise InvalidInput("must not be empty", field=name)
        (credentials if field.is_secret else settings)[name] = cleaned
    return settings, credentials


def _complete(provider: Provider, settings: dict, credentials: dict) -> None:
    for name, field in provider.fields.items():
        present = (credentials if field.is_secret else settings).get(name)
        if field.is_required and not present:
            raise InvalidInput("required", field=name)
    broken = provider.check_together(settings, credentials)
    if broken:
        raise InvalidInput(broken[1], field=broken[0])


def connection_create(
    *, workspace: Workspace, provider: str, values: dict, actor: Actor
) -> ChannelConnection:
    _require(actor)
    spec = provider_for(provider)
    settings, credentials = _clean(spec, values)
    _complete(spec, settings, credentials)
    try:
        with transaction.atomic():
            return ChannelConnection.objects.create(
                workspace=workspace,
                provider=spec.name,
                settings={name: value for name, value in settings.items() if value}
                | spec.derived_settings(credentials),
                credentials=credentials,
                credential_hints=spec.credential_hints(credentials),
                connected_by=actor.label,
            )
    except IntegrityError:
        raise Conflict(
            f"{spec.label} is already connected; update or disconnect that connection",
            field="provider",
        ) from None


def connection_update(
    *, connection: ChannelConnection, values: dict, actor: Actor
) -> ChannelConnection:
    """Replace the given fields, keep the others. New values need a new test, so the last
    test's result is cleared."""
    _require(actor)
    spec = provider_for(connection.provider)
    settings, credentials = _clean(spec, values)
    merged_settings = {
        name: value for name, value in (connection.settings | settings).items() if value
    }
    merged_credentials = connection.credentials | credentials
    _complete(spec, merged_settings, merged_credentials)
    connection.settings = merged_settings | spec.derived_settings(merged_credentials)
    connection.credentials = merged_credentials
    connection.credential_hints = spec.credential_hints(merged_credentials)
    connection.last_tested_at = None
    connection.last_test_ok = None
    connection.last_test_detail = ""
    connection.updated_at = timezone.now()
    connection.save()
    return connection


def connection_delete(*, connection: ChannelConnection, actor: Actor) -> None:
    """Disconnect: the row and its credentials are gone."""
    _require(actor)
    connection.delete()


def connection_test(*, connection: ChannelConnection, actor: Actor) -> TestOutcome:
    """Call the provider with the stored credentials (no transaction is held during the call)
    and record what it said on the connection."""
    _require(actor)
    outcome = PROVIDERS[connection.provider].test(
        settings=connection.settings, credentials=connection.credentials
    )
    tested_at = timezone.now()
    ChannelConnection.objects.filter(id=connection.id).update(
        last_tested_at=tested_at, last_test_ok=outcome.is_ok, last_test_detail=outcome.detail
    )
    connection.last_tested_at = tested_at
    connection.last_test_ok = outcome.is_ok
    connection.last_test_detail = outcome.detail
    return outcome
