import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from masivo.dbsetup import login_of, role_bypasses_rls
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import ApiKey
from masivo.tenancy.redis import get_redis
from masivo.tenancy.roles import Role
from masivo.tenancy.services import api_key_create
from tests.factories import MemberFactory, WorkspaceFactory


@pytest.fixture(scope="session", autouse=True)
def _own_redis_counters():
    """Counters under a prefix of this run's own: key ids repeat across test databases, and
    another run may share the Redis server."""
    settings.MASIVO_REDIS_PREFIX = f"masivo-test-{uuid.uuid4().hex[:12]}:"
    yield
    client = get_redis()
    for key in client.scan_iter(f"{settings.MASIVO_REDIS_PREFIX}*"):
        client.delete(key)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """With split roles (DATABASE_OWNER_URL), the test database is created, migrated and used as
    the schema owner, which is what the single role is today: some tests run DDL. The migrations
    grant the application role its DML; tests/tenancy/test_role_split.py connects as that role."""
    if settings.DATABASE_OWNER_URL:
        connection.close()
        connection.settings_dict.update(login_of(settings.DATABASE_OWNER_URL))


@pytest.fixture(autouse=True)
def _refuse_privileged_role(db):
    """Every test runs as a role that row-level security binds; a superuser would hide leaks."""
    assert not role_bypasses_rls(connection), "tests must connect as the non-superuser app role"


@pytest.fixture(autouse=True)
def _fakes_are_reachable(settings):
    """The local fakes listen on 127.0.0.1, which the outbound guard refuses by default; an
    SSRF test sets the allow-list back to [] to see the refusal."""
    settings.MASIVO_OUTBOUND_ALLOWLIST = ["127.0.0.1"]


@pytest.fixture
def workspace():
    return WorkspaceFactory(name="Acme")


@pytest.fixture
def other_workspace():
    return WorkspaceFactory(name="Globex")


@pytest.fixture
def owner(workspace):
    return MemberFactory(organization=workspace.organization, role=Role.OWNER)


@pytest.fixture
def member(workspace):
    """A marketer in the workspace's organization."""
    return MemberFactory(organization=workspace.organization, role=Role.MARKETER)


@pytest.fixture
def viewer(workspace):
    return MemberFactory(organization=workspace.organization, role=Role.VIEWER)


@pytest.fixture
def outsider(other_workspace):
    """An owner of another organization: must see nothing of `workspace`."""
    return MemberFactory(organization=other_workspace.organization, role=Role.OWNER)


def mint_secret_key(workspace, role=Role.ADMIN) -> str:
    with workspace_scope(workspace.id):
        return api_key_create(
            workspace=workspace, kind=ApiKey.Kind.SECRET, name=f"{role} key", role=role
        ).token


def bearer_client(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def api(workspace):
    """A client holding an admin secret key of `workspace`."""
    return bearer_client(mint_secret_key(workspace))


@pytest.fixture
def other_api(other_workspace):
    return bearer_client(mint_secret_key(other_workspace))
