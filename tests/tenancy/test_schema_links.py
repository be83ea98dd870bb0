"""The OpenAPI schema links each create to the new object's operations (the stateful phase of
tests/test_schemathesis.py follows them), and a body with required fields is required."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return Client().get("/api/v1/schema/?format=json").json()


def test_creating_a_key_links_to_reading_and_revoking_it(schema):
    created = schema["paths"]["/api/v1/api-keys"]["post"]["responses"]["201"]
    assert created["links"] == {
        "GetTheNewOne": {
            "operationId": "api_keys_retrieve",
            "parameters": {"id": "$response.body#/id"},
        },
        "PostTheNewOneRevoke": {
            "operationId": "api_keys_revoke_create",
            "parameters": {"id": "$response.body#/id"},
        },
    }


def test_creating_a_customer_links_to_each_of_its_operations(schema):
    customer_operations = {
        operation["operationId"]
        for path, methods in schema["paths"].items()
        if path.startswith("/api/v1/customers/{id}")
        for operation in methods.values()
    }
    for status in ("201", "200"):
        links = schema["paths"]["/api/v1/customers"]["post"]["responses"][status]["links"]
        assert {link["operationId"] for link in links.values()} == customer_operations
        assert {str(link["parameters"]) for link in links.values()} == {
            "{'id': '$response.body#/id'}"
        }


@pytest.mark.parametrize(
    ("path", "method", "required"),
    [
        ("/api/v1/api-keys", "post", True),
        ("/api/v1/audiences", "post", True),
        ("/api/v1/workspace", "patch", None),
    ],
)
def test_a_body_with_required_fields_is_required(schema, path, method, required):
    assert schema["paths"][path][method]["requestBody"].get("required") is required
