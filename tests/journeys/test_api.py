"""/api/v1/journeys: create, edit the draft, validate (every error), publish, versions, pause /
resume / archive with their 409s, delete of a draft only, the graph's JSON Schema; enrollments
through the API (idempotent, refused with the reason, another workspace's customer named),
their list, detail with the step history and exit; the stats; roles and foreign ids."""

from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
import time_machine

from journeys.models import Enrollment, Journey
from journeys.runner import advance_due
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from messaging.models import Message
from tests.conftest import bearer_client, mint_secret_key
from tests.factories import CustomerFactory
from tests.messaging.test_sending_support import template_version

pytestmark = pytest.mark.django_db

URL = "/api/v1/journeys"
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
STAMP = "2030-01-02T03:04:05Z"
GRANTED = {"email_marketing": {"status": "granted"}}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def email_template(workspace):
    return template_version(workspace, "email").template_id


@pytest.fixture
def customers(workspace):
    with workspace_scope(workspace.id):
        return [CustomerFactory(workspace=workspace, email=f"{name}@example.com", consent=GRANTED,
                                timezone="UTC") for name in ("ana", "ben")]  # fmt: skip


def welcome(template_id) -> dict:
    return {
        "trigger": {"type": "api"},
        "reentry": {"mode": "once"},
        "start": "hello",
        "steps": {
            "hello": {"type": "send", "channel": "email", "template_id": template_id,
                      "next": "a_day", "label": "Welcome email"},
            "a_day": {"type": "delay", "duration": {"days": 1}, "next": "done"},
            "done": {"type": "exit"},
        },
    }  # fmt: skip


def post(client, url, data=None, **headers):
    return client.post(url, data or {}, content_type="application/json", headers=headers)


def patch(client, url, data):
    return client.patch(url, data, content_type="application/json")


def journey_body(journey_id, key_id, **changes) -> dict:
    return {
        "id": journey_id, "name": "Welcome", "description": "", "status": "draft",
        "live_version": None, "draft_version": 1, "revision": 1,
        "created_by": f"api_key:{key_id}",
        "created_at": STAMP, "updated_at": STAMP, "graph": {},
    } | changes  # fmt: skip


def key_id(workspace) -> int:
    from masivo.tenancy.models import ApiKey

    with workspace_scope(workspace.id):
        return ApiKey.objects.get(name="admin key").id


def published(api, graph) -> int:
    journey_id = post(api, URL, {"name": "Welcome", "graph": graph}).json()["id"]
    answer = post(api, f"{URL}/{journey_id}/publish", {"note": "first"})
    assert answer.status_code == 200, answer.content
    return journey_id


def test_create_get_list_and_edit_the_draft(api, workspace, email_template):
    created = post(api, URL, {"name": "Welcome"})

    assert created.status_code == 201, created.content
    journey_id = created.json()["id"]
    expected = journey_body(journey_id, key_id(workspace))
    assert created.json() == expected
    assert api.get(f"{URL}/{journey_id}").json() == expected
    listed = api.get(URL).json()
    assert listed["results"] == [expected]
    assert api.get(URL, {"status": "active"}).json()["results"] == []
    assert api.get(URL, {"status": "gone"}).json()["errors"] == {
        "status": ["one of draft, active, paused, archived"]}  # fmt: skip

    edited = patch(api, f"{URL}/{journey_id}", {"description": "For new customers",
                                                "graph": welcome(email_template)})  # fmt: skip
    assert edited.status_code == 200, edited.content
    assert edited.json() == expected | {"description": "For new customers", "revision": 2,
                                        "graph": welcome(email_template)}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"name": ["This field is required."]}),
        ({"name": 7}, {"name": ["must be a string"]}),
        ({"name": "x", "colour": "red"}, {"colour": ["unknown field"]}),
        ({"name": "x", "graph": [1]}, {"graph": ['Expected a dictionary of items but got type '
                                                 '"list".']}),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(api, workspace, body, errors):
    response = post(api, URL, body)

    assert (response.status_code, response.json()) == (
        400, {"detail": "invalid input", "code": "invalid", "errors": errors})  # fmt: skip
    with workspace_scope(workspace.id):
        assert not Journey.objects.exists()


