"""Audiences through the API, with recalculations run as the worker would."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.models import Audience, Membership, MembershipChange, Recalculation
from audiences.recalculation import audience_recalculate, recalculation_run
from audiences.tasks import recalculate_audience
from masivo.tenancy.context import workspace_scope
from profiles.models import Event
from tests.factories import AudienceFactory, CustomerFactory
from tests.feeds.support import Writer, add_change, wait_until_committed_rows_readable

pytestmark = pytest.mark.django_db

MX = {"version": 1, "root": {"profile": {"field": "country", "op": "eq", "value": "MX"}}}


def rules(root):
    return {"version": 1, "root": root}


@pytest.fixture
def people(workspace):
    with workspace_scope(workspace.id):
        return {
            "ana": CustomerFactory(workspace=workspace, external_id="ana", country="MX"),
            "beto": CustomerFactory(workspace=workspace, external_id="beto", country="MX"),
            "carla": CustomerFactory(workspace=workspace, external_id="carla", country="AR"),
        }


def create(api, body):
    return api.post("/api/v1/audiences", body, content_type="application/json")


def run_latest(workspace, audience_id):
    with workspace_scope(workspace.id):
        run = Recalculation.objects.filter(audience_id=audience_id).latest("id")
    recalculate_audience(workspace_id=workspace.id, recalculation_id=run.id)


def member_ids(workspace, audience_id):
    with workspace_scope(workspace.id):
        return set(
            Membership.objects.filter(audience_id=audience_id).values_list(
                "customer__external_id", flat=True
            )
        )


def changes(workspace, audience_id):
    with workspace_scope(workspace.id):
        return list(
            MembershipChange.objects.filter(audience_id=audience_id)
            .order_by("id")
            .values_list("kind", "customer_id")
        )


def test_create_recalculates_and_logs_enters(api, workspace, people):
    response = create(api, {"name": "Mexico", "rules": MX, "schedule": "hourly"})
    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["version"], body["size"]) == ("rules", 1, 0)
    run_latest(workspace, body["id"])

    assert member_ids(workspace, body["id"]) == {"ana", "beto"}
    assert sorted(changes(workspace, body["id"])) == sorted(
        [("enter", people["ana"].id), ("enter", people["beto"].id)]
    )
    audience = api.get(f"/api/v1/audiences/{body['id']}").json()
    assert (audience["size"], audience["last_run_entered"], audience["last_run_exited"]) == (
        2,
        2,
        0,
    )
    runs = api.get(f"/api/v1/audiences/{body['id']}/recalculate").json()
    assert [(r["status"], r["size"], r["entered"], r["reason"]) for r in runs] == [
        ("succeeded", 2, 2, "created")
    ]


def test_a_rule_change_exits_members_who_stop_matching(api, workspace, people):
    audience_id = create(api, {"name": "Mexico", "rules": MX}).json()["id"]
    run_latest(workspace, audience_id)
    response = api.patch(
        f"/api/v1/audiences/{audience_id}",
        {
            "rules": rules(
                {"profile": {"field": "external_id", "op": "in", "value": ["ana", "carla"]}}
            )
        },
        content_type="application/json",
    )
    assert response.json()["version"] == 2
    run_latest(workspace, audience_id)
    assert member_ids(workspace, audience_id) == {"ana", "carla"}
    assert changes(workspace, audience_id)[2:] == sorted(
        [("exit", people["beto"].id), ("enter", people["carla"].id)], key=lambda c: c[0] != "exit"
    )


def test_a_stale_recalculation_is_a_no_op(workspace, people, api):
    audience_id = create(api, {"name": "Mexico", "rules": MX}).json()["id"]
    with workspace_scope(workspace.id):
        stale = Recalculation.objects.get(audience_id=audience_id)
        Audience.objects.filter(id=audience_id).update(version=2)
        run = recalculation_run(recalculation=stale)
    assert run.status == "skipped"
    assert member_ids(workspace, audience_id) == set()


def test_time_based_membership_expires_without_new_events(api, workspace, people):
    now = timezone.now()
    with workspace_scope(workspace.id):
        Event.objects.create(
            workspace=workspace, customer=people["ana"], name="purchase", properties={},
            occurred_at=now - timedelta(days=29), message_id="p1", source="test",
        )  # fmt: skip
    recent = rules({"event": {"name": "purchase", "within": {"last": 30, "unit": "days"}}})
    audience_id = create(api, {"name": "Recent buyers", "rules": recent}).json()["id"]
    run_latest(workspace, audience_id)
    assert member_ids(workspace, audience_id) == {"ana"}
    with workspace_scope(workspace.id):
        audience = Audience.objects.get(id=audience_id)
        assert audience.is_time_based
        audience_recalculate(audience=audience, reason="schedule", now=now + timedelta(days=2))
    assert member_ids(workspace, audience_id) == set()
    assert changes(workspace, audience_id)[-1] == ("exit", people["ana"].id)


@pytest.mark.parametrize(
    ("document", "errors"),
    [
        ({"version": 2, "root": {"all": []}},
         ["$.version: must be 1", "$.root.all: must be a non-empty list of conditions"]),
        (rules({"profile": {"field": "shoe_size", "op": "eq", "value": 1}}),
         ["$.root.profile.field: unknown field; use a profile field, metrics.<name>, tags.<key> "
          "or traits.<path>"]),
        (rules({"profile": {"field": "country", "op": "gt", "value": "MX"}}),
         ["$.root.profile.op: for a text field, op is one of eq, neq, in, not_in, contains, "
          "starts_with, ends_with, exists, not_exists, is_empty"]),
        (rules({"any": [{"profile": {"field": "metrics.purchase_count", "op": "gte",
                                     "value": "two"}}]}),
         ["$.root.any[0].profile.value: must be a number"]),
        (rules({"event": {"name": "purchase", "count": {"op": "gte", "value": -1}}}),
         ["$.root.event.count.value: must be a whole number ≥ 0"]),
        (rules({"teleport": {}}), ["$.root: unknown node 'teleport'"]),
    ],
)  # fmt: skip
def test_invalid_rules_name_the_node(api, workspace, document, errors):
    response = create(api, {"name": "Bad", "rules": document})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_rules"
    assert response.json()["errors"] == {"rules": errors}
    with workspace_scope(workspace.id):
        assert Audience.objects.count() == 0


@pytest.mark.parametrize(
    ("condition", "error"),
    [
        ({"profile": {"op": "eq", "value": "MX"}},
         "$.root.all[1].profile.field: unknown field; use a profile field, metrics.<name>, "
         "tags.<key> or traits.<path>"),
        ({"profile": {"field": "", "op": "eq", "value": "MX"}},
         "$.root.all[1].profile.field: unknown field; use a profile field, metrics.<name>, "
         "tags.<key> or traits.<path>"),
        ({"profile": {"field": "country", "op": "eq"}},
         "$.root.all[1].profile.value: eq needs a value"),
        ({"profile": {"field": "country"}},
         "$.root.all[1].profile.op: for a text field, op is one of eq, neq, in, not_in, contains, "
         "starts_with, ends_with, exists, not_exists, is_empty"),
        ({"event": {"name": ""}}, "$.root.all[1].event.name: the event name is a non-empty string"),
        ({"event": {"name": "purchase", "where": [{"property": "revenue", "op": "gt"}]}},
         "$.root.all[1].event.where[0].value: gt needs a value"),
        ({"all": []}, "$.root.all[1].all: must be a non-empty list of conditions"),
    ],
)  # fmt: skip
def test_an_incomplete_condition_is_refused_naming_it(api, workspace, people, condition, error):
    """What the dashboard's builder flags as incomplete, the save path refuses by its path."""
    document = rules({"all": [MX["root"], condition]})
    response = create(api, {"name": "Half done", "rules": document})
    assert response.status_code == 400
    assert response.json()["errors"] == {"rules": [error]}
    with workspace_scope(workspace.id):
        assert Audience.objects.count() == 0


