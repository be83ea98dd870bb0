"""Audience rules holding what the database cannot store (a NUL, a lone surrogate) or nested past
the limits: create, update and preview answer 400 with the JSON path, and nothing is saved."""

import json

import pytest

from audiences.models import Audience
from tests.profiles.helpers import rows

pytestmark = pytest.mark.django_db

NUL = "contains a NUL character"
SURROGATE = "contains a lone surrogate (not valid Unicode)"


def profile(field="city", value="Puebla", **extra) -> dict:
    return {
        "version": 1,
        "root": {"profile": {"field": field, "op": "eq", "value": value, **extra}},
    }


def event_where(prop: str) -> dict:
    where = [{"property": prop, "op": "eq", "value": "x"}]
    return {"version": 1, "root": {"event": {"name": "purchase", "where": where}}}


CASES = [
    (profile(value="a\x00b"), "$.root.profile.value", NUL),
    (profile(value="\ud800"), "$.root.profile.value", SURROGATE),
    (profile(field="traits.pl\x00an"), "$.root.profile.field", NUL),
    (profile(field="traits.\udc00"), "$.root.profile.field", SURROGATE),
    (profile(**{"no\x00te": 1}), "$.root.profile", f"a key {NUL}"),
    (profile() | {"comment": "\ud800"}, "$.comment", SURROGATE),
    (event_where("sku\x00"), "$.root.event.where[0].property", NUL),
    ({"version": 1, "root": {"any": [profile()["root"], profile(value=["\x00"])["root"]]}},
     "$.root.any[1].profile.value[0]", NUL),
]  # fmt: skip


def post(api, path: str, body: dict):
    # ensure_ascii escapes a lone surrogate as \ud800, as a client's JSON would.
    return api.post(path, json.dumps(body), content_type="application/json")


def rules_error(path: str, reason: str) -> dict:
    return {
        "detail": f"{path}: {reason}",
        "code": "invalid_rules",
        "errors": {"rules": [f"{path}: {reason}"]},
    }


@pytest.mark.parametrize(("rules", "path", "reason"), CASES)
def test_create_refuses_unstorable_rules_naming_the_path(api, workspace, rules, path, reason):
    response = post(api, "/api/v1/audiences", {"name": "Bad", "rules": rules})

    assert response.status_code == 400
    assert response.json() == rules_error(path, reason)
    assert rows(workspace, Audience, "id") == []


@pytest.mark.parametrize(("rules", "path", "reason"), CASES)
def test_preview_refuses_unstorable_rules_naming_the_path(api, rules, path, reason):
    response = post(api, "/api/v1/audiences/preview", {"rules": rules})

    assert response.status_code == 400
    assert response.json() == rules_error(path, reason)


def test_update_refuses_unstorable_rules_and_keeps_the_old_ones(api, workspace):
    created = post(api, "/api/v1/audiences", {"name": "Puebla", "rules": profile()}).json()

    response = api.patch(
        f"/api/v1/audiences/{created['id']}",
        json.dumps({"rules": profile(value="a\x00b")}),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json() == rules_error("$.root.profile.value", NUL)
    assert rows(workspace, Audience, "rules") == [profile()]


def nested_groups(count: int) -> dict:
    node = profile()["root"]
    for _ in range(count):
        node = {"all": [node]}
    return {"version": 1, "root": node}


@pytest.mark.parametrize("path", ["/api/v1/audiences", "/api/v1/audiences/preview"])
def test_500_nested_groups_are_refused_by_the_parser(api, workspace, path):
    # Written out by hand: json.dumps itself cannot encode 1,000 levels.
    root = '{"all": [' * 500 + json.dumps(profile()["root"]) + "]}" * 500
    body = '{"name": "Deep", "rules": {"version": 1, "root": ' + root + "}}"

    response = api.post(path, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"detail": "JSON nested deeper than 64 levels", "code": "too_deep"}
    assert rows(workspace, Audience, "id") == []


def test_groups_nested_past_the_rules_limit_are_refused_with_the_path(api, workspace):
    response = post(api, "/api/v1/audiences", {"name": "Deep", "rules": nested_groups(20)})

    assert response.status_code == 400
    assert response.json() == rules_error(
        "$.root" + ".all[0]" * 9, "groups nest deeper than 8 levels"
    )
    assert rows(workspace, Audience, "id") == []
