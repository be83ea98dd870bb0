"""The API's shared behaviour: authentication, the error shape, rate limits, the schema."""

import pytest
from django.test import Client

from tests.conftest import bearer_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("header", "status", "detail"),
    [
        (None, 401, "Authentication credentials were not provided."),
        ("Bearer", 401, "the Authorization header is 'Bearer <key>'"),
        ("Bearer msv_sk_doesnotexist", 401, "unknown or revoked API key"),
        ("Bearer msv_sk_" + "A" * 32, 401, "unknown or revoked API key"),
        ("Basic dXNlcjpwYXNz", 401, "Authentication credentials were not provided."),
    ],
)
def test_missing_or_bad_credentials_are_401_json(header, status, detail):
    client = Client(HTTP_AUTHORIZATION=header) if header else Client()
    response = client.get("/api/v1/workspace")
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == detail
    assert response["WWW-Authenticate"] == "Bearer"


def test_malformed_json_is_a_400_naming_the_problem(api):
    response = api.post("/api/v1/api-keys", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert response.json()["detail"].startswith("JSON parse error")


def test_a_json_array_body_is_a_400_not_a_500(api):
    response = api.post("/api/v1/api-keys", "[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_unknown_api_paths_are_json_404s(api):
    response = api.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "not found", "code": "not_found"}


def test_unsupported_methods_are_json_405s(api):
    response = api.put("/api/v1/api-keys", {}, content_type="application/json")
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "PUT" not allowed.', "code": "method_not_allowed"}


def test_rate_limit_answers_429_with_retry_after(api, settings):
    settings.MASIVO_API_RATE_LIMIT_PER_MINUTE = 3
    statuses = [api.get("/api/v1/workspace").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = api.get("/api/v1/workspace")
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["code"] == "throttled"


def test_the_rate_limit_is_per_key(api, other_api, settings):
    settings.MASIVO_API_RATE_LIMIT_PER_MINUTE = 1
    assert api.get("/api/v1/workspace").status_code == 200
    assert api.get("/api/v1/workspace").status_code == 429
    assert other_api.get("/api/v1/workspace").status_code == 200


def test_openapi_schema_lists_the_routes_and_the_security_scheme():
    response = Client().get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/v1/workspace",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{id}",
        "/api/v1/api-keys/{id}/revoke",
        "/api/v1/members",
        "/api/v1/members/{id}",
    } <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["SecretKey"]["scheme"] == "bearer"
    create = schema["paths"]["/api/v1/api-keys"]["post"]
    assert set(create["responses"]) == {"201", "400", "401", "403", "409", "415", "429"}
    assert create["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


def test_the_schema_generates_without_warnings_and_validates():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_api_docs_page_renders_without_external_assets():
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "https://" not in html


def test_security_headers_on_api_responses(api):
    response = api.get("/api/v1/workspace")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_the_api_root_answers(api, workspace):
    assert api.get("/api/v1/").json() == {"workspace": workspace.id, "schema": "/api/v1/schema/"}


def test_write_key_clients_are_refused_everywhere(workspace):
    from masivo.tenancy.context import workspace_scope
    from masivo.tenancy.services import api_key_create

    with workspace_scope(workspace.id):
        token = api_key_create(workspace=workspace, kind="write", name="app").token
    assert bearer_client(token).get("/api/v1/members").status_code == 403


# -- the schema and the code agree (issue 9 §4; tests/test_schemathesis.py runs the whole API) --

BAD_CURSOR = "the cursor of an earlier page's next or previous link"


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("cursor=bz14", {"cursor": [BAD_CURSOR]}),  # "o=x": not an offset
        ("limit=0", {"limit": ["a whole number, 1 or more"]}),
        ("limit=null", {"limit": ["a whole number, 1 or more"]}),
        ("limit=2.5", {"limit": ["a whole number, 1 or more"]}),
    ],
)  # fmt: skip
def test_a_bad_cursor_or_limit_is_a_400_naming_it(api, query, errors):
    response = api.get(f"/api/v1/api-keys?{query}")

    assert response.status_code == 400
    assert response.json() == {"detail": "invalid input", "code": "invalid", "errors": errors}


def test_a_limit_above_the_maximum_is_the_maximum(api):
    response = api.get("/api/v1/api-keys?limit=100000")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_a_validation_error_has_the_code_invalid_whatever_the_fields_own(api):
    response = api.post(
        "/api/v1/api-keys", {"name": None, "kind": "nope"}, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "invalid input",
        "code": "invalid",
        "errors": {
            "name": ["This field may not be null."],
            "kind": ['"nope" is not a valid choice.'],
        },
    }


def test_revoke_answers_post_only(api, workspace):
    key_id = api.get("/api/v1/api-keys").json()["results"][0]["id"]

    response = api.get(f"/api/v1/api-keys/{key_id}/revoke")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "GET" not allowed.', "code": "method_not_allowed"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audiences/{id}/recalculate",
        "/api/v1/customers/{id}/audiences",
        "/api/v1/customers/{id}/devices",
    ],
)
def test_the_unpaged_lists_are_documented_as_arrays(path):
    schema = Client().get("/api/v1/schema/?format=json").json()
    operation = schema["paths"][path]["get"]

    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"] == []
