"""Every API route with an object id, called with workspace A's key on workspace B's object: 404.

Routes come from the OpenAPI schema, so each later issue's endpoints are walked without new test
code. A route's object type is its view's `path_model`, else its serializer's model; plant-able
types are listed in tests.factories.TENANT_FACTORIES (a new tenant model needs a factory there).
"""

import pytest
from django.forms.models import model_to_dict
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator

from masivo.tenancy.context import all_workspaces, workspace_scope
from tests.factories import make_in_workspace

MISSING_ID = 2_000_000_000


def routes_with_ids() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (path, method.upper())
        for path, operations in schema["paths"].items()
        if "{id}" in path
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    )


def filled(path: str, object_id) -> str:
    """The path for this object; a second id in it (a sync's run, a webhook's delivery) is
    one that exists nowhere."""
    path = path.replace("{run_id}", str(MISSING_ID)).replace("{delivery_id}", str(MISSING_ID))
    return path.replace("{id}", str(object_id))


def model_of(path: str):
    view_class = resolve(filled(path, 1)).func.view_class
    model = getattr(view_class, "path_model", None)
    return model or view_class.serializer_class.Meta.model


def snapshot(model, object_id):
    with all_workspaces(reason="test: compare before and after"):
        found = model._base_manager.filter(id=object_id).first()
        return model_to_dict(found) if found else None


def call(client, method: str, url: str):
    return getattr(client, method.lower())(url, {}, content_type="application/json")


def test_the_walk_covers_routes():
    assert ("/api/v1/api-keys/{id}/revoke", "POST") in routes_with_ids()
    assert ("/api/v1/members/{id}", "DELETE") in routes_with_ids()


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method"), routes_with_ids())
def test_another_workspaces_object_is_a_404_like_a_missing_one(api, other_workspace, path, method):
    model = model_of(path)
    with workspace_scope(other_workspace.id):
        foreign = make_in_workspace(model, other_workspace)
    before = snapshot(model, foreign.id)

    response = call(api, method, filled(path, foreign.id))
    missing = call(api, method, filled(path, MISSING_ID))

    assert response.status_code == 404, response.content
    assert response.json() == missing.json() == {"detail": "Not found.", "code": "not_found"}
    assert snapshot(model, foreign.id) == before
