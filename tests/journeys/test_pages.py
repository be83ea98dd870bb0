"""Journey pages in the dashboard: the list, a new journey, the builder (the flow drawn from the
trigger, adding, configuring and removing steps, errors on their step, the entry and goal),
publishing with a note, the status actions, an old version read-only, the customer's panel,
roles and foreign ids."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from journeys import services
from journeys.models import Enrollment, Journey, JourneyVersion, StepRun
from journeys.views import flow
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from tests.dashboard.conftest import client_for
from tests.factories import CustomerFactory
from tests.messaging.test_policy_support import make_template

pytestmark = pytest.mark.django_db
MARKETER = Actor(role=Role.MARKETER)


@pytest.fixture
def templates(workspace):
    with workspace_scope(workspace.id):
        return {
            "email": make_template(workspace, "email", name="Come back"),
            "push": make_template(workspace, "push", name="Still there?"),
            "other_email": make_template(workspace, "email", name="Last call"),
        }


def cart_graph(templates) -> dict:
    return {
        "trigger": {"type": "event", "event": "Product Added", "entry_key": "cart.id"},
        "reentry": {"mode": "always"},
        "goal": {"event": "Order Completed", "within_days": 7},
        "start": "wait_order",
        "steps": {
            "wait_order": {
                "type": "wait_event",
                "event": "Order Completed",
                "match_entry_key": True,
                "timeout": {"hours": 1},
                "next": "done",
                "timeout_next": "email",
            },
            "email": {
                "type": "send",
                "channel": "email",
                "template_id": templates["email"].id,
                "next": "a_day",
            },
            "a_day": {"type": "delay", "duration": {"days": 1}, "next": "push"},
            "push": {
                "type": "send",
                "channel": "push",
                "template_id": templates["push"].id,
                "next": "done",
            },
            "done": {"type": "exit"},
        },
    }


def make_journey(workspace, graph, *, name="Cart abandonment", publish=False) -> Journey:
    with workspace_scope(workspace.id):
        journey = services.journey_create(
            workspace=workspace, name=name, graph=graph, actor=MARKETER
        )
        if publish:
            services.journey_publish(
                journey=journey, actor=Actor(role=Role.MARKETER, user_id=1), note="first"
            )
        journey = reloaded(workspace, journey)
    return journey


def set_status(workspace, journey, status) -> None:
    with workspace_scope(workspace.id):
        Journey.objects.filter(id=journey.id).update(status=status)


def reloaded(workspace, journey) -> Journey:
    with workspace_scope(workspace.id):
        return Journey.objects.get(id=journey.id)


def url(workspace, journey=None, rest="") -> str:
    base = f"/w/{workspace.id}/journeys/"
    return f"{base}{journey.id}/{rest}" if journey else f"{base}{rest}"


def draft_graph(workspace, journey) -> dict:
    with workspace_scope(workspace.id):
        return JourneyVersion.objects.get(journey=journey, published_at__isnull=True).graph


def cards(content: str) -> list[str]:
    """The step cards' ids, in the order drawn."""
    return re.findall(r'<article class="step-card[^"]*" id="step-([a-z0-9_]+)"', content)


def card(content: str, step_id: str) -> str:
    start = content.index(f'id="step-{step_id}"')
    return content[start : content.index("</article>", start)]


def test_the_list_shows_status_version_customers_and_conversion(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates), publish=True)
    make_journey(workspace, cart_graph(templates), name="Welcome")
    with workspace_scope(workspace.id):
        for state in ("waiting", "converted", "completed", "converted"):
            customer = CustomerFactory(workspace=workspace)
            Enrollment.objects.create(
                workspace=workspace,
                journey=journey,
                version=journey.live_version,
                customer_id=customer.id,
                state=state,
                current_step="wait_order",
            )

    content = client_for(member).get(url(workspace)).content.decode()

    rows = re.findall(r'<tr data-journey="(\d+)">(.*?)</tr>', content, re.S)
    assert sorted(int(journey_id) for journey_id, _ in rows) == [journey.id, journey.id + 1]
    cart, welcome = dict(rows)[str(journey.id)], dict(rows)[str(journey.id + 1)]
    assert ">Cart abandonment</a>" in cart and 'data-status="active"' in cart
    assert "<td>v1</td>" in cart
    assert dict(re.findall(r'data-count="([a-z]+)">([^<]+)<', cart)) == {
        "active": "1",
        "total": "4",
        "conversion": "50%",
    }
    assert 'data-status="draft"' in welcome and "Not published" in welcome
    assert f'href="{url(workspace, rest="new/")}">New journey</a>' in content


