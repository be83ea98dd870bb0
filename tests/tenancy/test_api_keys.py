import pytest

from masivo.tenancy import keys
from masivo.tenancy.context import all_workspaces, workspace_scope
from masivo.tenancy.models import ApiKey
from masivo.tenancy.roles import Role
from tests.conftest import bearer_client, mint_secret_key

pytestmark = pytest.mark.django_db


def key_row(key_id):
    with all_workspaces(reason="test inspection"):
        return ApiKey.objects.get(id=key_id)


def test_create_shows_the_token_once_and_stores_only_its_hash(api, workspace):
    response = api.post(
        "/api/v1/api-keys",
        {"name": "Backend", "kind": "secret", "role": "marketer"},
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    token = body["token"]
    assert token.startswith("msv_sk_") and len(token) == 39
    assert body["prefix"] == token[:12]
    assert (body["name"], body["kind"], body["role"], body["is_active"]) == (
        "Backend",
        "secret",
        "marketer",
        True,
    )
    row = key_row(body["id"])
    assert row.token_hash == keys.hash_token(token)
    assert row.workspace_id == workspace.id
    assert token not in {str(value) for value in row.__dict__.values()}

    listed = api.get("/api/v1/api-keys").json()["results"]
    assert all("token" not in item for item in listed)
    assert [item["name"] for item in listed] == ["Backend", "admin key"]

    detail = api.get(f"/api/v1/api-keys/{body['id']}").json()
    assert "token" not in detail
    assert detail["prefix"] == token[:12]


def test_a_new_key_works_and_records_last_use(api):
    token = api.post(
        "/api/v1/api-keys",
        {"name": "Reader", "kind": "secret", "role": "viewer"},
        content_type="application/json",
    ).json()["token"]
    reader = bearer_client(token)
    response = reader.get("/api/v1/workspace")
    assert response.status_code == 200
    key_id = api.get("/api/v1/api-keys").json()["results"][0]["id"]
    assert key_row(key_id).last_used_at is not None


def test_revocation_takes_effect_on_the_next_request(api, workspace):
    token = mint_secret_key(workspace, role=Role.VIEWER)
    victim = bearer_client(token)
    assert victim.get("/api/v1/workspace").status_code == 200
    with workspace_scope(workspace.id):
        key_id = ApiKey.objects.get(token_hash=keys.hash_token(token)).id

    response = api.post(f"/api/v1/api-keys/{key_id}/revoke")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert response.json()["revoked_at"] is not None

    denied = victim.get("/api/v1/workspace")
    assert denied.status_code == 401
    assert denied.json() == {
        "detail": "unknown or revoked API key",
        "code": "authentication_failed",
    }


def test_revoking_twice_keeps_the_first_revocation_time(api, workspace):
    key_id = api.post(
        "/api/v1/api-keys", {"name": "x", "kind": "write"}, content_type="application/json"
    ).json()["id"]
    first = api.post(f"/api/v1/api-keys/{key_id}/revoke").json()["revoked_at"]
    second = api.post(f"/api/v1/api-keys/{key_id}/revoke").json()["revoked_at"]
    assert first == second


def test_a_key_cannot_revoke_itself(workspace):
    token = mint_secret_key(workspace)
    client = bearer_client(token)
    with workspace_scope(workspace.id):
        key_id = ApiKey.objects.get(token_hash=keys.hash_token(token)).id
    response = client.post(f"/api/v1/api-keys/{key_id}/revoke")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert key_row(key_id).revoked_at is None


def test_write_keys_have_no_role_and_cannot_use_the_rest_api(api):
    body = api.post(
        "/api/v1/api-keys",
        {"name": "Mobile app", "kind": "write", "role": "admin"},
        content_type="application/json",
    ).json()
    assert body["token"].startswith("msv_wk_")
    assert body["role"] == ""
    response = bearer_client(body["token"]).get("/api/v1/workspace")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "write keys are for ingestion and mobile apps only; use a secret key"
    )


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"kind": "secret", "role": "admin"}, "name", "This field is required."),
        ({"name": "x", "kind": "secret"}, "role", "a secret key needs a role"),
        (
            {"name": "x", "kind": "public", "role": "admin"},
            "kind",
            '"public" is not a valid choice.',
        ),
        (
            {"name": "x", "kind": "secret", "role": "owner"},
            "role",
            '"owner" is not a valid choice.',
        ),
        ({"name": "   ", "kind": "write"}, "name", "This field may not be blank."),
    ],
)
def test_bad_create_requests_name_the_field(api, workspace, payload, field, message):
    response = api.post("/api/v1/api-keys", payload, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][field] == [message]
    with workspace_scope(workspace.id):
        assert ApiKey.objects.count() == 1  # only the fixture's key


@pytest.mark.parametrize("role", [Role.MARKETER, Role.VIEWER])
def test_only_admin_keys_manage_keys(workspace, role):
    client = bearer_client(mint_secret_key(workspace, role=role))
    assert client.get("/api/v1/api-keys").status_code == 200
    response = client.post(
        "/api/v1/api-keys", {"name": "x", "kind": "write"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json() == {
        "detail": f"the {role} role may not manage keys",
        "code": "permission_denied",
    }
    with workspace_scope(workspace.id):
        assert ApiKey.objects.count() == 1


def test_list_is_cursor_paginated_newest_first(api, workspace):
    for number in range(5):
        api.post(
            "/api/v1/api-keys",
            {"name": f"k{number}", "kind": "write"},
            content_type="application/json",
        )
    first = api.get("/api/v1/api-keys?limit=4").json()
    assert [item["name"] for item in first["results"]] == ["k4", "k3", "k2", "k1"]
    assert first["previous"] is None
    second = api.get(first["next"]).json()
    assert [item["name"] for item in second["results"]] == ["k0", "admin key"]
    assert second["next"] is None


@pytest.mark.parametrize("name", [3, True, ["x"]])
def test_a_name_that_is_not_a_string_is_a_400(api, workspace, name):
    response = api.post(
        "/api/v1/api-keys", {"name": name, "kind": "write"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"name": ["must be a string"]}
    assert [key["name"] for key in api.get("/api/v1/api-keys").json()["results"]] == ["admin key"]


def test_the_schema_documents_the_two_shapes_of_a_new_key(api):
    schema = api.get("/api/v1/schema/?format=json").json()
    body = schema["paths"]["/api/v1/api-keys"]["post"]["requestBody"]["content"]
    components = schema["components"]["schemas"]
    assert body["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ApiKeyCreateRequest"
    }
    assert components["ApiKeyCreateRequest"] == {
        "oneOf": [
            {"$ref": "#/components/schemas/SecretKeyCreateInRequest"},
            {"$ref": "#/components/schemas/WriteKeyCreateInRequest"},
        ]
    }
    assert components["SecretKeyCreateInRequest"]["required"] == ["name", "role"]
    assert components["WriteKeyCreateInRequest"]["required"] == ["kind", "name"]
    assert components["WriteKeyCreateInKindEnum"]["enum"] == ["write"]
    assert components["SecretKeyCreateInKindEnum"]["enum"] == ["secret"]
