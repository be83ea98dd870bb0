"""The draft's revision through /api/v1/journeys: read with the journey, +1 with each change of
the graph, and a PATCH naming an older one is a 409 naming `revision` that changes nothing (a
rename too); a new draft carries on the published version's revision; the service itself, and
two editors at once (the second waits on the draft's lock, then is refused); the schema."""

import threading

import pytest
from django.db import connection, transaction
from django.test import Client

from journeys import services
from journeys.models import Journey, JourneyVersion
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.errors import Conflict
from masivo.tenancy.roles import Role
from tests.messaging.test_sending_support import template_version

pytestmark = pytest.mark.django_db
URL = "/api/v1/journeys"
STALE = "someone else changed this draft (it is at revision 2, not 1); reload it and edit again"


@pytest.fixture
def email_template(workspace):
    return template_version(workspace, "email").template_id


def welcome(template_id) -> dict:
    return {
        "trigger": {"type": "api"},
        "start": "hello",
        "steps": {
            "hello": {"type": "send", "channel": "email", "template_id": template_id,
                      "next": "done"},
            "done": {"type": "exit"},
        },
    }  # fmt: skip


def post(client, url, data):
    return client.post(url, data, content_type="application/json")


def patch(client, url, data):
    return client.patch(url, data, content_type="application/json")


def draft(workspace, journey_id) -> tuple[int, int, dict]:
    with workspace_scope(workspace.id):
        version = JourneyVersion.objects.get(journey_id=journey_id, published_at__isnull=True)
        return version.number, version.revision, version.graph


def test_a_new_journey_is_at_revision_1_and_each_graph_change_adds_1(api, email_template):
    created = post(api, URL, {"name": "Welcome"})
    journey_id = created.json()["id"]

    first = patch(api, f"{URL}/{journey_id}", {"graph": welcome(email_template), "revision": 1})
    renamed = patch(api, f"{URL}/{journey_id}", {"name": "Hello", "revision": 2})
    same_graph = patch(api, f"{URL}/{journey_id}", {"graph": welcome(email_template)})

    assert created.json()["revision"] == 1
    assert (first.status_code, first.json()["revision"]) == (200, 2)
    assert (renamed.status_code, renamed.json()["name"], renamed.json()["revision"]) == (
        200, "Hello", 2)  # fmt: skip
    assert (same_graph.status_code, same_graph.json()["revision"]) == (200, 2)
    assert api.get(f"{URL}/{journey_id}").json()["revision"] == 2
    assert api.get(URL).json()["results"][0]["revision"] == 2


def test_an_edit_from_an_older_revision_is_a_409_naming_revision(api, workspace, email_template):
    journey_id = post(api, URL, {"name": "Welcome"}).json()["id"]
    ours = welcome(email_template)
    theirs = welcome(email_template) | {"reentry": {"mode": "always"}}
    patch(api, f"{URL}/{journey_id}", {"graph": theirs, "revision": 1})

    refused = patch(api, f"{URL}/{journey_id}", {"graph": ours, "revision": 1})
    refused_rename = patch(api, f"{URL}/{journey_id}", {"name": "Mine", "revision": 1})

    for answer in (refused, refused_rename):
        assert (answer.status_code, answer.json()) == (409, {
            "detail": STALE, "code": "conflict", "errors": {"revision": [STALE]}})  # fmt: skip
    assert draft(workspace, journey_id) == (1, 2, theirs)
    with workspace_scope(workspace.id):
        assert Journey.objects.get(id=journey_id).name == "Welcome"


def test_without_a_revision_the_edit_is_saved_as_before(api, workspace, email_template):
    journey_id = post(api, URL, {"name": "Welcome", "graph": welcome(email_template)}).json()["id"]
    theirs = welcome(email_template) | {"holdout_percent": 10}

    answer = patch(api, f"{URL}/{journey_id}", {"graph": theirs})

    assert (answer.status_code, answer.json()["revision"]) == (200, 2)
    assert draft(workspace, journey_id) == (1, 2, theirs)