def test_the_list_runs_the_same_queries_for_one_journey_or_many(member, workspace, templates):
    client = client_for(member)
    make_journey(workspace, cart_graph(templates), publish=True)
    client.get(url(workspace))
    with CaptureQueriesContext(connection) as one:
        client.get(url(workspace))
    for name in ("Welcome", "Winback"):
        make_journey(workspace, cart_graph(templates), name=name, publish=True)
    with CaptureQueriesContext(connection) as three:
        content = client.get(url(workspace)).content.decode()

    assert content.count("<tr data-journey=") == 3
    assert len(three.captured_queries) == len(one.captured_queries)


def test_an_empty_list_says_what_journeys_are_and_a_viewer_cannot_create(viewer, workspace):
    content = client_for(viewer).get(url(workspace)).content.decode()

    assert "<h2>No journeys yet</h2>" in content
    assert "Journeys will appear here once you build one" in content
    assert "New journey" not in content
    assert f'class="nav-link is-active" href="{url(workspace)}"' in content


def test_a_new_journey_is_a_draft_with_an_end_step(member, workspace):
    client = client_for(member)

    refused = client.post(url(workspace, rest="new/"), {"name": ""})
    made = client.post(
        url(workspace, rest="new/"), {"name": "Welcome", "trigger_event": "Signed Up"}
    )

    assert refused.status_code == 400
    assert "This field is required." in refused.content.decode()
    with workspace_scope(workspace.id):
        journey = Journey.objects.get()
    assert made.status_code == 302
    assert made["Location"] == url(workspace, journey)
    assert (journey.name, journey.status, journey.created_by) == (
        "Welcome",
        "draft",
        f"user:{member.user.id}",
    )
    assert draft_graph(workspace, journey) == {
        "trigger": {"type": "event", "event": "Signed Up"},
        "reentry": {"mode": "once"},
        "start": "end",
        "steps": {"end": {"type": "exit", "label": "End"}},
    }


def test_the_builder_draws_the_flow_from_the_trigger(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates))

    content = client_for(member).get(url(workspace, journey)).content.decode()

    assert cards(content) == ["wait_order", "email", "a_day", "push", "done"]
    assert "When Product Added happens" in content
    assert re.search(r'<dd id="goal">Order Completed within 7 days</dd>', content)
    columns = re.findall(
        r'data-path="wait_order:([a-z_]+)">\s*<p class="flow-column-label">'
        r"([^<]+)</p>",
        content,
    )
    assert columns == [("next", "Order Completed came"), ("timeout_next", "Timed out")]
    # The exit both paths reach is drawn once, below the columns.
    assert content.rindex('class="flow-column"') < content.index('id="step-done"')
    assert content.count('id="step-done"') == 1
    assert "Email: Come back" in card(content, "email")
    assert "Wait for Order Completed, at most 1 hour" in card(content, "wait_order")
    assert "Wait 1 day" in card(content, "a_day")
    assert 'class="step-errors"' not in content
    assert "Publish version 1" in content
    assert "data-stat=" not in content  # no counts before it runs