def test_validate_lists_every_error_and_publish_names_the_first(api, workspace, email_template):
    graph = welcome(email_template)
    graph["steps"]["a_day"]["next"] = "nowhere"
    journey_id = post(api, URL, {"name": "Welcome", "graph": graph}).json()["id"]

    checked = post(api, f"{URL}/{journey_id}/validate")
    refused = post(api, f"{URL}/{journey_id}/publish")

    assert checked.status_code == 200
    assert checked.json() == {"valid": False, "errors": [
        {"field": "graph.steps.a_day.next", "message": "no step 'nowhere'"},
        {"field": "graph.steps.done", "message": "no step leads here"},
    ]}  # fmt: skip
    assert (refused.status_code, refused.json()) == (400, {
        "detail": "no step 'nowhere'", "code": "invalid",
        "errors": {"graph.steps.a_day.next": ["no step 'nowhere'"]},
    })  # fmt: skip
    with workspace_scope(workspace.id):
        assert Journey.objects.get(id=journey_id).status == "draft"

    fine = post(api, f"{URL}/{journey_id}/validate", {"graph": welcome(email_template)})
    assert fine.json() == {"valid": True, "errors": []}
    wrong_template = welcome(email_template)
    wrong_template["steps"]["hello"]["template_id"] = 2_000_000_000
    assert post(api, f"{URL}/{journey_id}/validate", {"graph": wrong_template}).json() == {
        "valid": False,
        "errors": [{"field": "graph.steps.hello.template_id", "message": "no such template"}],
    }
    assert post(api, f"{URL}/{journey_id}/validate", {"graph": {"start": "x"}}).json() == {
        "valid": False,
        "errors": [{"field": "graph", "message": "'trigger' is a required property"},
                   {"field": "graph", "message": "'steps' is a required property"}],
    }  # fmt: skip


def test_publish_versions_and_a_new_draft(api, workspace, email_template):
    journey_id = published(api, welcome(email_template))

    detail = api.get(f"{URL}/{journey_id}").json()
    assert (detail["status"], detail["live_version"], detail["draft_version"]) == ("active", 1,
                                                                                  None)  # fmt: skip
    assert detail["graph"] == welcome(email_template)

    renamed = welcome(email_template)
    renamed["steps"]["hello"]["label"] = "Hello!"
    patch(api, f"{URL}/{journey_id}", {"graph": renamed})
    detail = api.get(f"{URL}/{journey_id}").json()
    assert (detail["live_version"], detail["draft_version"], detail["graph"]) == (1, 2, renamed)

    versions = api.get(f"{URL}/{journey_id}/versions").json()["results"]
    key = f"api_key:{key_id(workspace)}"
    assert versions == [
        {"number": 2, "is_draft": True, "is_live": False, "note": "", "published_at": None,
         "published_by": "", "created_at": STAMP},
        {"number": 1, "is_draft": False, "is_live": True, "note": "first", "published_at": STAMP,
         "published_by": key, "created_at": STAMP},
    ]  # fmt: skip
    one = api.get(f"{URL}/{journey_id}/versions/1").json()
    assert one == versions[1] | {"graph": welcome(email_template)}
    assert api.get(f"{URL}/{journey_id}/versions/3").status_code == 404

    again = post(api, f"{URL}/{journey_id}/publish", {"note": "label", "move_waiting": True})
    assert (again.json()["live_version"], again.json()["draft_version"]) == (2, None)
    nothing = post(api, f"{URL}/{journey_id}/publish")
    assert (nothing.status_code, nothing.json()["detail"]) == (409, "nothing to publish: no draft")


def test_publishing_with_move_waiting_moves_those_waiting_at_a_step_kept(
    api, workspace, email_template, customers
):
    ana, ben = customers
    journey_id = published(api, welcome(email_template))
    shorter = welcome(email_template)
    shorter["steps"]["a_day"]["duration"] = {"hours": 1}

    def enroll_and_advance(customer):
        post(api, f"{URL}/{journey_id}/enrollments", {"customer_id": customer.id},
             **{"Idempotency-Key": f"k-{customer.id}"})  # fmt: skip
        with workspace_scope(workspace.id):
            advance_due(workspace_id=workspace.id, now=NOW)  # the email, then waiting at a_day

    enroll_and_advance(ana)
    patch(api, f"{URL}/{journey_id}", {"graph": shorter})
    kept = post(api, f"{URL}/{journey_id}/publish", {"note": "shorter"})
    enroll_and_advance(ben)
    patch(api, f"{URL}/{journey_id}", {"graph": shorter})
    moved = post(api, f"{URL}/{journey_id}/publish", {"move_waiting": True})

    assert (kept.json()["live_version"], moved.json()["live_version"]) == (2, 3)
    enrollments = api.get(f"{URL}/{journey_id}/enrollments").json()["results"]
    # Ana stays on version 1 (publishing 2 did not move her); Ben moves from 2 to 3, waiting
    # at the same step with the deadline he had.
    assert [(e["customer_id"], e["version"], e["state"], e["current_step"], e["next_run_at"])
            for e in enrollments] == [
        (ben.id, 3, "waiting", "a_day", "2030-01-02T04:04:05Z"),
        (ana.id, 1, "waiting", "a_day", "2030-01-03T03:04:05Z"),
    ]  # fmt: skip