@pytest.mark.parametrize(
    ("revision", "error"),
    [
        (0, "Ensure this value is greater than or equal to 1."),
        ("two", "A valid integer is required."),
        (None, "This field may not be null."),
        (2**31, "Ensure this value is less than or equal to 2147483647."),
    ],
)
def test_a_revision_that_is_not_a_number_is_a_400(api, workspace, email_template, revision, error):
    journey_id = post(api, URL, {"name": "Welcome"}).json()["id"]

    answer = patch(api, f"{URL}/{journey_id}", {"graph": welcome(email_template),
                                               "revision": revision})  # fmt: skip

    assert (answer.status_code, answer.json()) == (400, {
        "detail": "invalid input", "code": "invalid", "errors": {"revision": [error]}})  # fmt: skip
    assert draft(workspace, journey_id) == (1, 1, {})


def test_creating_takes_no_revision(api, workspace):
    answer = post(api, URL, {"name": "Welcome", "revision": 1})

    assert (answer.status_code, answer.json()["errors"]) == (400, {"revision": ["unknown field"]})
    with workspace_scope(workspace.id):
        assert not Journey.objects.exists()


def test_the_next_draft_carries_on_the_published_revision(api, workspace, email_template):
    journey_id = post(api, URL, {"name": "Welcome"}).json()["id"]
    patch(api, f"{URL}/{journey_id}", {"graph": welcome(email_template)})
    post(api, f"{URL}/{journey_id}/publish", {"note": "first"})
    live = api.get(f"{URL}/{journey_id}").json()
    edited = welcome(email_template) | {"holdout_percent": 5}

    first_edit = patch(api, f"{URL}/{journey_id}", {"graph": edited, "revision": 2})
    late_edit = patch(api, f"{URL}/{journey_id}", {"graph": welcome(email_template),
                                                  "revision": 2})  # fmt: skip

    assert (live["draft_version"], live["live_version"], live["revision"]) == (None, 1, 2)
    assert (first_edit.status_code, first_edit.json()["draft_version"],
            first_edit.json()["revision"]) == (200, 2, 3)  # fmt: skip
    assert (late_edit.status_code, late_edit.json()["errors"]) == (409, {"revision": [
        "someone else changed this draft (it is at revision 3, not 2); reload it and edit "
        "again"]})  # fmt: skip
    assert draft(workspace, journey_id) == (2, 3, edited)


def test_a_rename_with_a_revision_makes_no_draft_of_a_published_journey(
    api, workspace, email_template
):
    journey_id = post(api, URL, {"name": "Welcome"}).json()["id"]
    patch(api, f"{URL}/{journey_id}", {"graph": welcome(email_template)})
    post(api, f"{URL}/{journey_id}/publish", {"note": "first"})

    renamed = patch(api, f"{URL}/{journey_id}", {"name": "Hello", "revision": 2})
    stale = patch(api, f"{URL}/{journey_id}", {"name": "Again", "revision": 1})

    assert (renamed.status_code, renamed.json()["name"], renamed.json()["draft_version"]) == (
        200, "Hello", None)  # fmt: skip
    assert (stale.status_code, stale.json()["errors"]) == (409, {"revision": [STALE]})
    with workspace_scope(workspace.id):
        assert list(JourneyVersion.objects.values_list("number", "revision")) == [(1, 2)]
        assert Journey.objects.get(id=journey_id).name == "Hello"


def test_the_service_refuses_a_stale_revision_and_saves_nothing(workspace, email_template):
    actor = Actor(role=Role.MARKETER)
    with workspace_scope(workspace.id):
        journey = services.journey_create(workspace=workspace, name="Welcome", actor=actor)
        services.journey_update(journey=journey, actor=actor, graph={"start": "a"}, revision=1)

        with pytest.raises(Conflict) as refused:
            services.journey_update(journey=journey, actor=actor, graph={"start": "b"},
                                    revision=1)  # fmt: skip

        version = JourneyVersion.objects.get(journey=journey)
    assert (refused.value.field, refused.value.message, refused.value.status) == (
        "revision", STALE, 409)  # fmt: skip
    assert (version.revision, version.graph) == (2, {"start": "a"})


