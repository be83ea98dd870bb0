"""/api/v1/messaging/campaigns: create and validation, drafts edited and deleted, the estimate,
send, pause / resume / cancel with their 409s, progress, stats, roles and foreign ids."""

import pytest

from audiences.models import Membership
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from messaging import campaigns
from messaging.models import Campaign, Message
from tests.conftest import bearer_client, mint_secret_key
from tests.factories import AudienceFactory, CampaignFactory, CustomerFactory
from tests.messaging.test_policy_support import make_template, set_regime

pytestmark = pytest.mark.django_db

GRANTED = {"email_marketing": {"status": "granted"}}
URL = "/api/v1/messaging/campaigns"


@pytest.fixture
def setup(workspace):
    with workspace_scope(workspace.id):
        set_regime(workspace, "opt_in")
        template = make_template(workspace, name="Sale")
        audience = AudienceFactory(workspace=workspace)
        for consent in (GRANTED, GRANTED, {}):
            customer = CustomerFactory(workspace=workspace, consent=consent)
            Membership.objects.create(
                workspace=workspace, audience=audience, customer=customer, source="api"
            )
    return template, audience


def body(setup, **changes):
    template, audience = setup
    return {"name": "Summer", "channel": "email", "audience_ids": [audience.id],
            "template_id": template.id} | changes  # fmt: skip


def post(client, url, data=None):
    return client.post(url, data or {}, content_type="application/json")


def test_create_get_and_list(api, setup):
    template, audience = setup

    created = post(api, URL, body(setup, throttle_per_minute=100))

    assert created.status_code == 201, created.content
    answer = created.json()
    assert {k: answer[k] for k in ("name", "channel", "kind", "status", "audience_ids",
                                   "variants", "throttle_per_minute", "progress")} == {
        "name": "Summer", "channel": "email", "kind": "marketing", "status": "draft",
        "audience_ids": [audience.id],
        "variants": [{"name": "A", "template_id": template.id, "weight": 100}],
        "throttle_per_minute": 100,
        "progress": {"total": 0, "done": 0, "percent": 100, "queued": 0, "deferred": 0,
                     "paused": 0, "sent": 0, "failed": 0, "suppressed": 0, "canceled": 0},
    }  # fmt: skip
    assert api.get(f"{URL}/{answer['id']}").json()["name"] == "Summer"
    assert [c["id"] for c in api.get(URL).json()["results"]] == [answer["id"]]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"audience_ids": []}, "audience_ids"),
        ({"audience_ids": [123456789]}, "audience_ids"),
        ({"throttle_per_minute": 0}, "throttle_per_minute"),
        ({"unknown": 1}, "unknown"),
        ({"variants": [{"template_id": 1, "weight": 100, "x": 1}]}, "variants"),
        ({"local_time": "09:00"}, "local_date"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, workspace, setup, changes, field):
    response = post(api, URL, body(setup, **changes))

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"] or any(
        key.startswith(field) for key in response.json()["errors"]
    ), response.json()
    with workspace_scope(workspace.id):
        assert Campaign.objects.count() == 0


def test_a_foreign_audience_or_template_is_refused_as_missing(api, setup, other_workspace):
    with workspace_scope(other_workspace.id):
        foreign_audience = AudienceFactory(workspace=other_workspace)
        foreign_template = make_template(other_workspace)

    by_audience = post(api, URL, body(setup, audience_ids=[foreign_audience.id]))
    by_template = post(api, URL, body(setup, template_id=foreign_template.id))

    assert by_audience.json()["errors"] == {
        "audience_ids": [f"no audience {foreign_audience.id} in this workspace"]
    }
    assert by_template.json()["errors"] == {
        "variants[0].template_id": [f"no template {foreign_template.id} in this workspace"]
    }


def test_the_estimate_of_a_body_and_of_a_saved_campaign(api, setup):
    expected = {"total": 3, "reachable": 2, "by_code": {"no_consent": 1, "ok": 2},
                "summary": "2 of 3 reachable: 1 no consent"}  # fmt: skip

    assert post(api, f"{URL}/estimate", body(setup)).json() == expected
    campaign_id = post(api, URL, body(setup)).json()["id"]
    assert api.get(f"{URL}/{campaign_id}/estimate").json() == expected