def test_adding_a_step_on_a_path_relinks_it_and_shows_what_it_still_needs(
    member, workspace, templates
):
    journey = make_journey(workspace, cart_graph(templates))
    client = client_for(member)

    added = client.post(
        url(workspace, journey, "steps/"),
        {"source": "wait_order", "edge": "timeout_next", "choice": "send:sms"},
    )
    content = client.get(url(workspace, journey)).content.decode()

    assert added.status_code == 302
    assert added["Location"] == url(workspace, journey) + "#step-sms"
    graph = draft_graph(workspace, journey)
    assert graph["steps"]["wait_order"]["timeout_next"] == "sms"
    assert graph["steps"]["sms"] == {"type": "send", "channel": "sms", "next": "email"}
    assert cards(content) == ["wait_order", "sms", "email", "a_day", "push", "done"]
    assert re.findall(
        r"<li>(.*?)</li>", card(content, "sms").split('class="step-errors"')[1].split("</ul>")[0]
    ) == ["&#x27;template_id&#x27; is a required property"]
    assert "Publishing would refuse" not in content


def test_configuring_a_step_saves_its_fields(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates))
    client = client_for(member)

    saved = client.post(
        url(workspace, journey, "steps/email/"),
        {
            "email-label": "First reminder",
            "email-channel": "email",
            "email-template_id": templates["other_email"].id,
            "email-kind": "marketing",
            "email-quiet_hours": "skip",
        },
    )
    waited = client.post(
        url(workspace, journey, "steps/wait_order/"),
        {
            "wait_order-event": "Order Completed",
            "wait_order-timeout_amount": "2",
            "wait_order-timeout_unit": "hours",
            "wait_order-where": '[{"property": "total", "op": "gt", "value": 10}]',
        },
    )

    assert (saved.status_code, waited.status_code) == (302, 302)
    steps = draft_graph(workspace, journey)["steps"]
    assert steps["email"] == {
        "type": "send",
        "channel": "email",
        "label": "First reminder",
        "template_id": templates["other_email"].id,
        "next": "a_day",
        "kind": "marketing",
        "quiet_hours": "skip",
    }
    assert steps["wait_order"] == {
        "type": "wait_event",
        "event": "Order Completed",
        "timeout": {"hours": 2},
        "where": [{"property": "total", "op": "gt", "value": 10}],
        "next": "done",
        "timeout_next": "email",
    }


def test_a_graph_error_shows_on_its_step(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates))
    client = client_for(member)

    client.post(
        url(workspace, journey, "steps/wait_order/"),
        {
            "wait_order-event": "Order Completed",
            "wait_order-timeout_amount": "1",
            "wait_order-timeout_unit": "hours",
            "wait_order-where": '[{"property": "total", "op": "between", "value": 10}]',
        },
    )
    content = client.get(url(workspace, journey)).content.decode()

    errors = re.findall(r'<ul class="step-errors" id="step-([a-z_]+)-errors">(.*?)</ul>', content)
    assert [step for step, _ in errors] == ["wait_order"]
    assert errors[0][1] == (
        "<li><code>where[0].value</code>: must be a list of two values [low, high]</li>"
    )


def test_a_form_error_reopens_the_step_with_the_message(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates))

    response = client_for(member).post(
        url(workspace, journey, "steps/email/"),
        {
            "email-channel": "email",
            "email-template_id": templates["push"].id,
            "email-kind": "marketing",
            "email-quiet_hours": "defer",
        },
    )

    assert response.status_code == 400
    email = card(response.content.decode(), "email")
    assert '<details class="step-config" open>' in email
    assert "Select a valid choice." in email
    assert draft_graph(workspace, journey) == cart_graph(templates)


def test_the_template_picker_offers_the_channels_templates(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates))

    content = (
        client_for(member)
        .get(url(workspace, journey, "steps/email/templates/"), {"email-channel": "push"})
        .content.decode()
    )

    assert re.findall(r'<option value="(\d*)"', content) == ["", str(templates["push"].id)]
    assert 'id="id_email-template_id"' in content


def test_removing_a_step_relinks_what_led_to_it(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates))
    client = client_for(member)

    removed = client.post(url(workspace, journey, "steps/a_day/remove/"))
    refused = client.post(url(workspace, journey, "steps/done/remove/"))

    assert removed.status_code == refused.status_code == 302
    steps = draft_graph(workspace, journey)["steps"]
    assert sorted(steps) == ["done", "email", "push", "wait_order"]
    assert steps["email"]["next"] == "push"
    content = client.get(url(workspace, journey)).content.decode()
    assert "The last step of a path cannot be removed" in content


