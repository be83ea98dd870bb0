import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from masivo.tenancy import keys
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import ApiKey
from masivo.tenancy.roles import Role
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"msv_(?:sk|wk)_[0-9A-Za-z]{32}")


def url(workspace, suffix=""):
    return f"/w/{workspace.id}/settings/api-keys/{suffix}"


def keys_of(workspace) -> list[ApiKey]:
    with workspace_scope(workspace.id):
        return list(ApiKey.objects.order_by("id"))


def make_key(workspace, **fields) -> ApiKey:
    with workspace_scope(workspace.id):
        return ApiKeyFactory(workspace=workspace, **fields)


def test_a_created_key_is_shown_once_then_only_its_prefix(owner_client, owner, workspace):
    response = owner_client.post(
        url(workspace), {"name": "Backend", "kind": "secret", "role": Role.MARKETER}
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    content = response.content.decode()
    [token] = set(TOKEN.findall(content))
    [api_key] = keys_of(workspace)
    assert keys.hash_token(token) == api_key.token_hash
    assert (api_key.name, api_key.kind, api_key.role) == ("Backend", "secret", Role.MARKETER)
    assert api_key.prefix == token[:12]
    assert api_key.created_by_id == owner.user_id
    assert "It is shown only once" in content

    listing = owner_client.get(url(workspace)).content.decode()
    assert token not in listing
    assert TOKEN.findall(listing) == []
    assert f'<code class="key-prefix">{api_key.prefix}…</code>' in listing


def test_a_write_key_has_no_role(owner_client, workspace):
    response = owner_client.post(
        url(workspace), {"name": "Website", "kind": "write", "role": Role.ADMIN}
    )

    [api_key] = keys_of(workspace)
    assert (api_key.kind, api_key.role) == ("write", "")
    assert TOKEN.findall(response.content.decode())[0].startswith("msv_wk_")


def test_a_key_without_a_name_is_refused(owner_client, workspace):
    response = owner_client.post(url(workspace), {"name": "", "kind": "secret", "role": "viewer"})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert keys_of(workspace) == []


def test_a_secret_key_without_a_role_shows_the_service_error(owner_client, workspace):
    response = owner_client.post(url(workspace), {"name": "CI", "kind": "secret", "role": ""})

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "role": ["A secret key's role is admin, marketer or viewer"]
    }
    assert keys_of(workspace) == []


def test_the_list_shows_each_key_in_the_workspace_time_zone(owner_client, workspace):
    workspace.timezone = "America/Bogota"
    workspace.save()
    api_key = make_key(workspace, name="Old key", role=Role.VIEWER)
    with workspace_scope(workspace.id):
        ApiKey.objects.filter(id=api_key.id).update(
            created_at=datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
        )

    content = owner_client.get(url(workspace)).content.decode()

    row = content[content.index(f'id="api-key-{api_key.id}"') :].split("</tr>")[0]
    assert "Old key" in row
    assert "Dec 31, 2025" in row
    assert "Never" in row
    assert '<span class="badge badge-success">Active</span>' in row
    assert "Viewer" in row


def test_revoking_with_a_form_post_sets_revoked_at(owner_client, workspace):
    api_key = make_key(workspace, name="Old key")

    response = owner_client.post(url(workspace, f"{api_key.id}/revoke/"), follow=True)

    assert response.redirect_chain == [(url(workspace), 302)]
    assert "Revoked Old key. It stops working immediately." in response.content.decode()
    [stored] = keys_of(workspace)
    assert stored.revoked_at is not None


def test_revoking_with_htmx_returns_the_updated_row(owner_client, workspace):
    api_key = make_key(workspace, name="Old key")

    response = owner_client.post(url(workspace, f"{api_key.id}/revoke/"), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    content = response.content.decode().strip()
    assert content.startswith(f'<tr id="api-key-{api_key.id}" class="is-muted">')
    assert "Revoked" in content
    assert "hx-post" not in content
    [stored] = keys_of(workspace)
    assert stored.revoked_at is not None


def test_a_revoke_with_redis_down_says_so_and_changes_nothing(owner_client, workspace, settings):
    from masivo.tenancy.redis import get_redis

    api_key = make_key(workspace, name="Old key")
    get_redis.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        response = owner_client.post(url(workspace, f"{api_key.id}/revoke/"), follow=True)
    finally:
        get_redis.cache_clear()

    assert response.redirect_chain == [(url(workspace), 302)]
    assert "Old key was not revoked:" in response.content.decode()
    assert keys_of(workspace)[0].revoked_at is None


def test_the_revoke_link_asks_first(owner_client, workspace):
    api_key = make_key(workspace, name="Old key")

    listing = owner_client.get(url(workspace)).content.decode()
    confirm = owner_client.get(url(workspace, f"{api_key.id}/revoke/")).content.decode()

    revoke_url = url(workspace, f"{api_key.id}/revoke/")
    assert f'href="{revoke_url}" hx-post="{revoke_url}"' in listing
    assert escape("Revoke “Old key”? Anything using it stops working immediately.") in listing
    assert "Revoke “Old key”?" in confirm
    assert keys_of(workspace)[0].revoked_at is None


@pytest.mark.parametrize("client_fixture", ["member_client", "viewer_client"])
def test_marketers_and_viewers_see_no_key_controls(request, workspace, client_fixture):
    make_key(workspace, name="Old key")
    client = request.getfixturevalue(client_fixture)

    content = client.get(url(workspace)).content.decode()

    assert "Old key" in content
    assert "Create a key" not in content
    assert 'name="kind"' not in content
    assert "Revoke" not in content


@pytest.mark.parametrize("client_fixture", ["member_client", "viewer_client"])
def test_marketers_and_viewers_posting_get_403_and_nothing_changes(
    request, workspace, client_fixture
):
    api_key = make_key(workspace, name="Old key")
    client = request.getfixturevalue(client_fixture)

    create = client.post(url(workspace), {"name": "Mine", "kind": "secret", "role": "admin"})
    revoke = client.post(url(workspace, f"{api_key.id}/revoke/"))
    confirm = client.get(url(workspace, f"{api_key.id}/revoke/"))

    assert [create.status_code, revoke.status_code, confirm.status_code] == [403, 403, 403]
    [stored] = keys_of(workspace)
    assert (stored.id, stored.revoked_at) == (api_key.id, None)


def test_the_list_runs_the_same_queries_for_one_key_or_many(owner_client, workspace):
    make_key(workspace)
    with CaptureQueriesContext(connection) as one:
        owner_client.get(url(workspace))
    for _ in range(4):
        make_key(workspace, created_by=workspace_owner_user(workspace))
    with CaptureQueriesContext(connection) as five:
        owner_client.get(url(workspace))

    assert len(five) == len(one)


def workspace_owner_user(workspace):
    return workspace.organization.members.get(role=Role.OWNER).user