def test_the_schema_says_patch_takes_a_revision_and_journeys_carry_one():
    schema = Client().get("/api/v1/schema/?format=json").json()

    patch_body = schema["paths"]["/api/v1/journeys/{id}"]["patch"]["requestBody"]
    component = patch_body["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    body = schema["components"]["schemas"][component]
    assert (sorted(body["properties"]), body.get("required")) == (
        ["description", "graph", "name", "revision"], None)  # fmt: skip
    assert (body["properties"]["revision"]["type"], body["properties"]["revision"]["minimum"]) == (
        "integer", 1)  # fmt: skip
    assert schema["components"]["schemas"]["JourneyOut"]["properties"]["revision"]["type"] == (
        "integer")  # fmt: skip


def test_an_empty_patch_changes_nothing_and_keeps_the_revision(api, workspace):
    journey_id = post(api, URL, {"name": "Welcome"}).json()["id"]

    answer = patch(api, f"{URL}/{journey_id}", {})

    assert (answer.status_code, answer.json()["name"], answer.json()["revision"]) == (
        200, "Welcome", 1)  # fmt: skip
    assert draft(workspace, journey_id) == (1, 1, {})


@pytest.mark.django_db(transaction=True)
def test_a_second_editor_of_the_same_revision_waits_for_the_first_then_is_refused(workspace):
    """The draft row is locked from the check to the commit: without the lock the second
    editor would read revision 1 (the first's change not committed yet) and overwrite it."""
    actor = Actor(role=Role.MARKETER)
    with workspace_scope(workspace.id):
        journey = services.journey_create(workspace=workspace, name="Welcome", actor=actor)
    first_saved, first_may_commit = threading.Event(), threading.Event()
    second_result = []

    def first_editor():
        with workspace_scope(workspace.id), transaction.atomic():
            services.journey_update(journey=journey, actor=actor, graph={"start": "a"},
                                    revision=1)  # fmt: skip
            first_saved.set()
            first_may_commit.wait(10)
        connection.close()

    def second_editor():
        first_saved.wait(10)
        with workspace_scope(workspace.id):
            try:
                services.journey_update(journey=journey, actor=actor, graph={"start": "b"},
                                        revision=1)  # fmt: skip
            except Conflict as error:
                second_result.append(error.message)
        connection.close()

    editors = [threading.Thread(target=first_editor), threading.Thread(target=second_editor)]
    for editor in editors:
        editor.start()
    first_saved.wait(10)
    editors[1].join(0.5)
    second_was_waiting = editors[1].is_alive()
    first_may_commit.set()
    for editor in editors:
        editor.join(10)

    assert second_was_waiting
    assert second_result == [STALE]
    with workspace_scope(workspace.id):
        version = JourneyVersion.objects.get(journey=journey)
    assert (version.revision, version.graph) == (2, {"start": "a"})


def test_publishing_a_draft_changed_since_it_was_reviewed_is_a_409(api, workspace,
                                                                   email_template):  # fmt: skip
    journey_id = post(api, URL, {"name": "Welcome"}).json()["id"]
    patch(api, f"{URL}/{journey_id}", {"graph": welcome(email_template), "revision": 1})
    theirs = welcome(email_template) | {"reentry": {"mode": "always"}}
    patch(api, f"{URL}/{journey_id}", {"graph": theirs, "revision": 2})

    refused = post(api, f"{URL}/{journey_id}/publish", {"revision": 2})
    stale = STALE.replace("revision 2, not 1", "revision 3, not 2")
    assert (refused.status_code, refused.json()) == (409, {
        "detail": stale, "code": "conflict", "errors": {"revision": [stale]}})  # fmt: skip
    assert api.get(f"{URL}/{journey_id}").json()["status"] == "draft"

    published = post(api, f"{URL}/{journey_id}/publish", {"revision": 3, "note": "reviewed"})
    assert (published.status_code, published.json()["status"]) == (200, "active")
