"""/api/v1/destinations/<id>/event-exports: ask for a day's export and list them; roles, bad
input, another workspace's destination and other kinds are refused."""

import pytest
import time_machine
from django.urls import include, path

from destinations.models import Destination, EventExport
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from tests.conftest import bearer_client, mint_secret_key

# Routed here until destinations/api/urls.py includes destinations.api.export_urls.
urlpatterns = [path("api/v1/", include(("destinations.api.export_urls", "api"), namespace="api"))]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture(autouse=True)
def _today_is_march_5th():
    with time_machine.travel("2026-03-05T10:00:00+00:00", tick=False):
        yield


def destination(workspace, kind="s3", key="lake") -> Destination:
    with workspace_scope(workspace.id):
        return Destination.objects.create(
            workspace=workspace, kind=kind, name=key, key=key,
            config={"bucket": "masivo-lake"} if kind == "s3" else {},
        )  # fmt: skip


def url(destination) -> str:
    return f"/api/v1/destinations/{destination.id}/event-exports"


def post(client, target, data):
    return client.post(target, data, content_type="application/json")


def test_a_day_is_queued_once_and_listed(api, workspace):
    lake = destination(workspace)

    first = post(api, url(lake), {"day": "2026-03-04", "event_names": ["purchase"]})
    second = post(api, url(lake), {"day": "2026-03-04"})
    listed = api.get(url(lake))

    assert (first.status_code, second.status_code, listed.status_code) == (202, 202, 200)
    body = first.json()
    with workspace_scope(workspace.id):
        export = EventExport.objects.get()
    assert body == {
        "id": export.id, "destination": lake.id, "day": "2026-03-04",
        "event_names": ["purchase"], "status": "queued", "rows": 0, "objects_written": 0,
        "checkpoint": 0, "manifest_key": "", "attempts": 0, "error": "",
        "created_by": body["created_by"], "created_at": "2026-03-05T10:00:00Z",
        "started_at": None, "finished_at": None, "retry_at": None,
    }  # fmt: skip
    assert body["created_by"].startswith("api_key:")
    assert second.json() == body
    assert listed.json()["results"] == [body]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"day": "2026-03-05"}, "day", "a day before today (UTC): its events are complete"),
        ({"day": "yesterday"}, "day",
         "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."),
        ({"day": "2026-03-04", "again": "yes"}, "again", "must be true or false"),
        ({"day": "2026-03-04", "bucket": "x"}, "bucket", "unknown field"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(api, workspace, data, field, message):
    response = post(api, url(destination(workspace)), data)

    assert response.status_code == 400
    assert response.json()["errors"] == {field: [message]}
    with workspace_scope(workspace.id):
        assert not EventExport.objects.exists()


def test_a_marketer_reads_but_may_not_export(workspace):
    lake = destination(workspace)
    marketer = bearer_client(mint_secret_key(workspace, role=Role.MARKETER))

    assert post(marketer, url(lake), {"day": "2026-03-04"}).status_code == 403
    assert marketer.get(url(lake)).status_code == 200
    with workspace_scope(workspace.id):
        assert not EventExport.objects.exists()


def test_another_workspaces_destination_and_other_kinds_are_404(api, workspace, other_workspace):
    theirs = destination(other_workspace)
    webhook = destination(workspace, kind="webhook", key="hooks")

    for target in (theirs, webhook):
        assert post(api, url(target), {"day": "2026-03-04"}).status_code == 404
        assert api.get(url(target)).status_code == 404
    with workspace_scope(other_workspace.id):
        assert not EventExport.objects.exists()
