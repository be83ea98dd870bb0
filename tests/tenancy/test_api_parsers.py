"""JSON bodies within bounds (masivo.tenancy.api.parsers) and NUL in query parameters (the
base view): each is a 400 that names what is wrong, and nothing is stored."""

import pytest
from django.utils import timezone

from masivo.tenancy.api.parsers import MAX_JSON_DEPTH, json_depth
from masivo.tenancy.context import workspace_scope
from profiles.models import Customer
from tests.factories import CustomerFactory
from tests.profiles.helpers import rows

pytestmark = pytest.mark.django_db

TOO_DEEP = {"detail": "JSON nested deeper than 64 levels", "code": "too_deep"}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("", 0),
        ("7", 0),
        ("[]", 1),
        ('{"a": [{}, [1]]}', 3),
        ('"[[[{{{"', 0),
        (r'["\"[[[", "\\"]', 1),
        ('{"a": "]]]]"}', 1),
        (nested(10_000), 10_000),
    ],
)
def test_json_depth_counts_brackets_outside_strings(text, depth):
    assert json_depth(text) == depth


@pytest.mark.parametrize("depth", [1_000, 10_000])
@pytest.mark.parametrize(
    "path", ["/api/v1/customers", "/api/v1/audiences/preview", "/api/v1/events"]
)
def test_a_body_nested_too_deep_is_a_400_before_it_is_parsed(api, workspace, path, depth):
    body = '{"traits": ' + nested(depth) + "}"

    response = api.post(path, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == TOO_DEEP
    assert rows(workspace, Customer, "id") == []


def test_the_depth_limit_is_the_documented_one(api, workspace):
    # The body, traits and x are three levels.
    at_limit = '{"external_id": "u1", "traits": {"x": ' + nested(MAX_JSON_DEPTH - 2) + "}}"
    past_limit = '{"external_id": "u1", "traits": {"x": ' + nested(MAX_JSON_DEPTH - 1) + "}}"

    accepted_by_the_parser = api.post("/api/v1/customers", at_limit, "application/json")
    refused_by_the_parser = api.post("/api/v1/customers", past_limit, "application/json")

    assert accepted_by_the_parser.json() == {  # the service's own limit for traits
        "detail": "nested deeper than 10 levels",
        "code": "invalid",
        "errors": {"traits.x" + "[0]" * 10: ["nested deeper than 10 levels"]},
    }
    assert refused_by_the_parser.json() == TOO_DEEP


def test_brackets_inside_strings_do_not_count(api, workspace):
    body = {"external_id": "u1", "first_name": "[" * 100, "city": "{" * 100}

    response = api.post("/api/v1/customers", body, content_type="application/json")

    assert response.status_code == 201
    assert rows(workspace, Customer, "first_name") == ["[" * 100]


@pytest.mark.parametrize(
    ("literal", "field"),
    [
        ("1e400", "tags.x"),
        ("-1e400", "tags.x"),
        ("NaN", "tags.x"),
        ("Infinity", "tags.x"),
        ("-Infinity", "tags.x"),
    ],
)
def test_a_non_finite_tag_is_a_400_naming_it(api, workspace, literal, field):
    with workspace_scope(workspace.id):
        ana = CustomerFactory(workspace=workspace, tags={"vip": True})
    body = '{"tags": {"vip": false, "x": ' + literal + "}}"

    response = api.patch(f"/api/v1/customers/{ana.id}/tags", body, "application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": f"{field}: numbers must be finite (got {literal})",
        "code": "parse_error",
        "errors": {field: [f"numbers must be finite (got {literal})"]},
    }
    assert rows(workspace, Customer, "tags") == [{"vip": True}]


def test_a_non_finite_number_on_create_names_its_path(api, workspace):
    body = '{"external_id": "u1", "traits": {"scores": [1, 2.5, 1e400]}}'

    response = api.post("/api/v1/customers", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"traits.scores[2]": ["numbers must be finite (got 1e400)"]}
    assert rows(workspace, Customer, "id") == []


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "7", "null"])
def test_a_body_that_is_not_an_object_is_refused_by_the_parser(api, workspace, body):
    with workspace_scope(workspace.id):
        ana = CustomerFactory(workspace=workspace, tags={"vip": True})

    response = api.patch(f"/api/v1/customers/{ana.id}/tags", body, "application/json")

    assert response.status_code == 400
    assert response.json() == {"detail": "must be a JSON object", "code": "invalid"}


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/api/v1/customers?email=a%00b", "email"),
        ("/api/v1/customers?external_id=%00", "external_id"),
        ("/api/v1/customers?search=ana%00", "search"),
        ("/api/v1/events?name=%00", "name"),
        ("/api/v1/customers?limit=5&cursor=%00", "cursor"),
        ("/api/v1/customers?x%00y=1", "x\x00y"),
    ],
)
def test_a_nul_in_a_query_parameter_is_a_400_naming_it(api, url, name):
    response = api.get(url)

    assert response.status_code == 400
    assert response.json() == {
        "detail": "invalid input",
        "code": "invalid",
        "errors": {name: ["must not contain NUL characters"]},
    }


def test_a_nul_in_the_device_token_to_delete_is_a_400_and_deletes_nothing(api, workspace):
    with workspace_scope(workspace.id):
        ana = CustomerFactory(workspace=workspace)
        ana.devices.create(
            workspace=workspace, token="tok-1", platform="web", expires_at=timezone.now()
        )

    response = api.delete(f"/api/v1/customers/{ana.id}/devices?device_token=tok%00-1")

    assert response.status_code == 400
    assert response.json()["errors"] == {"device_token": ["must not contain NUL characters"]}
    with workspace_scope(workspace.id):
        assert list(ana.devices.values_list("token", flat=True)) == ["tok-1"]
