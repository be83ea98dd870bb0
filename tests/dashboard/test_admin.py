"""The operator admin (masivo/tenancy/admin.py) and its door through the throttled sign-in."""

import pytest
from django.test import Client

from masivo.tenancy.context import all_workspaces, workspace_scope
from masivo.tenancy.models import ApiKey, Workspace
from tests.factories import ApiKeyFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/tenancy/apikey/"


@pytest.fixture
def operator_client():
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def planted(workspace, other_workspace):
    with workspace_scope(workspace.id):
        mine = ApiKeyFactory(workspace=workspace, name="Acme backend", prefix="msv_sk_AAAAA")
    with workspace_scope(other_workspace.id):
        theirs = ApiKeyFactory(workspace=other_workspace, name="Globex app", prefix="msv_sk_BBBBB")
    return mine, theirs


def revoked_at(api_key):
    with workspace_scope(api_key.workspace_id):
        return ApiKey.objects.get(id=api_key.id).revoked_at


def test_operators_see_the_keys_of_every_workspace(operator_client, planted):
    response = operator_client.get(CHANGELIST)

    assert response.status_code == 200
    content = response.content.decode()
    assert "Acme backend" in content
    assert "Globex app" in content
    assert "2 api keys" in content


def test_a_key_page_is_read_only_and_never_shows_the_hash(operator_client, planted):
    mine, _ = planted

    response = operator_client.get(f"{CHANGELIST}{mine.id}/change/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "msv_sk_AAAAA" in content
    assert mine.token_hash not in content
    assert "token_hash" not in content
    assert 'name="name"' not in content
    assert 'name="_save"' not in content


def test_keys_cannot_be_added_or_deleted(operator_client, planted):
    mine, _ = planted

    assert operator_client.get(f"{CHANGELIST}add/").status_code == 403
    assert (
        operator_client.post(f"{CHANGELIST}{mine.id}/delete/", {"post": "yes"}).status_code == 403
    )
    assert revoked_at(mine) is None


def test_the_revoke_action_revokes_the_selected_keys_only(operator_client, planted):
    mine, theirs = planted

    response = operator_client.post(
        CHANGELIST,
        {"action": "revoke_selected", "_selected_action": [theirs.id]},
        follow=True,
    )

    assert "Revoked 1 key(s)." in response.content.decode()
    assert revoked_at(theirs) is not None
    assert revoked_at(mine) is None


def test_the_admin_login_sends_visitors_to_the_throttled_sign_in(client):
    response = client.get("/admin/", follow=True)

    assert response.redirect_chain == [
        ("/admin/login/?next=/admin/", 302),
        ("/login/?next=/admin/", 302),
    ]


@pytest.mark.parametrize(
    ("next_url", "target"),
    [("/admin/tenancy/", "/admin/tenancy/"), ("https://evil.example/", "/admin/")],
)
def test_a_signed_in_operator_is_sent_on_within_the_site(operator_client, next_url, target):
    response = operator_client.get("/admin/login/", {"next": next_url})

    assert response.status_code == 302
    assert response.url == target


def test_a_user_who_is_not_staff_is_refused(owner_client):
    assert owner_client.get("/admin/login/?next=/admin/").status_code == 403
    assert owner_client.post("/admin/login/", {"username": "x", "password": "y"}).status_code == 403


def test_a_workspace_with_keys_cannot_be_deleted_from_the_admin(
    operator_client, planted, workspace
):
    """The cascade would delete keys, which the admin never does; it must see them to refuse."""
    url = f"/admin/tenancy/workspace/{workspace.id}/delete/"

    page = operator_client.get(url)
    refused = operator_client.post(url, {"post": "yes"})

    assert "your account doesn't have permission to delete the following types of objects" in (
        page.content.decode().replace("&#x27;", "'")
    )
    assert "<li>api key</li>" in page.content.decode()
    assert refused.status_code == 403
    assert Workspace.objects.filter(id=workspace.id).exists()
    with all_workspaces(reason="test"):
        assert ApiKey.objects.count() == 2