def test_pause_resume_archive_and_delete(api, workspace, email_template):
    journey_id = published(api, welcome(email_template))
    resumed_early = post(api, f"{URL}/{journey_id}/resume")
    paused = post(api, f"{URL}/{journey_id}/pause")
    resumed = post(api, f"{URL}/{journey_id}/resume")
    refused_delete = api.delete(f"{URL}/{journey_id}")
    archived = post(api, f"{URL}/{journey_id}/archive")
    edit_archived = patch(api, f"{URL}/{journey_id}", {"name": "Again"})

    assert (resumed_early.status_code, resumed_early.json()) == (409, {
        "detail": "a active journey cannot become active", "code": "conflict",
        "errors": {"status": ["a active journey cannot become active"]},
    })  # fmt: skip
    assert [r.json()["status"] for r in (paused, resumed, archived)] == [
        "paused", "active", "archived"]  # fmt: skip
    assert (refused_delete.status_code, refused_delete.json()) == (409, {
        "detail": "the journey is active; only a draft journey can be deleted (archive it "
                  "instead)",
        "code": "conflict",
        "errors": {"status": ["the journey is active; only a draft journey can be deleted "
                              "(archive it instead)"]},
    })  # fmt: skip
    assert (edit_archived.status_code, edit_archived.json()["detail"]) == (
        409, "the journey is archived")  # fmt: skip

    draft_id = post(api, URL, {"name": "Scratch"}).json()["id"]
    assert api.delete(f"{URL}/{draft_id}").status_code == 204
    assert api.get(f"{URL}/{draft_id}").status_code == 404


def test_the_graph_schema_validates_graphs(api, email_template):
    schema = api.get(f"{URL}/graph-schema").json()

    assert sorted(schema["$defs"]) == [
        "step_branch", "step_delay", "step_exit", "step_send", "step_split",
        "step_update_profile", "step_wait_audience", "step_wait_event", "step_webhook"]  # fmt: skip
    jsonschema.Draft202012Validator(schema).validate(welcome(email_template))
    broken = welcome(email_template)
    broken["steps"]["a_day"]["duration"] = {"fortnights": 1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)


def enrollment_body(enrollment_id, customer_id, **changes) -> dict:
    return {
        "id": enrollment_id, "customer_id": customer_id, "version": 1, "state": "active",
        "current_step": "hello", "entry_key": "", "next_run_at": STAMP, "waiting_for": None,
        "is_holdout": False, "variant": "", "context": {"plan": "pro"}, "entered_at": STAMP,
        "finished_at": None, "converted_at": None, "exit_reason": "", "steps": [],
    } | changes  # fmt: skip


def test_enroll_through_the_api_is_idempotent(api, workspace, email_template, customers):
    ana, ben = customers
    journey_id = published(api, welcome(email_template))
    url = f"{URL}/{journey_id}/enrollments"
    body = {"customer_id": ana.id, "context": {"plan": "pro"}}

    without_key = post(api, url, body)
    first = post(api, url, body, **{"Idempotency-Key": "signup-1"})
    again = post(api, url, body, **{"Idempotency-Key": "signup-1"})
    other_customer = post(api, url, {"customer_id": ben.id}, **{"Idempotency-Key": "signup-1"})
    already_in = post(api, url, body, **{"Idempotency-Key": "signup-2"})

    assert (without_key.status_code, without_key.json()["errors"]) == (
        400, {"Idempotency-Key": ["the Idempotency-Key header is required"]})  # fmt: skip
    assert first.status_code == 201, first.content
    enrollment_id = first.json()["id"]
    assert first.json() == enrollment_body(enrollment_id, ana.id)
    assert (again.status_code, again.json()) == (200, first.json())
    reused = "the Idempotency-Key was used to enroll another customer"
    assert (other_customer.status_code, other_customer.json()["errors"]) == (
        409, {"Idempotency-Key": [reused]})  # fmt: skip
    assert (already_in.status_code, already_in.json()) == (409, {
        "detail": "already in the journey", "code": "conflict",
        "errors": {"customer_id": ["already in the journey"]},
    })  # fmt: skip
    with workspace_scope(workspace.id):
        assert Enrollment.objects.count() == 1