def test_an_explicit_empty_text_is_a_comparison_the_api_keeps(api, workspace, people):
    """Through the API, "" is a value (docs/audiences.md, Missing values): on a profile field it
    matches no one with eq, everyone with neq; the dashboard's builder treats it as unfilled."""
    never = create(api, {"name": "Never", "rules": rules(
        {"profile": {"field": "country", "op": "eq", "value": ""}})})  # fmt: skip
    everyone = create(api, {"name": "Everyone", "rules": rules(
        {"profile": {"field": "country", "op": "neq", "value": ""}})})  # fmt: skip
    assert (never.status_code, everyone.status_code) == (201, 201)
    run_latest(workspace, never.json()["id"])
    run_latest(workspace, everyone.json()["id"])
    assert member_ids(workspace, never.json()["id"]) == set()
    assert member_ids(workspace, everyone.json()["id"]) == {"ana", "beto", "carla"}


def test_references_cycles_and_deleting_a_referenced_audience(api, workspace, people):
    base = create(api, {"name": "Mexico", "rules": MX}).json()["id"]
    derived_rules = rules(
        {
            "all": [
                {"audience": {"id": base}},
                {"profile": {"field": "external_id", "op": "eq", "value": "ana"}},
            ]
        }
    )
    derived = create(api, {"name": "Ana in Mexico", "rules": derived_rules}).json()["id"]
    run_latest(workspace, base)
    run_latest(workspace, derived)
    assert member_ids(workspace, derived) == {"ana"}

    cycle = api.patch(
        f"/api/v1/audiences/{base}",
        {"rules": rules({"audience": {"id": derived, "in": False}})},
        content_type="application/json",
    )
    assert cycle.status_code == 400
    assert cycle.json()["errors"] == {
        "rules": ["$.root: the references form a cycle back to this audience"]
    }
    refused = api.delete(f"/api/v1/audiences/{base}")
    assert refused.status_code == 409
    assert refused.json()["detail"] == "used by Ana in Mexico; change those rules first"
    missing = create(api, {"name": "Ghost", "rules": rules({"audience": {"id": 999999}})})
    assert missing.json()["errors"] == {"rules": ["$.root: audience 999999 does not exist"]}