def test_a_branch_and_a_split_draw_their_columns(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates))
    client = client_for(member)

    client.post(
        url(workspace, journey, "steps/"), {"source": "email", "edge": "next", "choice": "split"}
    )
    client.post(url(workspace, journey, "steps/split/paths/"), {"action": "add"})
    client.post(
        url(workspace, journey, "steps/split/"),
        {
            "split-path_0_name": "A",
            "split-path_0_percent": "40",
            "split-path_1_name": "B",
            "split-path_1_percent": "40",
            "split-path_2_name": "C",
            "split-path_2_percent": "20",
        },
    )
    content = client.get(url(workspace, journey)).content.decode()

    assert draft_graph(workspace, journey)["steps"]["split"]["paths"] == [
        {"name": "A", "percent": 40, "next": "a_day"},
        {"name": "B", "percent": 40, "next": "a_day"},
        {"name": "C", "percent": 20, "next": "a_day"},
    ]
    assert re.findall(r'data-path="split:([a-z0-9_.]+)"', content) == [
        "paths.0.next",
        "paths.1.next",
        "paths.2.next",
    ]
    assert cards(content) == ["wait_order", "email", "split", "a_day", "push", "done"]


def test_the_trigger_and_goal_are_edited_in_place(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates))

    client_for(member).post(
        url(workspace, journey, "entry/"),
        {
            "entry-trigger_type": "event",
            "entry-trigger_event": "Product Added",
            "entry-trigger_where": '[{"property": "cart.value", "op": "gt", "value": 50}]',
            "entry-entry_key": "cart.id",
            "entry-reentry": "after_days",
            "entry-reentry_days": "3",
            "entry-holdout_percent": "10",
            "entry-goal_event": "Order Completed",
            "entry-goal_within_days": "2",
        },
    )

    graph = draft_graph(workspace, journey)
    assert {key: graph[key] for key in ("trigger", "reentry", "holdout_percent", "goal")} == {
        "trigger": {
            "type": "event",
            "event": "Product Added",
            "entry_key": "cart.id",
            "where": [{"property": "cart.value", "op": "gt", "value": 50}],
        },
        "reentry": {"mode": "after_days", "days": 3},
        "holdout_percent": 10,
        "goal": {"event": "Order Completed", "within_days": 2},
    }


def test_publishing_with_a_note_then_the_history_and_an_old_version(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates))
    client = client_for(member)

    published = client.post(
        url(workspace, journey, "publish/"), {"journey-publish-note": "First cut"}
    )
    client.post(url(workspace, journey, "steps/a_day/remove/"))
    content = client.get(url(workspace, journey)).content.decode()

    assert published.status_code == 302
    journey = reloaded(workspace, journey)
    assert journey.status == "active"
    with workspace_scope(workspace.id):
        first = JourneyVersion.objects.get(number=1)
    assert (first.note, first.published_by) == ("First cut", f"user:{member.user.id}")
    assert "Unpublished changes" in content
    versions = re.findall(r'<tr data-version="(\d)"[^>]*>(.*?)</tr>', content, re.S)
    assert [number for number, _ in versions] == ["2", "1"]
    assert "First cut" in versions[1][1] and member.user.email in versions[1][1]
    assert cards(content) == ["wait_order", "email", "push", "done"]

    old = client.get(url(workspace, journey, "versions/1/")).content.decode()
    assert cards(old) == ["wait_order", "email", "a_day", "push", "done"]
    assert "read-only" in old
    assert "step-config" not in old and "add-step" not in old
    assert 'data-stat="entered">0<' in old