def test_refusals_of_an_enrollment(api, workspace, other_workspace, email_template, customers):
    with workspace_scope(other_workspace.id):
        foreign = CustomerFactory(workspace=other_workspace)
    draft_id = post(api, URL, {"name": "Draft"}).json()["id"]
    journey_id = published(api, welcome(email_template))
    key = {"Idempotency-Key": "k"}

    not_mine = post(api, f"{URL}/{journey_id}/enrollments", {"customer_id": foreign.id}, **key)
    not_active = post(api, f"{URL}/{draft_id}/enrollments", {"customer_id": customers[0].id},
                      **key)  # fmt: skip
    bad_context = post(api, f"{URL}/{journey_id}/enrollments",
                       {"customer_id": customers[0].id, "context": "x"}, **key)  # fmt: skip

    assert (not_mine.status_code, not_mine.json()) == (400, {
        "detail": f"no customer {foreign.id} in this workspace", "code": "invalid",
        "errors": {"customer_id": [f"no customer {foreign.id} in this workspace"]},
    })  # fmt: skip
    assert (not_active.status_code, not_active.json()["errors"]) == (
        409, {"customer_id": ["the journey is not active"]})  # fmt: skip
    assert (bad_context.status_code, list(bad_context.json()["errors"])) == (400, ["context"])
    with workspace_scope(workspace.id):
        assert not Enrollment.objects.exists()


def test_enrollments_list_detail_with_history_exit_and_stats(
    api, workspace, email_template, customers
):
    ana, ben = customers
    journey_id = published(api, welcome(email_template))
    url = f"{URL}/{journey_id}/enrollments"
    ids = [post(api, url, {"customer_id": c.id, "context": {"plan": "pro"}},
                **{"Idempotency-Key": f"k-{c.id}"}).json()["id"] for c in customers]  # fmt: skip
    with workspace_scope(workspace.id):
        assert advance_due(workspace_id=workspace.id, now=NOW) == 2
        message_id = Message.objects.get(customer=ana).id

    exited = post(api, f"{url}/{ids[1]}/exit")
    exited_again = post(api, f"{url}/{ids[1]}/exit")
    detail = api.get(f"{url}/{ids[0]}").json()

    tomorrow = "2030-01-03T03:04:05Z"
    assert detail == enrollment_body(ids[0], ana.id, state="waiting", current_step="a_day",
                                     next_run_at=tomorrow, waiting_for={
                                         "delay": True, "since": NOW.isoformat(),
                                         "until": (NOW + timedelta(days=1)).isoformat()},
                                     steps=[
        {"step": "hello", "type": "send", "label": "Welcome email", "visit": 1,
         "outcome": "sent", "next_step": "a_day", "message_id": message_id,
         "detail": {"decision": "ok"}, "started_at": STAMP, "finished_at": STAMP},
        {"step": "a_day", "type": "delay", "label": "", "visit": 1, "outcome": "waiting",
         "next_step": "", "message_id": None,
         "detail": {"until": (NOW + timedelta(days=1)).isoformat()}, "started_at": STAMP,
         "finished_at": None},
    ])  # fmt: skip
    assert (exited.status_code, exited.json()["state"], exited.json()["exit_reason"]) == (
        200, "exited", "exited through the API")  # fmt: skip
    assert (exited_again.status_code, exited_again.json()["detail"]) == (
        409, "the enrollment is exited; only an open one can exit")  # fmt: skip

    listed = api.get(url).json()["results"]
    assert [e["id"] for e in listed] == [ids[1], ids[0]]
    assert "steps" not in listed[0]
    assert [e["id"] for e in api.get(url, {"state": "waiting"}).json()["results"]] == [ids[0]]
    assert [e["id"] for e in api.get(url, {"customer_id": ben.id}).json()["results"]] == [ids[1]]
    assert api.get(url, {"state": "gone"}).json()["errors"] == {
        "state": ["one of active, waiting, completed, converted, exited"]}  # fmt: skip
    assert api.get(url, {"customer_id": "x"}).json()["errors"] == {
        "customer_id": ["a whole number, 1 or more"]}  # fmt: skip

    stats = api.get(f"{URL}/{journey_id}/stats").json()
    zero = dict.fromkeys(["entered", "waiting_now", "passed", "sent", "delivered", "opened",
                          "clicked", "exited", "converted"], 0)  # fmt: skip
    assert stats["steps"] == {
        "hello": zero | {"entered": 2, "passed": 2, "sent": 2},
        "a_day": zero | {"entered": 2, "waiting_now": 1},
        "done": zero,
    }
    assert stats["enrollments"] == {"total": 2, "active": 1, "completed": 0, "converted": 0,
                                    "exited": 1}  # fmt: skip
    assert stats["conversion"] == {
        "treatment": {"enrollments": 2, "converted": 0, "rate": 0.0},
        "holdout": {"enrollments": 0, "converted": 0, "rate": None},
        "uplift": None,
    }
    assert stats["median_seconds_to_convert"] is None
    assert stats["per_day"][-1] == {"day": "2030-01-02", "entered": 2, "converted": 0}
    assert api.get(f"{URL}/{journey_id}/stats", {"since": "yesterday"}).status_code == 400