def test_preview_counts_and_samples_unsaved_rules(api, people):
    response = api.post("/api/v1/audiences/preview", {"rules": MX}, content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [c["external_id"] for c in body["sample"]] == ["beto", "ana"]


def test_a_slow_preview_is_stopped_with_a_clear_error(api, workspace, monkeypatch):
    from django.db import connection

    from audiences import selectors

    with workspace_scope(workspace.id), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO profiles_customer (workspace_id, external_id, first_name, last_name, "
            "gender, country, city, timezone, locale, tier, status, is_anonymous, tags, traits, "
            "consent, created_at, updated_at, purchase_count, purchase_total, "
            "purchases_30d_count, purchases_30d_total, purchases_month_count, "
            "purchases_month_total) SELECT %s, 'bulk-' || g, '', '', '', 'MX', '', '', '', '', "
            "'active', false, '{}', '{\"n\": 1}', '{}', now(), now(), 0, 0, 0, 0, 0, 0 "
            "FROM generate_series(1, 50000) g",
            [workspace.id],
        )
    monkeypatch.setattr(selectors, "PREVIEW_TIMEOUT_MS", 1)
    heavy = rules(
        {
            "any": [
                {"profile": {"field": "traits.n", "op": "contains", "value": "x"}},
                {"profile": {"field": "country", "op": "ends_with", "value": "z"}},
            ]
        }
    )
    response = api.post(
        "/api/v1/audiences/preview", {"rules": heavy}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "preview_timeout"
    assert response.json()["detail"].startswith("the preview took longer than 0 s")


def test_explain_says_why(api, workspace, people):
    vip_mx = rules({"all": [MX["root"], {"profile": {"field": "tags.vip", "op": "is_true"}}]})
    audience_id = create(api, {"name": "VIP MX", "rules": vip_mx}).json()["id"]
    response = api.get(f"/api/v1/audiences/{audience_id}/explain?customer_id={people['ana'].id}")
    assert response.status_code == 200
    assert response.json() == {
        "audience_id": audience_id,
        "customer_id": people["ana"].id,
        "matches": False,
        "is_member": False,
        "explanation": {
            "node": "all",
            "result": False,
            "children": [
                {"node": "profile", "result": True, "field": "country", "op": "eq",
                 "value": "MX", "expected": "MX"},
                {"node": "profile", "result": False, "field": "tags.vip", "op": "is_true",
                 "value": None},
            ],
        },
    }  # fmt: skip


def feed_of(workspace, customer_ids):
    """An audience with one committed, readable change per customer id (written directly)."""
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace)
    changes = [add_change(audience, customer_id).id for customer_id in customer_ids]
    wait_until_committed_rows_readable()
    return audience.id, changes


def change_ids(page):
    return [change["id"] for change in page["results"]]


@pytest.mark.django_db(transaction=True)
def test_the_change_feed_pages_after_an_opaque_position(api, workspace):
    audience_id, changes = feed_of(workspace, [1, 2, 3])
    url = f"/api/v1/audiences/{audience_id}/changes"
    first = api.get(f"{url}?limit=2").json()
    rest = api.get(f"{url}?after={first['next_after']}").json()
    done = api.get(f"{url}?after={rest['next_after']}").json()
    assert change_ids(first) == changes[:2]
    assert [change["customer_id"] for change in rest["results"]] == [3]
    assert done == {"results": [], "next_after": rest["next_after"], "next_since": changes[2]}


@pytest.mark.django_db(transaction=True)
def test_the_change_feed_still_pages_by_change_id(api, workspace):
    audience_id, changes = feed_of(workspace, [1, 2])
    url = f"/api/v1/audiences/{audience_id}/changes"
    first = api.get(f"{url}?since=0&limit=1").json()
    rest = api.get(f"{url}?since={first['next_since']}").json()
    done = api.get(f"{url}?since={rest['next_since']}").json()
    assert (change_ids(first), change_ids(rest)) == (changes[:1], changes[1:])
    assert done == {"results": [], "next_after": rest["next_after"], "next_since": changes[1]}


@pytest.mark.django_db(transaction=True)
def test_a_change_that_commits_late_is_on_a_later_page_not_skipped(api, workspace):
    audience_id, _ = feed_of(workspace, [])
    url = f"/api/v1/audiences/{audience_id}/changes"
    slow = Writer(workspace.id)
    try:
        _, slow_id = slow.insert(audience_id=audience_id, customer_id=1)
        with workspace_scope(workspace.id):
            fast_id = add_change(Audience.objects.get(id=audience_id), 2).id
        held = api.get(url).json()
        slow.commit()
    finally:
        slow.close()
    wait_until_committed_rows_readable()
    after = api.get(f"{url}?after={held['next_after']}").json()
    assert held == {"results": [], "next_after": "0.0", "next_since": 0}
    assert change_ids(after) == [slow_id, fast_id]


@pytest.mark.parametrize(
    ("query", "code", "errors"),
    [
        ("after=12", "invalid", {"after": ["the next_after of an earlier page"]}),
        ("after=1.1&since=1", "invalid", {"after": ["give after or since, not both"]}),
        ("since=abc", "invalid", {"since": ["a whole number"]}),
        ("since=999999", "unknown_change", {"since": [
            "change 999999 is not in this audience's feed (it may have expired): start again "
            "without since"]}),
    ],
)  # fmt: skip
def test_the_change_feed_refuses_a_position_it_cannot_use(api, workspace, query, code, errors):
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace)
    response = api.get(f"/api/v1/audiences/{audience.id}/changes?{query}")
    assert response.status_code == 400
    assert response.json() == {"detail": "invalid input", "code": code, "errors": errors}