def test_publishing_refuses_an_invalid_graph(member, workspace, templates):
    graph = cart_graph(templates)
    graph["steps"]["push"]["template_id"] = templates["email"].id
    journey = make_journey(workspace, graph)
    client = client_for(member)

    client.post(url(workspace, journey, "publish/"), {"journey-publish-note": "x"})
    content = client.get(url(workspace, journey)).content.decode()

    journey = reloaded(workspace, journey)
    assert journey.status == "draft"
    assert "Not published: a email template, not push." in content
    assert "a email template, not push" in card(content, "push")


def test_counts_show_on_each_step_once_it_runs(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates), publish=True)
    with workspace_scope(workspace.id):
        customer = CustomerFactory(workspace=workspace)
        enrollment = Enrollment.objects.create(
            workspace=workspace,
            journey=journey,
            version=journey.live_version,
            customer_id=customer.id,
            state="waiting",
            current_step="a_day",
        )
        now = timezone.now()
        for step, outcome in (("wait_order", "timed_out"), ("email", "sent")):
            StepRun.objects.create(
                workspace=workspace,
                enrollment=enrollment,
                journey_id=journey.id,
                step=step,
                visit=1,
                outcome=outcome,
                finished_at=now,
            )
        StepRun.objects.create(
            workspace=workspace,
            enrollment=enrollment,
            journey_id=journey.id,
            step="a_day",
            visit=1,
            outcome="waiting",
        )

    content = client_for(member).get(url(workspace, journey)).content.decode()

    def stats(step_id):
        return dict(re.findall(r'data-stat="([a-z_]+)">(\d+)<', card(content, step_id)))

    assert stats("email") == {
        "entered": "1",
        "sent": "1",
        "delivered": "0",
        "opened": "0",
        "clicked": "0",
    }
    assert stats("a_day") == {"entered": "1", "waiting_now": "1"}
    assert stats("done") == {"entered": "0", "exited": "0"}
    assert 'data-stat="active">1<' in content


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        ("pause", "active", "paused"),
        ("resume", "paused", "active"),
        ("archive", "active", "archived"),
    ],
)
def test_status_actions(member, workspace, templates, action, before, after):
    journey = make_journey(workspace, cart_graph(templates), publish=True)
    set_status(workspace, journey, before)

    response = client_for(member).post(url(workspace, journey, f"{action}/"))

    assert response.status_code == 302
    journey = reloaded(workspace, journey)
    assert journey.status == after


def test_an_archived_journey_is_read_only(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates), publish=True)
    set_status(workspace, journey, "archived")
    client = client_for(member)

    content = client.get(url(workspace, journey)).content.decode()
    client.post(url(workspace, journey, "steps/a_day/remove/"))

    assert "step-config" not in content and 'id="publish"' not in content
    with workspace_scope(workspace.id):
        assert JourneyVersion.objects.filter(journey=journey).count() == 1


def test_the_customer_page_shows_their_journeys_and_steps(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates), publish=True)
    with workspace_scope(workspace.id):
        customer = CustomerFactory(workspace=workspace)
        entered = timezone.now() - timedelta(hours=2)
        enrollment = Enrollment.objects.create(
            workspace=workspace,
            journey=journey,
            version=journey.live_version,
            customer_id=customer.id,
            state="waiting",
            current_step="a_day",
            entry_key="c-1",
            entered_at=entered,
        )
        StepRun.objects.create(
            workspace=workspace,
            enrollment=enrollment,
            journey_id=journey.id,
            step="wait_order",
            visit=1,
            outcome="timed_out",
            next_step="email",
            started_at=entered,
        )

    content = client_for(member).get(f"/w/{workspace.id}/customers/{customer.id}/").content.decode()

    panel = content[content.index('id="customer-journeys"') :]
    assert f'href="{url(workspace, journey)}">Cart abandonment</a>' in panel
    assert 'data-state="waiting"' in panel and "<code>a_day</code>" in panel
    assert re.search(
        r'<li data-step="wait_order"><code>wait_order</code> · '
        r'<span data-outcome="timed_out">timed_out</span> → <code>email</code>',
        panel,
    )