def test_drafts_only_are_edited_and_deleted_other_states_are_409(
    api, workspace, setup, django_capture_on_commit_callbacks
):
    campaign_id = post(api, URL, body(setup)).json()["id"]
    patched = api.patch(f"{URL}/{campaign_id}", {"name": "Winter"}, content_type="application/json")
    assert (patched.status_code, patched.json()["name"]) == (200, "Winter")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sent = post(api, f"{URL}/{campaign_id}/send")
    assert (sent.status_code, sent.json()["status"]) == (202, "scheduled")
    assert len(callbacks) == 1  # the start task, after commit

    again = api.patch(f"{URL}/{campaign_id}", {"name": "X"}, content_type="application/json")
    deleted = api.delete(f"{URL}/{campaign_id}")
    resumed = post(api, f"{URL}/{campaign_id}/resume")
    assert [r.status_code for r in (again, deleted, resumed)] == [409, 409, 409]
    assert again.json() == {
        "detail": "the campaign is scheduled; only a draft campaign can be edited",
        "code": "campaign_state",
        "errors": {"status": ["the campaign is scheduled; only a draft campaign can be edited"]},
    }
    assert resumed.json()["detail"] == (
        "the campaign is scheduled; only a paused campaign can be resumed"
    )

    draft_id = post(api, URL, body(setup)).json()["id"]
    assert api.delete(f"{URL}/{draft_id}").status_code == 204
    assert api.get(f"{URL}/{draft_id}").status_code == 404


def test_send_pause_resume_cancel_and_stats(api, workspace, setup):
    campaign_id = post(api, URL, body(setup)).json()["id"]
    post(api, f"{URL}/{campaign_id}/send")
    with workspace_scope(workspace.id):
        campaigns.campaign_start(campaign_id=campaign_id)

    detail = api.get(f"{URL}/{campaign_id}").json()
    assert (detail["status"], detail["recipients"], detail["decision_counts"]) == (
        "sending", 3, {"no_consent": 1, "ok": 2},
    )  # fmt: skip
    assert {k: detail["progress"][k] for k in ("total", "done", "queued", "suppressed")} == {
        "total": 3, "done": 1, "queued": 2, "suppressed": 1,
    }  # fmt: skip

    paused = post(api, f"{URL}/{campaign_id}/pause")
    assert (paused.json()["messages"], paused.json()["campaign"]["status"]) == (2, "paused")
    assert paused.json()["campaign"]["progress"]["paused"] == 2
    resumed = post(api, f"{URL}/{campaign_id}/resume")
    assert (resumed.json()["messages"], resumed.json()["campaign"]["status"]) == (2, "sending")
    canceled = post(api, f"{URL}/{campaign_id}/cancel")
    assert (canceled.json()["messages"], canceled.json()["campaign"]["status"]) == (2, "canceled")
    assert post(api, f"{URL}/{campaign_id}/pause").status_code == 409
    with workspace_scope(workspace.id):
        assert Message.objects.filter(status="canceled").count() == 2

    stats = api.get(f"{URL}/{campaign_id}/stats").json()
    assert stats == {
        "counts": {"sent": 0, "delivered": 0, "opened": 0, "clicked": 0, "bounced": 0,
                   "unsubscribed": 0},
        "rates": {"delivered": 0.0, "opened": 0.0, "clicked": 0.0, "bounced": 0.0,
                  "unsubscribed": 0.0},
        "series": [], "variants": {},
    }  # fmt: skip


def test_schedule_needs_a_time_and_sets_the_status(api, setup):
    campaign_id = post(api, URL, body(setup)).json()["id"]

    missing = post(api, f"{URL}/{campaign_id}/schedule")
    api.patch(f"{URL}/{campaign_id}", {"send_at": "2030-01-01T09:00:00Z"},
              content_type="application/json")  # fmt: skip
    scheduled = post(api, f"{URL}/{campaign_id}/schedule")

    assert (missing.status_code, missing.json()["code"]) == (409, "campaign_incomplete")
    assert (scheduled.status_code, scheduled.json()["status"], scheduled.json()["send_at"]) == (
        200, "scheduled", "2030-01-01T09:00:00Z",
    )  # fmt: skip


def test_a_viewer_reads_but_cannot_change(workspace, api, setup):
    campaign_id = post(api, URL, body(setup)).json()["id"]
    viewer = bearer_client(mint_secret_key(workspace, role=Role.VIEWER))

    assert viewer.get(f"{URL}/{campaign_id}").status_code == 200
    assert post(viewer, URL, body(setup)).status_code == 403
    assert post(viewer, f"{URL}/{campaign_id}/send").status_code == 403
    assert viewer.delete(f"{URL}/{campaign_id}").status_code == 403
    with workspace_scope(workspace.id):  # nothing made, started or deleted
        assert list(Campaign.objects.values_list("id", "status")) == [(campaign_id, "draft")]
        assert not Message.objects.exists()


def test_another_workspaces_campaign_is_a_404(api, other_workspace):
    with workspace_scope(other_workspace.id):
        foreign = CampaignFactory(workspace=other_workspace)

    answers = [
        api.get(f"{URL}/{foreign.id}"),
        api.get(f"{URL}/{foreign.id}/stats"),
        post(api, f"{URL}/{foreign.id}/send"),
        post(api, f"{URL}/{foreign.id}/cancel"),
        api.delete(f"{URL}/{foreign.id}"),
    ]

    assert [answer.status_code for answer in answers] == [404] * 5
    with workspace_scope(other_workspace.id):
        assert Campaign.objects.get(id=foreign.id).status == "draft"