def test_uploaded_list_members_by_api(api, workspace, people):
    audience_id = create(api, {"name": "VIP list", "kind": "list"}).json()["id"]
    response = api.post(
        f"/api/v1/audiences/{audience_id}/members",
        {"add": [people["ana"].id, people["carla"].id]},
        content_type="application/json",
    )
    assert response.json() == {"added": 2, "removed": 0}
    api.post(
        f"/api/v1/audiences/{audience_id}/members",
        {"remove": [people["carla"].id]},
        content_type="application/json",
    )
    assert member_ids(workspace, audience_id) == {"ana"}
    members = api.get(f"/api/v1/audiences/{audience_id}/members").json()["results"]
    assert [(m["customer_id"], m["external_id"], m["email"], m["source"]) for m in members] == [
        (people["ana"].id, people["ana"].external_id, people["ana"].email, "list")
    ]
    assert api.post(f"/api/v1/audiences/{audience_id}/recalculate").status_code == 409
    mine = api.get(f"/api/v1/customers/{people['ana'].id}/audiences").json()
    assert [(a["audience_id"], a["name"], a["source"]) for a in mine] == [
        (audience_id, "VIP list", "list")
    ]


def test_recalculate_now_answers_202_and_runs(api, workspace, people):
    audience_id = create(api, {"name": "Mexico", "rules": MX}).json()["id"]
    response = api.post(f"/api/v1/audiences/{audience_id}/recalculate")
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    recalculate_audience(workspace_id=workspace.id, recalculation_id=response.json()["id"])
    assert member_ids(workspace, audience_id) == {"ana", "beto"}