def test_a_viewer_reads_but_cannot_edit(viewer, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates))
    client = client_for(viewer)

    content = client.get(url(workspace, journey)).content.decode()
    refused = client.post(url(workspace, journey, "steps/a_day/remove/"))

    assert cards(content) == ["wait_order", "email", "a_day", "push", "done"]
    assert "step-config" not in content and "add-step" not in content
    assert refused.status_code == 403
    assert draft_graph(workspace, journey) == cart_graph(templates)


@pytest.mark.parametrize("rest", ["", "versions/1/", "steps/email/templates/"])
def test_another_workspaces_journey_is_not_found(
    outsider, workspace, other_workspace, templates, rest
):
    journey = make_journey(workspace, cart_graph(templates), publish=True)
    client = client_for(outsider)

    assert client.get(f"/w/{other_workspace.id}/journeys/{journey.id}/{rest}").status_code == 404
    assert (
        client.post(
            f"/w/{other_workspace.id}/journeys/{journey.id}/steps/a_day/remove/"
        ).status_code
        == 404
    )
    assert client.get(f"/w/{workspace.id}/journeys/{journey.id}/").status_code == 404


BRANCHY = {
    "trigger": {"type": "api"},
    "start": "vip",
    "steps": {
        "vip": {"type": "branch", "else": "end",
                "conditions": [{"label": "Gold", "rules": {}, "next": "tag"}]},
        "tag": {"type": "update_profile", "set_tags": {"vip": True}, "next": "again"},
        "again": {"type": "delay", "duration": {"days": 1}, "next": "vip"},
        "end": {"type": "exit"},
    },
}  # fmt: skip


def test_a_loop_is_drawn_as_a_link_and_the_else_path_comes_last():
    nodes = flow.flow(BRANCHY)

    assert [node.id for node in nodes] == ["vip", "end"]
    columns = nodes[0].columns
    assert [(c.label, c.name) for c in columns] == [("Gold", "conditions.0.next"),
                                                    ("Otherwise", "else")]  # fmt: skip
    assert [(n.id, n.step is None) for n in columns[0].nodes] == [
        ("tag", False), ("again", False), ("vip", True)]  # fmt: skip
    assert columns[1].nodes == []  # straight on to the end, drawn below the columns


def test_removing_a_branch_keeps_its_else_path_and_drops_the_steps_only_it_reached():
    graph = flow.step_remove(BRANCHY, "vip")

    assert (graph["start"], sorted(graph["steps"])) == ("end", ["end"])
    assert flow.step_remove(BRANCHY, "again")["steps"]["tag"]["next"] == "vip"
    with pytest.raises(flow.FlowEditError, match="at least 1 condition"):
        flow.paths_change(BRANCHY, "vip", action="remove", index="0")
    added = flow.paths_change(BRANCHY, "vip", action="add", index="")
    assert added["steps"]["vip"]["conditions"][1] == {"label": "Condition 2", "rules": {},
                                                      "next": "end"}  # fmt: skip


def test_a_webhook_step_is_added_and_pointed_at_an_endpoint(member, workspace, templates):
    from destinations.models import Destination

    with workspace_scope(workspace.id):
        endpoint = Destination.objects.create(
            workspace=workspace, kind="webhook", name="CRM hook", key="crm",
            config={"url": "https://hooks.example.com/x", "topics": []},
            credentials={"secrets": ["whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ="]},
        )  # fmt: skip
    journey = make_journey(workspace, cart_graph(templates))
    client = client_for(member)

    client.post(url(workspace, journey, "steps/"),
                {"source": "push", "edge": "next", "choice": "webhook"})  # fmt: skip
    form = client.get(url(workspace, journey)).content.decode()
    saved = client.post(url(workspace, journey, "steps/webhook/"),
                        {"webhook-destination_id": str(endpoint.id)})  # fmt: skip

    assert f'<option value="{endpoint.id}">CRM hook</option>' in form
    assert saved.status_code == 302
    steps = draft_graph(workspace, journey)["steps"]
    assert steps["push"]["next"] == "webhook"
    assert steps["webhook"] == {"type": "webhook", "destination_id": endpoint.id, "next": "done"}
