"""A condition with a key it does not take is refused, naming the key: a misspelling must never
fall back to a default silently."""

import pytest

from audiences.rules.ast import InvalidRules, parse_rules


@pytest.mark.parametrize(
    ("leaf", "path", "takes"),
    [
        ({"audience": {"id": 7, "member": False}}, "$.root.audience.member", "id, in"),
        (
            {"profile": {"field": "country", "op": "eq", "value": "MX", "values": ["CO"]}},
            "$.root.profile.values",
            "field, op, value",
        ),
        (
            {"event": {"name": "purchase", "times": 2}},
            "$.root.event.times",
            "aggregate, count, first, last, name, where, within",
        ),
        ({"consent": {"purpose": "advertising", "allow": False}}, "$.root.consent.allow",
         "allowed, purpose"),
        ({"device": {"active": False}}, "$.root.device.active", "has_active, platform"),
    ],
)  # fmt: skip
def test_an_unknown_key_is_refused_with_its_path(leaf, path, takes):
    kind = next(iter(leaf))
    with pytest.raises(InvalidRules) as refused:
        parse_rules({"version": 1, "root": leaf})
    assert refused.value.errors == [(path, f"unknown key; {kind} takes {takes}")]


@pytest.mark.django_db
def test_the_api_names_the_unknown_key(api):
    rules = {"version": 1, "root": {"audience": {"id": 7, "member": False}}}
    response = api.post(
        "/api/v1/audiences/preview", {"rules": rules}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["errors"]["rules"][0] == (
        "$.root.audience.member: unknown key; audience takes id, in"
    )