def test_a_schedule_change_with_unchanged_rules_moves_the_next_run(api, workspace, people):
    audience = create(api, {"name": "Mexico", "rules": MX, "schedule": "daily"}).json()
    run_latest(workspace, audience["id"])
    before = api.get(f"/api/v1/audiences/{audience['id']}").json()["next_run_at"]
    after = api.patch(
        f"/api/v1/audiences/{audience['id']}",
        {"rules": MX, "schedule": "hourly"},
        content_type="application/json",
    ).json()
    assert (after["version"], after["schedule"]) == (1, "hourly")
    assert after["next_run_at"] < before


def test_durations_use_the_real_clock_even_with_a_future_rule_clock(api, workspace, people):
    audience_id = create(api, {"name": "Mexico", "rules": MX}).json()["id"]
    with workspace_scope(workspace.id):
        audience = Audience.objects.get(id=audience_id)
        run = audience_recalculate(
            audience=audience, reason="test", now=timezone.now() + timedelta(days=30)
        )
    assert run.status == "succeeded"
    assert run.started_at <= run.finished_at <= timezone.now()
    assert run.duration_ms >= 0


def test_an_uploaded_list_is_never_scheduled(api, workspace):
    audience_id = create(api, {"name": "VIP", "kind": "list"}).json()["id"]
    body = api.patch(
        f"/api/v1/audiences/{audience_id}", {"schedule": "hourly"}, content_type="application/json"
    ).json()
    assert (body["schedule"], body["next_run_at"]) == ("never", None)


@pytest.mark.parametrize("method", ["post", "patch"])
def test_an_unknown_field_is_a_400_naming_it_and_nothing_changes(api, workspace, method):
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, name="VIP")
    url = "/api/v1/audiences" + (f"/{audience.id}" if method == "patch" else "")
    body = {"name": "VIP 2", "colour": "red", "member": False}

    response = getattr(api, method)(url, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "invalid input",
        "code": "invalid",
        "errors": {"colour": ["unknown field"], "member": ["unknown field"]},
    }
    with workspace_scope(workspace.id):
        assert list(Audience.objects.values_list("name", flat=True)) == ["VIP"]
