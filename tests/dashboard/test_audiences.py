"""The audience pages: list, rule editor and live estimate, detail, recalculation, uploaded lists,
delete, and explanations, with who may do what."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.html import escape

from audiences.models import Audience, Membership, MembershipChange, Recalculation
from audiences.recalculation import audience_recalculate, recalculation_run
from audiences.services import audience_create
from audiences.views import audiences as audience_views
from masivo.tenancy.context import workspace_scope
from profiles.models import Event
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
MX = {"version": 1, "root": {"profile": {"field": "country", "op": "eq", "value": "MX"}}}
NESTED = {
    "version": 1,
    "root": {
        "all": [
            {"profile": {"field": "country", "op": "eq", "value": "MX"}},
            {
                "any": [
                    {"event": {"name": "purchase", "count": {"op": "gte", "value": 2},
                               "within": {"last": 30, "unit": "days"}}},
                    {"consent": {"purpose": "email_marketing", "allowed": True}},
                ]
            },
        ]
    },
}  # fmt: skip
# What NESTED reads, for real time (audiences.dependencies).
DEPENDENCIES = ["consent:email_marketing", "event:purchase", "field:country", "field:is_anonymous"]
GRANTED = {"email_marketing": {"status": "granted", "at": "2026-10-01T09:00:00+00:00",
                               "source": "test"}}  # fmt: skip


def url(workspace, path: str = "") -> str:
    return f"/w/{workspace.id}/audiences/{path}"


@pytest.fixture
def people(workspace) -> dict:
    """Ana (MX, 2 purchases), Beto (MX, email consent), Carla (MX), Dario (AR, 3 purchases)."""
    now = timezone.now()
    with workspace_scope(workspace.id):
        found = {
            "ana": CustomerFactory(
                workspace=workspace, external_id="ana", email="ana@example.com",
                first_name="Ana", last_name="López", country="MX",
            ),
            "beto": CustomerFactory(
                workspace=workspace, external_id="beto", email="beto@example.com",
                first_name="Beto", last_name="Paz", country="MX", consent=GRANTED,
            ),
            "carla": CustomerFactory(
                workspace=workspace, external_id="carla", email="carla@example.com",
                first_name="Carla", last_name="Ruiz", country="MX",
            ),
            "dario": CustomerFactory(
                workspace=workspace, external_id="dario", email="dario@example.com",
                first_name="Darío", last_name="Sosa", country="AR",
            ),
        }  # fmt: skip
        for who, count in (("ana", 2), ("dario", 3)):
            Event.objects.bulk_create(
                Event(
                    workspace=workspace, customer=found[who], name="purchase",
                    properties={"revenue": 100}, occurred_at=now - timedelta(days=day + 1),
                    message_id=f"{who}-{day}", source="api",
                )
                for day in range(count)
            )  # fmt: skip
    return found


def make(workspace, **data) -> Audience:
    with workspace_scope(workspace.id):
        return audience_create(workspace=workspace, data=data)


def recalculate(workspace, audience) -> Recalculation:
    """As the worker: the queued run (creating an audience queues its first), else a new one."""
    with workspace_scope(workspace.id):
        queued = Recalculation.objects.filter(audience=audience, status="queued").first()
        if queued is not None:
            return recalculation_run(recalculation=queued)
        return audience_recalculate(audience=audience, reason="test")


def stored(workspace) -> list[dict]:
    """Every audience of the workspace, as stored (times left out: they are now())."""
    with workspace_scope(workspace.id):
        return [
            model_to_dict(audience, exclude=["created_at", "updated_at", "next_run_at"])
            for audience in Audience.objects.order_by("id")
        ]


def runs(workspace) -> list[tuple]:
    with workspace_scope(workspace.id):
        return list(
            Recalculation.objects.order_by("id").values_list("audience__name", "reason", "status")
        )


def members(workspace, audience) -> set[str]:
    with workspace_scope(workspace.id):
        return set(
            Membership.objects.filter(audience=audience).values_list(
                "customer__external_id", flat=True
            )
        )


def form(name="Engaged", rules=NESTED, **fields) -> dict:
    data = {"name": name, "kind": "rules", "schedule": "daily", "description": ""}
    data["rules"] = rules if isinstance(rules, str) else json.dumps(rules)
    return data | fields


# -- the list ----------------------------------------------------------------------------------


def test_an_empty_workspace_shows_the_empty_state_and_a_create_button(member_client, workspace):
    content = member_client.get(url(workspace)).content.decode()

    assert "<p>Audiences will appear here once you define one with rules" in content
    assert f'href="{url(workspace, "new/")}">Create an audience</a>' in content


def test_the_list_shows_size_trend_last_run_schedule_and_real_time(
    viewer_client, workspace, people
):
    mexico = make(workspace, name="Mexico", rules=MX, schedule="hourly", is_realtime=True)
    recalculate(workspace, mexico)
    with workspace_scope(workspace.id):
        Event.objects.filter(customer=people["ana"]).update(name="other")
        people["carla"].country = "AR"
        people["carla"].save()
    recalculate(workspace, mexico)
    make(workspace, name="VIP list", kind="list")

    response = viewer_client.get(url(workspace))

    content = response.content.decode()
    rows = response.context["rows"]
    assert [row["audience"].name for row in rows] == ["Mexico", "VIP list"]
    assert f'<a class="strong" href="{url(workspace, f"{mexico.id}/")}">Mexico</a>' in content
    assert '<td class="cell-number strong">2</td>' in content
    assert '<polyline class="sparkline-line" points="3.0,3.0 117.0,25.0"/>' in content
    assert "<title>Size after the last 2 runs: 2 to 3</title>" in content
    minus = "\N{MINUS SIGN}"
    assert f'<span class="delta-in">+0</span> <span class="delta-out">{minus}1</span>' in content
    assert "<td>Hourly</td>" in content
    assert '<span class="badge badge-success">Real time</span>' in content
    assert '<span class="badge badge-purple">Uploaded list</span>' in content
    assert "Changes by hand" in content
    assert "New audience" not in content  # viewers create nothing


def test_the_list_costs_a_fixed_number_of_queries(
    viewer_client, workspace, people, django_assert_num_queries
):
    for name in ["A", "B", "C"]:
        recalculate(workspace, make(workspace, name=name, rules=MX))
    # session, user, workspace, membership, audiences, their size history, the switcher
    with django_assert_num_queries(7):
        viewer_client.get(url(workspace))


def test_the_list_of_another_workspace_is_a_404(outsider_client, workspace):
    make(workspace, name="Mexico", rules=MX)

    assert outsider_client.get(url(workspace)).status_code == 404


# -- creating ----------------------------------------------------------------------------------


def test_the_editor_offers_what_the_workspace_has_seen(member_client, workspace, people):
    with workspace_scope(workspace.id):
        people["ana"].tags = {"vip": True}
        people["ana"].traits = {"plan": "pro", "address": {"zip": "01000"}}
        people["ana"].save()
    make(workspace, name="Mexico", rules=MX)

    response = member_client.get(url(workspace, "new/"))

    assert response.status_code == 200
    options = json.loads(response.context["builder_options"])
    fields = {group["group"]: group["options"] for group in options["fields"]}
    assert fields["Tags"] == [
        {"value": "tags.vip", "label": "Tag vip", "type": "json", "json_type": "boolean"}
    ]
    assert [option["value"] for option in fields["Traits"]] == [
        "traits.address", "traits.address.zip", "traits.plan",
    ]  # fmt: skip
    assert fields["Metrics"][0] == {
        "value": "metrics.purchase_count", "label": "Purchases (lifetime)", "type": "number",
    }  # fmt: skip
    assert options["events"] == ["purchase"]
    assert options["audiences"] == [{"id": stored(workspace)[0]["id"], "name": "Mexico"}]
    assert options["operators"]["date"][-4:] == [
        "anniversary_this_month", "anniversary_today", "exists", "not_exists",
    ]  # fmt: skip
    assert options["event_properties_url"] == url(workspace, "event-properties/")
    content = response.content.decode()
    assert f'data-options="{escape(response.context["builder_options"])}"' in content
    assert '<script src="/static/masivo/rule-builder.js" defer></script>' in content
    assert '<textarea name="rules"' in content


def test_creating_a_rules_audience_stores_it_and_queues_its_first_calculation(
    member_client, workspace, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = member_client.post(
            url(workspace, "new/"), form(schedule="weekly", is_realtime="on", description="Hi")
        )

    [audience] = stored(workspace)
    assert response.status_code == 302
    assert response["Location"] == url(workspace, f"{audience['id']}/")
    assert audience == {
        "id": audience["id"], "workspace": workspace.id, "name": "Engaged", "description": "Hi",
        "kind": "rules", "rules": NESTED, "schedule": "weekly", "is_realtime": True,
        "version": 1, "event_names": ["purchase"], "profile_fields": ["country"],
        "depends_on": [], "is_time_based": True, "size": 0, "last_run_at": None,
        "dependencies": DEPENDENCIES,
        "last_run_entered": 0, "last_run_exited": 0, "last_run_duration_ms": None,
    }  # fmt: skip
    assert runs(workspace) == [("Engaged", "created", "queued")]
    assert len(callbacks) == 1


def test_an_uploaded_list_needs_no_rules_and_is_never_recalculated(member_client, workspace):
    response = member_client.post(
        url(workspace, "new/"), form(name="VIP", kind="list", rules="", schedule="hourly")
    )

    [audience] = stored(workspace)
    assert response.status_code == 302
    assert (audience["kind"], audience["rules"], audience["schedule"]) == ("list", None, "never")
    assert runs(workspace) == []


def test_invalid_rules_are_listed_by_path_and_nothing_is_saved(member_client, workspace):
    rules = {"version": 1, "root": {"all": [
        {"profile": {"field": "metrics.purchase_count", "op": "gte", "value": "two"}},
        {"event": {"name": "purchase", "count": {"op": "gte", "value": -1}}},
    ]}}  # fmt: skip

    response = member_client.post(url(workspace, "new/"), form(rules=rules))

    assert response.status_code == 400
    assert response.context["rule_errors"] == [
        ("$.root.all[0].profile.value", "must be a number"),
        ("$.root.all[1].event.count.value", "must be a whole number ≥ 0"),
    ]
    content = response.content.decode()
    assert (
        '<li data-error-path="$.root.all[0].profile.value"><code>$.root.all[0].profile.value'
        "</code> <span>must be a number</span></li>"
    ) in content
    assert "The rules have 2 problems:" in content
    assert escape(json.dumps(rules)) in content  # the JSON is kept to fix it
    assert stored(workspace) == []
    assert runs(workspace) == []


@pytest.mark.parametrize(
    ("rules", "error"),
    [
        ('{"version": 1, "root": ', "This is not valid JSON: Expecting value (line 1, column 23)."),
        ("", "A rules audience needs rules: add a condition."),
    ],
)
def test_rules_that_are_not_json_are_refused(member_client, workspace, rules, error):
    response = member_client.post(url(workspace, "new/"), form(rules=rules))

    assert response.status_code == 400
    assert f'<p class="field-error">{error}</p>' in response.content.decode()
    assert stored(workspace) == []


def test_a_reference_to_a_missing_audience_is_refused(member_client, workspace):
    rules = {"version": 1, "root": {"audience": {"id": 999999}}}

    response = member_client.post(url(workspace, "new/"), form(rules=rules))

    assert response.status_code == 400
    assert response.context["rule_errors"] == [("$.root", "audience 999999 does not exist")]
    assert stored(workspace) == []


def test_a_taken_name_is_a_conflict_on_the_name_field(member_client, workspace):
    make(workspace, name="Engaged", rules=MX)
    before = stored(workspace)

    response = member_client.post(url(workspace, "new/"), form(name="Engaged"))

    assert response.status_code == 409
    assert '<p class="field-error">An audience with this name exists</p>' in (
        response.content.decode()
    )
    assert stored(workspace) == before


def test_a_viewer_cannot_open_the_editor_or_create(viewer_client, workspace):
    assert viewer_client.get(url(workspace, "new/")).status_code == 403
    assert viewer_client.post(url(workspace, "new/"), form()).status_code == 403
    assert stored(workspace) == []
    assert runs(workspace) == []


def test_an_outsider_creates_nothing(outsider_client, workspace):
    assert outsider_client.post(url(workspace, "new/"), form()).status_code == 404
    assert stored(workspace) == []


# -- editing -----------------------------------------------------------------------------------


def test_the_edit_page_holds_the_saved_rules(member_client, workspace):
    audience = make(workspace, name="Mexico", rules=MX, description="Where")

    response = member_client.get(url(workspace, f"{audience.id}/edit/"))

    assert response.status_code == 200
    form_ = response.context["form"]
    assert json.loads(form_["rules"].value()) == MX
    assert (form_["name"].value(), form_["description"].value()) == ("Mexico", "Where")
    assert "kind" not in form_.fields  # a kind is for good
    content = response.content.decode()
    assert 'hx-trigger="load, rules-change delay:400ms from:#id_rules' in content
    assert response.context["builder_options"].count('"name": "Mexico"') == 0  # not itself


def test_changing_the_name_keeps_the_version_and_queues_nothing(
    member_client, workspace, django_capture_on_commit_callbacks
):
    audience = make(workspace, name="Mexico", rules=MX)
    before = stored(workspace)[0]

    with django_capture_on_commit_callbacks() as callbacks:
        response = member_client.post(
            url(workspace, f"{audience.id}/edit/"), form(name="México", rules=MX)
        )

    assert response.status_code == 302
    assert stored(workspace) == [before | {"name": "México"}]
    assert runs(workspace) == [("México", "created", "queued")]  # only the first calculation
    assert callbacks == []


def test_changing_the_rules_makes_a_new_version_and_queues_a_recalculation(
    member_client, workspace, django_capture_on_commit_callbacks
):
    audience = make(workspace, name="Mexico", rules=MX)
    before = stored(workspace)[0]

    with django_capture_on_commit_callbacks() as callbacks:
        member_client.post(url(workspace, f"{audience.id}/edit/"), form(name="Mexico"))

    assert stored(workspace) == [
        before | {"rules": NESTED, "version": 2, "event_names": ["purchase"],
                  "is_time_based": True, "dependencies": DEPENDENCIES}
    ]  # fmt: skip
    assert runs(workspace) == [
        ("Mexico", "created", "queued"),
        ("Mexico", "rules changed", "queued"),
    ]
    assert len(callbacks) == 1


def test_changing_only_the_schedule_moves_the_next_run(member_client, workspace):
    audience = make(workspace, name="Mexico", rules=MX, schedule="daily")
    recalculate(workspace, audience)
    with workspace_scope(workspace.id):
        daily = Audience.objects.get(id=audience.id).next_run_at

    member_client.post(
        url(workspace, f"{audience.id}/edit/"), form(name="Mexico", rules=MX, schedule="hourly")
    )

    with workspace_scope(workspace.id):
        hourly = Audience.objects.get(id=audience.id)
    assert hourly.schedule == "hourly"
    assert hourly.next_run_at < daily - timedelta(hours=20)


def test_invalid_rules_on_edit_change_nothing(member_client, workspace):
    audience = make(workspace, name="Mexico", rules=MX)
    before = stored(workspace)
    bad = {"version": 1, "root": {"profile": {"field": "country", "op": "gt", "value": "MX"}}}

    response = member_client.post(url(workspace, f"{audience.id}/edit/"), form(rules=bad))

    assert response.status_code == 400
    assert response.context["rule_errors"][0][0] == "$.root.profile.op"
    assert stored(workspace) == before
    assert runs(workspace) == [("Mexico", "created", "queued")]


def test_a_viewer_cannot_edit(viewer_client, workspace):
    audience = make(workspace, name="Mexico", rules=MX)
    before = stored(workspace)

    assert viewer_client.get(url(workspace, f"{audience.id}/edit/")).status_code == 403
    response = viewer_client.post(url(workspace, f"{audience.id}/edit/"), form(name="Mine"))

    assert response.status_code == 403
    assert stored(workspace) == before


def test_another_workspaces_audience_is_a_404_everywhere(member_client, workspace, other_workspace):
    theirs = make(other_workspace, name="Theirs", rules=MX)
    before = stored(other_workspace)

    for path in ["", "edit/", "delete/", "explain/1/", "why/?customer=1"]:
        assert member_client.get(url(workspace, f"{theirs.id}/{path}")).status_code == 404
    for path in ["edit/", "delete/", "recalculate/", "members/"]:
        assert member_client.post(url(workspace, f"{theirs.id}/{path}"), form()).status_code == 404
    assert stored(other_workspace) == before
    assert runs(other_workspace) == [("Theirs", "created", "queued")]


# -- the live estimate and the property picker --------------------------------------------------


def test_the_estimate_counts_and_samples_unsaved_rules(viewer_client, workspace, people):
    response = viewer_client.post(url(workspace, "preview/"), {"rules": json.dumps(NESTED)})

    assert response.status_code == 200
    assert response.context["preview"]["count"] == 2
    content = response.content.decode()
    assert '<div class="estimate-count" data-estimate-count="2">2</div>' in content
    assert "customers match right now" in content
    sample = [customer["external_id"] for customer in response.context["preview"]["sample"]]
    assert sample == ["beto", "ana"]
    assert f'<a href="/w/{workspace.id}/customers/{people["beto"].id}/">Beto Paz</a>' in content
    assert "<html" not in content


def test_the_estimate_lists_problems_by_path(member_client, workspace):
    bad = {"version": 1, "root": {"any": [{"profile": {"field": "shoe_size", "op": "eq"}}]}}

    response = member_client.post(url(workspace, "preview/"), {"rules": json.dumps(bad)})

    assert response.status_code == 200
    assert response.context["rule_errors"] == [
        (
            "$.root.any[0].profile.field",
            "unknown field; use a profile field, metrics.<name>, tags.<key> or traits.<path>",
        )
    ]
    assert '<li data-error-path="$.root.any[0].profile.field">' in response.content.decode()


def test_the_estimate_explains_json_that_does_not_parse(member_client, workspace):
    response = member_client.post(url(workspace, "preview/"), {"rules": "{"})

    assert response.context["problem"] == (
        "This is not valid JSON: Expecting property name enclosed in double quotes "
        "(line 1, column 2)."
    )


@pytest.mark.parametrize("rules", ["", "  \n"])
def test_the_estimate_of_no_complete_condition_asks_for_one(member_client, workspace, rules):
    """The builder leaves incomplete conditions out, so the rules can be empty."""
    response = member_client.post(url(workspace, "preview/"), {"rules": rules})

    assert response.status_code == 200
    assert response.context["problem"] == "Complete a condition to see how many customers match."
    assert "preview" not in response.context


def test_the_estimate_only_counts_this_workspace(member_client, workspace, other_workspace):
    with workspace_scope(other_workspace.id):
        CustomerFactory(workspace=other_workspace, country="MX")

    response = member_client.post(url(workspace, "preview/"), {"rules": json.dumps(MX)})

    assert response.context["preview"] == {"count": 0, "sample": []}


def test_the_estimate_of_another_workspace_is_a_404(outsider_client, workspace):
    response = outsider_client.post(url(workspace, "preview/"), {"rules": json.dumps(MX)})

    assert response.status_code == 404


def test_the_property_picker_answers_json(viewer_client, workspace, people):
    response = viewer_client.get(url(workspace, "event-properties/"), {"name": "purchase"})
    empty = viewer_client.get(url(workspace, "event-properties/"))

    assert response.json() == {"properties": [{"path": "revenue", "type": "number"}]}
    assert empty.json() == {"properties": []}


# -- the detail page ---------------------------------------------------------------------------


def test_the_detail_page_reads_the_rules_and_shows_runs_members_and_changes(
    viewer_client, workspace, people
):
    audience = make(workspace, name="Engaged", rules=NESTED)
    recalculate(workspace, audience)
    recalculate(workspace, audience)

    response = viewer_client.get(url(workspace, f"{audience.id}/"))

    assert response.status_code == 200
    content = response.content.decode()
    summary = response.context["summary"]
    assert (summary.text, [child.text for child in summary.children]) == (
        "All of these",
        ["Country is “MX”", "Any of these"],
    )
    assert [line.text for line in summary.children[1].children] == [
        "Performed “purchase” at least 2 times in the last 30 days",
        "Email marketing consent allows contact",
    ]
    assert escape(json.dumps(NESTED, indent=2, ensure_ascii=False)) in content  # as written
    assert '<dd class="stat-value" data-audience-size>2</dd>' in content
    assert [(run.status, run.size, run.entered) for run, _ in response.context["runs"]] == [
        ("succeeded", 2, 0),
        ("succeeded", 2, 2),
    ]
    assert [m.customer.external_id for m in response.context["members"]] == ["beto", "ana"]
    assert f'href="/w/{workspace.id}/customers/{people["ana"].id}/">Ana López</a>' in content
    changes = [
        (change.kind, customer.external_id) for change, customer in response.context["change_rows"]
    ]
    assert sorted(changes) == [("enter", "ana"), ("enter", "beto")]  # one run: any order
    assert 'class="sparkline"' in content
    assert "Recalculate now" not in content  # a viewer
    assert 'data-status="succeeded"' in content
    assert "hx-trigger" not in content.split('id="recalculation-status"')[1].split(">")[0]


def test_members_page_by_cursor(viewer_client, workspace, people, monkeypatch):
    monkeypatch.setattr(audience_views, "MEMBERS_PAGE_SIZE", 2)
    audience = make(workspace, name="Mexico", rules=MX)
    recalculate(workspace, audience)

    first = viewer_client.get(url(workspace, f"{audience.id}/"))
    second = viewer_client.get(
        url(workspace, f"{audience.id}/"), {"after": first.context["members_next"]}
    )

    external = [m.customer.external_id for m in first.context["members"]]
    assert external == ["carla", "beto"]
    assert f'href="?after={people["beto"].id}#members"' in first.content.decode()
    assert [m.customer.external_id for m in second.context["members"]] == ["ana"]
    assert second.context["members_next"] is None
    assert "Back to the first page" in second.content.decode()
    malformed = viewer_client.get(url(workspace, f"{audience.id}/"), {"after": "x"})
    assert malformed.status_code == 400


def test_the_detail_page_query_count_is_fixed(
    viewer_client, workspace, people, django_assert_num_queries
):
    audience = make(workspace, name="Engaged", rules=NESTED)
    recalculate(workspace, audience)
    # session, user, workspace, membership, audience, runs, changes, their customers,
    # members (with customers), size history, the switcher (no references: no names to read)
    with django_assert_num_queries(11):
        viewer_client.get(url(workspace, f"{audience.id}/"))


# -- recalculation -----------------------------------------------------------------------------


def test_recalculate_now_queues_a_run_and_the_panel_polls_until_it_finishes(
    member_client, workspace, people, django_capture_on_commit_callbacks
):
    audience = make(workspace, name="Mexico", rules=MX)

    with django_capture_on_commit_callbacks() as callbacks:
        response = member_client.post(url(workspace, f"{audience.id}/recalculate/"), **HTMX)

    with workspace_scope(workspace.id):
        run = Recalculation.objects.get(reason="requested")
    assert (run.status, run.version) == ("queued", 1)
    assert len(callbacks) == 1
    progress = url(workspace, f"{audience.id}/recalculations/{run.id}/")
    content = response.content.decode()
    assert content.startswith('<div id="recalculation-status" class="recalc-status" '
                              'data-status="queued"')  # fmt: skip
    assert f'hx-get="{progress}" hx-trigger="every 1s" hx-swap="outerHTML"' in content
    assert "<html" not in content

    polled = member_client.get(progress, **HTMX)
    assert 'data-status="queued"' in polled.content.decode()
    assert "HX-Refresh" not in polled

    with workspace_scope(workspace.id):
        recalculation_run(recalculation=run)
    finished = member_client.get(progress, **HTMX)
    assert finished["HX-Refresh"] == "true"
    assert "3 members, 3 entered, 0 exited" in finished.content.decode()
    assert "hx-get" not in finished.content.decode()


def test_recalculate_without_htmx_redirects_to_the_panel(member_client, workspace):
    audience = make(workspace, name="Mexico", rules=MX)

    response = member_client.post(url(workspace, f"{audience.id}/recalculate/"))

    assert response.status_code == 302
    assert response["Location"] == url(workspace, f"{audience.id}/#recalculation")
    assert runs(workspace) == [("Mexico", "created", "queued"), ("Mexico", "requested", "queued")]


def test_a_list_is_never_recalculated(member_client, workspace):
    audience = make(workspace, name="VIP", kind="list")

    response = member_client.post(url(workspace, f"{audience.id}/recalculate/"))

    assert response.status_code == 302
    assert runs(workspace) == []


def test_a_viewer_cannot_recalculate(viewer_client, workspace):
    audience = make(workspace, name="Mexico", rules=MX)

    response = viewer_client.post(url(workspace, f"{audience.id}/recalculate/"))

    assert response.status_code == 403
    assert runs(workspace) == [("Mexico", "created", "queued")]


def test_another_audiences_run_is_a_404(viewer_client, workspace):
    first = make(workspace, name="Mexico", rules=MX)
    second = make(workspace, name="Other", rules=MX)
    run = recalculate(workspace, first)

    response = viewer_client.get(url(workspace, f"{second.id}/recalculations/{run.id}/"))

    assert response.status_code == 404


# -- uploaded lists ----------------------------------------------------------------------------


def list_changes(workspace) -> list[tuple]:
    with workspace_scope(workspace.id):
        return list(
            MembershipChange.objects.order_by("id").values_list(
                "kind", "customer_id", "source", "reason"
            )
        )


def test_marketers_add_and_remove_list_members_by_id(member_client, workspace, people):
    audience = make(workspace, name="VIP", kind="list")
    ana, beto = people["ana"].id, people["beto"].id

    added = member_client.post(
        url(workspace, f"{audience.id}/members/"),
        {"customer_ids": f"{ana}, {beto}\n{ana}", "action": "add"},
    )
    again = member_client.post(
        url(workspace, f"{audience.id}/members/"), {"customer_ids": str(ana), "action": "add"}
    )
    removed = member_client.post(
        url(workspace, f"{audience.id}/members/"), {"customer_ids": str(beto), "action": "remove"}
    )

    assert added.status_code == again.status_code == removed.status_code == 302
    assert added["Location"] == url(workspace, f"{audience.id}/#members")
    assert members(workspace, audience) == {"ana"}
    assert list_changes(workspace) == [
        ("enter", ana, "list", "added"), ("enter", beto, "list", "added"),
        ("exit", beto, "list", "removed"),
    ]  # fmt: skip
    assert stored(workspace)[0]["size"] == 1
    page = member_client.get(added["Location"]).content.decode()
    assert "Added 2 customers." in page
    assert "Added 0 customers (1 already in the list)." in page
    assert "Removed 1 customer." in page


@pytest.mark.parametrize(
    ("customer_ids", "error"),
    [
        ("12, abc", "“abc” is not a customer id (a whole number)."),
        ("2000000000", "No customer 2000000000 in this workspace"),
        (" , ", "Give at least one customer id."),
    ],
)
def test_bad_ids_are_refused_and_change_nothing(member_client, workspace, customer_ids, error):
    audience = make(workspace, name="VIP", kind="list")

    response = member_client.post(
        url(workspace, f"{audience.id}/members/"), {"customer_ids": customer_ids, "action": "add"}
    )

    assert response.status_code == 400
    assert escape(error) in response.content.decode()
    assert members(workspace, audience) == set()
    assert list_changes(workspace) == []


def test_another_workspaces_customer_cannot_be_added(member_client, workspace, other_workspace):
    audience = make(workspace, name="VIP", kind="list")
    with workspace_scope(other_workspace.id):
        theirs = CustomerFactory(workspace=other_workspace)

    response = member_client.post(
        url(workspace, f"{audience.id}/members/"), {"customer_ids": str(theirs.id), "action": "add"}
    )

    assert response.status_code == 400
    assert list_changes(workspace) == []


def test_rules_audiences_take_no_members_by_hand(member_client, workspace, people):
    audience = make(workspace, name="Mexico", rules=MX)

    response = member_client.post(
        url(workspace, f"{audience.id}/members/"),
        {"customer_ids": str(people["ana"].id), "action": "add"},
    )

    assert response.status_code == 409
    assert members(workspace, audience) == set()


def test_the_list_page_shows_the_member_form_to_marketers_only(
    member_client, viewer_client, workspace, people
):
    audience = make(workspace, name="VIP", kind="list")
    form_tag = f'<form method="post" action="{url(workspace, f"{audience.id}/members/")}"'

    assert form_tag in member_client.get(url(workspace, f"{audience.id}/")).content.decode()
    viewer_page = viewer_client.get(url(workspace, f"{audience.id}/")).content.decode()
    assert form_tag not in viewer_page
    response = viewer_client.post(
        url(workspace, f"{audience.id}/members/"),
        {"customer_ids": str(people["ana"].id), "action": "add"},
    )
    assert response.status_code == 403
    assert members(workspace, audience) == set()


# -- delete ------------------------------------------------------------------------------------


def test_delete_asks_then_deletes(member_client, workspace, people):
    audience = make(workspace, name="Mexico", rules=MX)
    recalculate(workspace, audience)

    confirm = member_client.get(url(workspace, f"{audience.id}/delete/"))
    response = member_client.post(url(workspace, f"{audience.id}/delete/"))

    assert "<h1>Delete “Mexico”?</h1>" in confirm.content.decode()
    assert response.status_code == 302
    assert response["Location"] == url(workspace)
    assert stored(workspace) == []
    assert runs(workspace) == []
    assert "Deleted the audience “Mexico”." in member_client.get(url(workspace)).content.decode()


def test_a_referenced_audience_is_not_deleted(member_client, workspace):
    base = make(workspace, name="Mexico", rules=MX)
    make(workspace, name="Not Mexico", rules={
        "version": 1, "root": {"audience": {"id": base.id, "in": False}}})  # fmt: skip
    before = stored(workspace)

    response = member_client.post(url(workspace, f"{base.id}/delete/"))

    assert response.status_code == 409
    assert (
        '<div class="alert alert-error" role="alert">Used by Not Mexico; change those rules '
        in (response.content.decode())
    )
    assert stored(workspace) == before


def test_a_viewer_cannot_delete(viewer_client, workspace):
    audience = make(workspace, name="Mexico", rules=MX)
    before = stored(workspace)

    assert viewer_client.get(url(workspace, f"{audience.id}/delete/")).status_code == 403
    assert viewer_client.post(url(workspace, f"{audience.id}/delete/")).status_code == 403
    assert stored(workspace) == before


def test_an_outsider_cannot_delete(outsider_client, workspace):
    audience = make(workspace, name="Mexico", rules=MX)
    before = stored(workspace)

    assert outsider_client.post(url(workspace, f"{audience.id}/delete/")).status_code == 404
    assert stored(workspace) == before


# -- explanations ------------------------------------------------------------------------------


def test_the_explanation_checks_each_condition_against_the_customer(
    viewer_client, workspace, people
):
    audience = make(workspace, name="Engaged", rules=NESTED)
    recalculate(workspace, audience)

    response = viewer_client.get(url(workspace, f"{audience.id}/explain/{people['beto'].id}/"))

    assert response.status_code == 200
    tree = response.context["tree"]
    lines = [tree, *tree.children, *tree.children[1].children]
    assert [(line.text, line.result, line.actual) for line in lines] == [
        ("All of these", True, ""),
        ("Country is “MX”", True, "Their value: “MX”"),
        ("Any of these", True, ""),
        ("Performed “purchase” at least 2 times in the last 30 days", False,
         "Never performed (with these filters)"),
        ("Email marketing consent allows contact", True, "Consent granted: may contact"),
    ]  # fmt: skip
    content = response.content.decode()
    assert '<span class="rule-mark rule-mark-false" role="img" aria-label="false">✗</span>' in (
        content
    )
    assert '<span class="badge badge-success">✓ Matches</span>' in content


def test_the_explanation_says_when_rules_and_membership_differ(viewer_client, workspace, people):
    audience = make(workspace, name="Engaged", rules=NESTED)  # never recalculated

    response = viewer_client.get(url(workspace, f"{audience.id}/explain/{people['ana'].id}/"))

    explained = response.context["explained"]
    assert (explained["matches"], explained["is_member"]) == (True, False)
    assert "The rules and the membership differ" in response.content.decode()
    event_line = response.context["tree"].children[1].children[0]
    assert (event_line.result, event_line.actual) == (True, "Performed 2 times")


def test_a_list_explanation_says_it_is_a_list(viewer_client, workspace, people):
    audience = make(workspace, name="VIP", kind="list")

    response = viewer_client.get(url(workspace, f"{audience.id}/explain/{people['ana'].id}/"))

    assert response.context.get("tree") is None
    assert "is an uploaded list: customers are in it because they were added" in (
        response.content.decode()
    )


@pytest.mark.parametrize("typed", ["id", "ana@example.com", "ANA@example.com ", "ana"])
def test_why_finds_the_customer_by_id_email_or_external_id(viewer_client, workspace, people, typed):
    audience = make(workspace, name="Mexico", rules=MX)
    ana = people["ana"]

    response = viewer_client.get(
        url(workspace, f"{audience.id}/why/"), {"customer": str(ana.id) if typed == "id" else typed}
    )

    assert response.status_code == 302
    assert response["Location"] == url(workspace, f"{audience.id}/explain/{ana.id}/")


def test_why_an_unknown_customer_says_so(viewer_client, workspace, other_workspace):
    audience = make(workspace, name="Mexico", rules=MX)
    with workspace_scope(other_workspace.id):
        theirs = CustomerFactory(workspace=other_workspace, email="theirs@example.com")

    for typed in ["nobody@example.com", str(theirs.id), "theirs@example.com"]:
        response = viewer_client.get(url(workspace, f"{audience.id}/why/"), {"customer": typed})
        assert response.status_code == 404
        assert '<p class="field-error">No customer with this id, email or external id.</p>' in (
            response.content.decode()
        )


def test_another_workspaces_customer_has_no_explanation(viewer_client, workspace, other_workspace):
    audience = make(workspace, name="Mexico", rules=MX)
    with workspace_scope(other_workspace.id):
        theirs = CustomerFactory(workspace=other_workspace)

    response = viewer_client.get(url(workspace, f"{audience.id}/explain/{theirs.id}/"))

    assert response.status_code == 404


# -- the customer profile ----------------------------------------------------------------------


def test_the_profile_lists_the_customers_audiences_with_an_explain_link(
    viewer_client, workspace, people
):
    mexico = make(workspace, name="Mexico", rules=MX)
    recalculate(workspace, mexico)
    vip = make(workspace, name="VIP", kind="list")
    with workspace_scope(workspace.id):
        Membership.objects.create(
            workspace=workspace, audience=vip, customer=people["ana"], source="list",
            since=datetime(2026, 11, 1, 9, tzinfo=UTC),
        )  # fmt: skip
    ana = people["ana"]

    content = viewer_client.get(f"/w/{workspace.id}/customers/{ana.id}/").content.decode()

    assert [row["audience__name"] for row in
            viewer_client.get(f"/w/{workspace.id}/customers/{ana.id}/").context[
                "customer_audiences"]] == ["Mexico", "VIP"]  # fmt: skip
    for audience in (mexico, vip):
        assert (
            f'<a class="btn btn-sm btn-ghost" href="{url(workspace, f"{audience.id}/explain/")}'
            f'{ana.id}/">Explain</a>'
        ) in content
    assert "<td>Uploaded list</td>" in content
    assert "<td>Recalculation</td>" in content
    assert (
        "Not in any audience."
        in viewer_client.get(f"/w/{workspace.id}/customers/{people['dario'].id}/").content.decode()
    )


# -- the content security policy ---------------------------------------------------------------


def test_audience_pages_keep_the_strict_content_security_policy(member_client, workspace, people):
    audience = make(workspace, name="Engaged", rules=NESTED)
    recalculate(workspace, audience)
    pages = [
        "", "new/", f"{audience.id}/", f"{audience.id}/edit/", f"{audience.id}/delete/",
        f"{audience.id}/explain/{people['ana'].id}/",
    ]  # fmt: skip
    for path in pages:
        content = member_client.get(url(workspace, path)).content.decode()
        assert "<script>" not in content
        assert " style=" not in content
        assert " on" + "click=" not in content
