"""API keys are cached per process, and a revocation still stops a key at once everywhere:
revoked here, refused by another process on its next request; Redis down means the database."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from masivo.tenancy import keycache, keys
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.errors import Unavailable
from masivo.tenancy.models import ApiKey
from masivo.tenancy.redis import get_redis
from masivo.tenancy.roles import Role
from masivo.tenancy.services import (
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
    workspace_update,
)

ROOT = Path(__file__).resolve().parents[2]
OWNER = Actor(role=Role.OWNER, user_id=None)

# Another process with the same settings and test database: reads tokens on stdin, answers
# "<key id or refused> <queries the lookup ran>" for each.
OTHER_PROCESS = """
import sys
import django
django.setup()
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
settings.MASIVO_REDIS_PREFIX = sys.argv[1]
from masivo.tenancy.services import api_key_authenticate
for line in sys.stdin:
    with CaptureQueriesContext(connection) as queries:
        api_key = api_key_authenticate(line.strip())
    print(api_key.id if api_key else "refused", len(queries), flush=True)
"""


@pytest.fixture(autouse=True)
def _empty_cache():
    keycache.cache_clear()
    yield
    keycache.cache_clear()


def mint(workspace, name="backend") -> tuple[ApiKey, str]:
    with workspace_scope(workspace.id):
        minted = api_key_create(
            workspace=workspace, kind=ApiKey.Kind.SECRET, name=name, role=Role.VIEWER
        )
    return minted.api_key, minted.token


class OtherProcess:
    def __init__(self):
        database = connection.settings_dict
        url = (
            f"postgresql://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
            f"{database['PORT']}/{database['NAME']}"
        )
        env = os.environ | {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "masivo.settings"}
        env.pop("DATABASE_OWNER_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-c", OTHER_PROCESS, settings.MASIVO_REDIS_PREFIX],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def authenticate(self, token: str) -> tuple[str, int]:
        self.process.stdin.write(token + "\n")
        self.process.stdin.flush()
        key_id, queries = self.process.stdout.readline().split()
        return key_id, int(queries)

    def close(self):
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0


@pytest.mark.django_db(transaction=True)
def test_a_key_revoked_in_one_process_is_refused_by_another_on_its_next_request(workspace):
    api_key, token = mint(workspace)
    other = OtherProcess()
    try:
        # The first lookup loads the key (and records its use); the next ones are cached.
        assert other.authenticate(token) == (str(api_key.id), 1 + 1)
        assert other.authenticate(token) == (str(api_key.id), 0)
        assert other.authenticate(token) == (str(api_key.id), 0)

        with workspace_scope(workspace.id):
            api_key_revoke(api_key=api_key, actor=OWNER)

        assert other.authenticate(token) == ("refused", 1)
        assert other.authenticate(token) == ("refused", 1)  # an unknown token is never cached
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_another_process_sees_a_renamed_workspace_on_its_next_request(workspace):
    api_key, token = mint(workspace)
    other = OtherProcess()
    try:
        assert other.authenticate(token) == (str(api_key.id), 2)
        with workspace_scope(workspace.id):
            workspace_update(workspace=workspace, actor=OWNER, name="Renamed")
        # workspace_update invalidated after its commit: a reload, without a use to record.
        assert other.authenticate(token) == (str(api_key.id), 1)
        assert other.authenticate(token) == (str(api_key.id), 0)
    finally:
        other.close()


@pytest.mark.django_db
def test_a_cached_lookup_runs_no_query_and_gives_a_copy_of_its_own(workspace):
    api_key, token = mint(workspace)
    first = api_key_authenticate(token)
    with CaptureQueriesContext(connection) as queries:
        second = api_key_authenticate(token)
    assert len(queries) == 0
    assert (second.id, second.workspace.name, second.workspace.organization.name) == (
        api_key.id,
        "Acme",
        workspace.organization.name,
    )
    second.workspace.name = "changed by a view"
    assert second.workspace is not first.workspace
    assert api_key_authenticate(token).workspace.name == "Acme"


@pytest.mark.django_db
def test_revoking_in_this_process_refuses_the_next_request(workspace):
    api_key, token = mint(workspace)
    assert api_key_authenticate(token).id == api_key.id
    with workspace_scope(workspace.id):
        api_key_revoke(api_key=api_key, actor=OWNER)
    assert api_key_authenticate(token) is None


@pytest.mark.django_db
def test_a_version_lost_in_redis_makes_the_process_reload(workspace):
    """Redis restarted without its data: the version is made anew and never matches."""
    api_key, token = mint(workspace)
    api_key_authenticate(token)
    get_redis().delete(keycache.version_key(keys.hash_token(token)))
    with CaptureQueriesContext(connection) as queries:
        assert api_key_authenticate(token).id == api_key.id
    assert [query["sql"].split()[0] for query in queries.captured_queries] == ["SELECT"]


@pytest.fixture
def redis_down(settings):
    """A Redis client for a port where nothing listens."""
    get_redis.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    yield
    get_redis.cache_clear()


@pytest.mark.django_db
def test_with_redis_down_every_lookup_goes_to_the_database(workspace, redis_down):
    api_key, token = mint(workspace)
    for statements in (["SELECT", "UPDATE"], ["SELECT"]):  # the second: used a moment ago
        with CaptureQueriesContext(connection) as queries:
            assert api_key_authenticate(token).id == api_key.id
        assert [q["sql"].split()[0] for q in queries.captured_queries] == statements
    assert keycache._entries == {}


@pytest.mark.django_db
def test_an_outage_drops_what_was_cached_before_it(workspace, settings):
    api_key, token = mint(workspace)
    api_key_authenticate(token)
    assert list(keycache._entries) == [keys.hash_token(token)]
    get_redis.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        assert api_key_authenticate(token).id == api_key.id
        assert keycache._entries == {}
    finally:
        get_redis.cache_clear()


@pytest.mark.django_db
def test_with_redis_down_a_revoke_is_refused_and_changes_nothing(workspace, redis_down):
    api_key, _ = mint(workspace)
    with workspace_scope(workspace.id):
        with pytest.raises(Unavailable, match="could not be revoked"):
            api_key_revoke(api_key=api_key, actor=OWNER)
        assert ApiKey.objects.get(id=api_key.id).revoked_at is None
    with pytest.raises(redis.RedisError):
        get_redis().ping()


@pytest.mark.django_db
def test_the_api_answers_a_revoke_with_redis_down_with_503_and_the_key_still_works(
    api, workspace, redis_down
):
    api_key, token = mint(workspace)
    response = api.post(f"/api/v1/api-keys/{api_key.id}/revoke")
    assert (response.status_code, response.json()["code"]) == (503, "unavailable")
    assert api_key_authenticate(token).id == api_key.id


@pytest.mark.django_db
def test_this_process_sees_a_renamed_workspace_before_the_commit(api, workspace):
    assert api.get("/api/v1/workspace").json()["name"] == "Acme"
    assert (
        api.patch("/api/v1/workspace", {"name": "Renamed"}, content_type="application/json").json()[
            "name"
        ]
        == "Renamed"
    )
    assert api.get("/api/v1/workspace").json()["name"] == "Renamed"