def test_a_viewer_reads_but_cannot_change(api, workspace, email_template, customers):
    journey_id = published(api, welcome(email_template))
    viewer = bearer_client(mint_secret_key(workspace, role=Role.VIEWER))

    reads = [viewer.get(f"{URL}/{journey_id}{tail}").status_code
             for tail in ("", "/versions", "/stats", "/enrollments")]  # fmt: skip
    writes = [
        post(viewer, URL, {"name": "Mine"}),
        patch(viewer, f"{URL}/{journey_id}", {"name": "Mine"}),
        post(viewer, f"{URL}/{journey_id}/pause"),
        post(viewer, f"{URL}/{journey_id}/validate"),
        post(viewer, f"{URL}/{journey_id}/enrollments", {"customer_id": customers[0].id},
             **{"Idempotency-Key": "k"}),
        viewer.delete(f"{URL}/{journey_id}"),
    ]  # fmt: skip

    assert reads == [200] * 4
    assert [w.status_code for w in writes] == [403] * 6
    with workspace_scope(workspace.id):
        assert list(Journey.objects.values_list("name", "status")) == [("Welcome", "active")]
        assert not Enrollment.objects.exists()


def test_another_workspaces_journey_and_enrollments_are_404(
    api, other_api, workspace, email_template, customers
):
    journey_id = published(api, welcome(email_template))
    url = f"{URL}/{journey_id}/enrollments"
    enrollment_id = post(api, url, {"customer_id": customers[0].id},
                         **{"Idempotency-Key": "k"}).json()["id"]  # fmt: skip
    other_journey = published(api, welcome(email_template) | {"reentry": {"mode": "always"}})

    answers = [
        other_api.get(f"{URL}/{journey_id}"),
        other_api.get(f"{URL}/{journey_id}/versions/1"),
        other_api.get(f"{URL}/{journey_id}/stats"),
        other_api.get(url),
        other_api.get(f"{url}/{enrollment_id}"),
        post(other_api, f"{url}/{enrollment_id}/exit"),
        post(other_api, url, {"customer_id": customers[0].id}, **{"Idempotency-Key": "x"}),
        post(other_api, f"{URL}/{journey_id}/archive"),
        other_api.delete(f"{URL}/{journey_id}"),
        api.get(f"{URL}/{other_journey}/enrollments/{enrollment_id}"),  # not that journey's
        api.get(f"{url}/abc"),
        api.get(f"{URL}/{journey_id}/versions/1e3"),
    ]

    assert [a.status_code for a in answers] == [404] * 12
    assert {a.json()["code"] for a in answers} == {"not_found"}
    with workspace_scope(workspace.id):
        assert Journey.objects.get(id=journey_id).status == "active"
        assert Enrollment.objects.get(id=enrollment_id).state == "active"
