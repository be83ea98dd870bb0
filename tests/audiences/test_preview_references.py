"""The preview checks rules exactly as saving does: a reference to another workspace's audience
or to a missing one is the same 400 (the foreign one reads as missing, as everywhere)."""

import pytest

from audiences.models import Audience
from masivo.tenancy.context import workspace_scope
from tests.factories import AudienceFactory

pytestmark = pytest.mark.django_db


def referencing(audience_id: int) -> dict:
    return {"version": 1, "root": {"audience": {"id": audience_id}}}


@pytest.fixture
def foreign_audience_id(other_workspace) -> int:
    with workspace_scope(other_workspace.id):
        return AudienceFactory(workspace=other_workspace, name="Theirs").id


@pytest.fixture
def missing_audience_id(foreign_audience_id) -> int:
    return foreign_audience_id + 1000


@pytest.mark.parametrize("target", ["foreign_audience_id", "missing_audience_id"])
def test_a_preview_refuses_a_reference_as_saving_does(api, workspace, request, target):
    audience_id = request.getfixturevalue(target)
    document = referencing(audience_id)

    preview = api.post(
        "/api/v1/audiences/preview", {"rules": document}, content_type="application/json"
    )
    save = api.post(
        "/api/v1/audiences", {"name": "Refs", "rules": document}, content_type="application/json"
    )

    assert (preview.status_code, save.status_code) == (400, 400)
    refusal = f"$.root: audience {audience_id} does not exist"
    expected = {"detail": refusal, "code": "invalid_rules", "errors": {"rules": [refusal]}}
    assert preview.json() == expected
    assert save.json() == expected
    with workspace_scope(workspace.id):
        assert Audience.objects.count() == 0


def test_a_preview_accepts_a_reference_to_an_audience_of_this_workspace(api, workspace):
    with workspace_scope(workspace.id):
        ours = AudienceFactory(workspace=workspace, name="Ours")

    body = {"rules": referencing(ours.id)}
    preview = api.post("/api/v1/audiences/preview", body, content_type="application/json")

    assert preview.status_code == 200
    assert preview.json() == {"count": 0, "sample": []}
