"""The builder's entry section beyond the trigger: who may enter (an audience, anonymous
customers, entry conditions in the rule language) and the exit rules (listed, added, removed),
shown on the trigger's card; the draft's revision every form carries, so an edit made from a
page someone else's change has outdated is refused (409 with what was typed, or a message after
a button) and changes nothing; roles and foreign ids."""

import re

import pytest

from journeys import services
from journeys.models import Journey, JourneyVersion
from masivo.tenancy.context import workspace_scope
from tests.dashboard.conftest import client_for
from tests.factories import AudienceFactory
from tests.journeys.test_pages import MARKETER, cart_graph, make_journey, url
from tests.messaging.test_policy_support import make_template

pytestmark = pytest.mark.django_db

STALE_FLASH = (
    "Someone else changed this draft since this page was loaded, so your change was not saved. "
    "The page now shows the draft as it is: make your change again if it still applies."
)
OPEN_ENTRY = (
    '<details class="step-config" open>\n'
    "        <summary>Edit the trigger, who may enter, the goal and the exits</summary>"
)
FILTER = [{"property": "reason", "op": "eq", "value": "too many"}]
RULES = {"version": 1, "root": {"profile": {"field": "country", "op": "eq", "value": "MX"}}}


@pytest.fixture
def templates(workspace):
    with workspace_scope(workspace.id):
        return {"email": make_template(workspace, "email", name="Come back"),
                "push": make_template(workspace, "push", name="Still there?")}  # fmt: skip


@pytest.fixture
def audiences(workspace, other_workspace):
    with workspace_scope(workspace.id):
        vips, churned = AudienceFactory(workspace=workspace, name="VIPs"), AudienceFactory(
            workspace=workspace, name="Churned")  # fmt: skip
    with workspace_scope(other_workspace.id):
        foreign = AudienceFactory(workspace=other_workspace, name="Theirs")
    return {"vips": vips, "churned": churned, "foreign": foreign}


@pytest.fixture
def journey(workspace, templates):
    return make_journey(workspace, cart_graph(templates))


def draft(workspace, journey) -> JourneyVersion:
    with workspace_scope(workspace.id):
        return JourneyVersion.objects.get(journey=journey, published_at__isnull=True)


def entry_data(revision: str | None = None, **changes) -> dict:
    """The entry form as the page posts it for the cart journey, with `changes` (without the
    prefix) and the page's `revision`."""
    data = {
        "trigger_type": "event",
        "trigger_event": "Product Added",
        "entry_key": "cart.id",
        "reentry": "always",
        "holdout_percent": "0",
        "goal_event": "Order Completed",
        "goal_within_days": "7",
        "audience_id": "",
        "entry_rules": "",
    } | changes
    return {f"entry-{key}": value for key, value in data.items()} | _revision(revision)


def exit_data(revision: str | None = None, **fields) -> dict:
    return {f"exit-{key}": value for key, value in fields.items()} | _revision(revision)


def _revision(revision: str | None) -> dict:
    return {"revision": revision} if revision is not None else {}


def someone_else_edits(workspace, journey, **changes) -> dict:
    """Another editor saves the draft (through the service, as their page would)."""
    graph = draft(workspace, journey).graph | changes
    with workspace_scope(workspace.id):
        services.journey_update(journey=journey, actor=MARKETER, graph=graph)
    return graph


def revisions_on_page(content: str) -> set[str]:
    return set(re.findall(r'<input type="hidden" name="revision" value="([^"]*)">', content))


def text_of(content: str, element_id: str) -> str:
    """The words of the element (to its first closing dd or div), without the hidden ones."""
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(dd|div)>', content, re.S)
    words = re.sub(r'<span class="visually-hidden">.*?</span>', "", match.group(1))
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", words)).strip()


def forms_without_revision(content: str) -> list[str]:
    """The actions of the page's POST forms that do not carry the draft's revision."""
    forms = re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"[^>]*>(.*?)</form>',
                       content, re.S)  # fmt: skip
    return [action for action, body in forms if 'name="revision"' not in body]


def field_errors(content: str) -> list[str]:
    return re.findall(r'<p class="field-error">(.*?)</p>', content)


def test_who_may_enter_is_saved_and_summarised_on_the_trigger_card(
    member, workspace, journey, templates, audiences
):
    client = client_for(member)

    saved = client.post(url(workspace, journey, "entry/"), entry_data(
        audience_id=str(audiences["vips"].id), allow_anonymous="on",
        entry_rules='{"version": 1, "root": {"profile": {"field": "country", "op": "eq", '
                    '"value": "MX"}}}', revision="1"))  # fmt: skip
    content = client.get(url(workspace, journey)).content.decode()

    assert (saved.status_code, saved["Location"]) == (302, url(workspace, journey) + "#entry")
    version = draft(workspace, journey)
    assert version.revision == 2
    assert version.graph == cart_graph(templates) | {
        "audience_id": audiences["vips"].id, "allow_anonymous": True, "entry_rules": RULES,
        "holdout_percent": 0}  # fmt: skip
    assert text_of(content, "who-may-enter") == (
        "Members of VIPs, anonymous ones too, when the entry conditions hold"
    )
    assert "The entry and goal are saved." in content
    assert revisions_on_page(content) == {"2"}


def test_clearing_who_may_enter_removes_the_fields(member, workspace, templates, audiences):
    graph = cart_graph(templates) | {"audience_id": audiences["vips"].id,
                                     "allow_anonymous": True, "entry_rules": RULES}  # fmt: skip
    journey = make_journey(workspace, graph)
    client = client_for(member)
    page = client.get(url(workspace, journey)).content.decode()

    saved = client.post(url(workspace, journey, "entry/"), entry_data())
    content = client.get(url(workspace, journey)).content.decode()

    assert text_of(page, "who-may-enter") == (
        "Members of VIPs, anonymous ones too, when the entry conditions hold"
    )
    assert f'<option value="{audiences["vips"].id}" selected>VIPs</option>' in page
    assert 'name="entry-allow_anonymous" id="id_entry-allow_anonymous" checked' in page
    assert saved.status_code == 302
    assert draft(workspace, journey).graph == cart_graph(templates) | {"holdout_percent": 0}
    assert text_of(content, "who-may-enter") == "All customers, identified only"


@pytest.mark.parametrize(
    ("changes", "field", "errors"),
    [
        ({"entry_rules": '{"version": 1, "root": {"profile": {"field": "country", "op": "near", '
                         '"value": "MX"}}}'},
         "entry_rules", ["root.profile.op: for a text field, op is one of eq, neq, in, not_in, "
                         "contains, starts_with, ends_with, exists, not_exists, is_empty"]),
        ({"entry_rules": '{"root": {}}'}, "entry_rules",
         ["version: must be 1", "root: each node is an object with one key: all, any, not, "
                                "profile, event, audience, consent or device"]),
        ({"entry_rules": "[1, 2]"}, "entry_rules",
         ["Enter a JSON object, like {} or {&quot;name&quot;: ...}."]),
        ({"entry_rules": "{not json"}, "entry_rules", ["Enter a valid JSON."]),
        ({"audience_id": "999999999"}, "audience_id",
         ["Select a valid choice. 999999999 is not one of the available choices."]),
    ],
)  # fmt: skip
def test_a_wrong_entry_field_is_a_400_on_that_field(
    member, workspace, journey, templates, audiences, changes, field, errors
):
    response = client_for(member).post(url(workspace, journey, "entry/"), entry_data(**changes))

    content = response.content.decode()
    assert response.status_code == 400
    assert field_errors(content) == errors
    assert re.search(rf'<div class="field has-error">\s*<label class="field-label" '
                     rf'for="id_entry-{field}">', content)  # fmt: skip
    assert OPEN_ENTRY in content
    assert (draft(workspace, journey).revision, draft(workspace, journey).graph) == (
        1, cart_graph(templates))  # fmt: skip


def test_another_workspaces_audience_is_not_a_choice(member, workspace, journey, audiences):
    response = client_for(member).post(
        url(workspace, journey, "entry/"), entry_data(audience_id=str(audiences["foreign"].id))
    )

    assert response.status_code == 400
    assert ">Theirs</option>" not in response.content.decode()
    assert "audience_id" not in draft(workspace, journey).graph


def test_exits_are_added_listed_and_removed(member, workspace, journey, templates, audiences):
    client = client_for(member)

    added = [
        client.post(url(workspace, journey, "exits/"), exit_data(
            kind="event", event="Unsubscribed", where=str(FILTER).replace("'", '"'),
            revision="1")),
        client.post(url(workspace, journey, "exits/"), exit_data(
            kind="audience_exited", audience_id=str(audiences["vips"].id), revision="2")),
        client.post(url(workspace, journey, "exits/"), exit_data(
            kind="consent_withdrawn", purpose="email_marketing", revision="3")),
    ]  # fmt: skip
    content = client.get(url(workspace, journey)).content.decode()

    assert [(a.status_code, a["Location"]) for a in added] == [
        (302, url(workspace, journey) + "#exits")] * 3  # fmt: skip
    assert draft(workspace, journey).graph["exits"] == [
        {"type": "event", "event": "Unsubscribed", "where": FILTER},
        {"type": "audience_exited", "audience_id": audiences["vips"].id},
        {"type": "consent_withdrawn", "purpose": "email_marketing"},
    ]
    listed = re.findall(r'<li data-exit="(\d+)">([^<]*)<form class="inline-form" method="post" '
                        r'action="([^"]+)">', content)  # fmt: skip
    assert listed == [
        ("0", "When Unsubscribed happens (1 filter) ", url(workspace, journey, "exits/0/remove/")),
        ("1", "When they leave VIPs ", url(workspace, journey, "exits/1/remove/")),
        ("2", "When they withdraw consent to Email marketing ",
         url(workspace, journey, "exits/2/remove/")),
    ]  # fmt: skip
    assert '<span class="visually-hidden"> the exit “When they leave VIPs”</span>' in content

    removed = client.post(url(workspace, journey, "exits/1/remove/"), {"revision": "4"})
    assert (removed.status_code, removed["Location"]) == (302, url(workspace, journey) + "#exits")
    version = draft(workspace, journey)
    assert (version.revision, version.graph["exits"]) == (5, [
        {"type": "event", "event": "Unsubscribed", "where": FILTER},
        {"type": "consent_withdrawn", "purpose": "email_marketing"},
    ])  # fmt: skip


def test_removing_the_last_exit_drops_the_list(member, workspace, templates):
    graph = cart_graph(templates) | {"exits": [{"type": "event", "event": "Unsubscribed"}]}
    journey = make_journey(workspace, graph)
    client = client_for(member)

    client.post(url(workspace, journey, "exits/0/remove/"), {"revision": "1"})
    content = client.get(url(workspace, journey)).content.decode()

    assert draft(workspace, journey).graph == cart_graph(templates)
    assert text_of(content, "exits") == "Exits None: customers leave at an exit step or the goal"


def test_removing_an_exit_no_longer_there_says_so(member, workspace, journey, templates):
    response = client_for(member).post(
        url(workspace, journey, "exits/0/remove/"), {"revision": "1"}, follow=True
    )

    assert "That exit is no longer in the draft: nothing was removed." in response.content.decode()
    assert draft(workspace, journey).graph == cart_graph(templates)


@pytest.mark.parametrize(
    ("data", "field", "errors"),
    [
        ({"kind": "event", "event": " "}, "event", ["Name the event."]),
        ({"kind": "event", "event": "Unsubscribed",
          "where": '[{"property": "reason", "op": "between", "value": 1}]'},
         "where", ["where[0].value: must be a list of two values [low, high]"]),
        ({"kind": "event", "event": "Unsubscribed", "where": '{"a": 1}'},
         "where", ["Enter a JSON list, like [] or [{...}]."]),
        ({"kind": "audience_exited", "audience_id": ""}, "audience_id", ["Choose the audience."]),
        ({"kind": "consent_withdrawn", "purpose": ""}, "purpose", ["Choose the purpose."]),
        ({"kind": "consent_withdrawn", "purpose": "telepathy"}, "purpose",
         ["Select a valid choice. telepathy is not one of the available choices."]),
        ({"kind": "leave_forever"}, "kind",
         ["Select a valid choice. leave_forever is not one of the available choices."]),
    ],
)  # fmt: skip
def test_a_wrong_exit_is_a_400_on_its_field(
    member, workspace, journey, templates, data, field, errors
):
    response = client_for(member).post(url(workspace, journey, "exits/"), exit_data(**data))

    content = response.content.decode()
    assert response.status_code == 400
    assert field_errors(content) == errors
    assert re.search(rf'<div class="field has-error">\s*<label class="field-label" '
                     rf'for="id_exit-{field}">', content)  # fmt: skip
    assert OPEN_ENTRY in content
    assert (draft(workspace, journey).revision, draft(workspace, journey).graph) == (
        1, cart_graph(templates))  # fmt: skip


def test_a_journey_has_at_most_20_exits(member, workspace, templates):
    graph = cart_graph(templates) | {"exits": [{"type": "event", "event": f"E{n}"}
                                               for n in range(20)]}  # fmt: skip
    journey = make_journey(workspace, graph)

    response = client_for(member).post(
        url(workspace, journey, "exits/"), exit_data(kind="event", event="One more")
    )

    assert response.status_code == 400
    assert '<div class="alert alert-error" role="alert">A journey has at most 20 exits.</div>' in (
        response.content.decode())  # fmt: skip
    assert len(draft(workspace, journey).graph["exits"]) == 20


def test_the_page_carries_the_revision_and_a_fresh_one_saves(member, workspace, journey):
    client = client_for(member)
    someone_else_edits(workspace, journey, holdout_percent=5)

    page = client.get(url(workspace, journey)).content.decode()
    saved = client.post(url(workspace, journey, "steps/a_day/remove/"), {"revision": "2"})

    assert revisions_on_page(page) == {"2"}
    # Only signing out, the status actions and publishing do not edit the draft.
    assert forms_without_revision(page) == [
        "/logout/",
        url(workspace, journey, "archive/"),
    ]
    assert saved.status_code == 302
    version = draft(workspace, journey)
    assert (version.revision, sorted(version.graph["steps"]), version.graph["holdout_percent"]) == (
        3, ["done", "email", "push", "wait_order"], 5)  # fmt: skip


def test_a_stale_entry_form_is_a_409_that_keeps_what_was_typed(member, workspace, journey):
    client = client_for(member)
    theirs = someone_else_edits(workspace, journey, holdout_percent=5)

    response = client.post(url(workspace, journey, "entry/"),
                           entry_data(goal_event="Checkout Done", revision="1"))  # fmt: skip

    content = response.content.decode()
    assert response.status_code == 409
    assert text_of(content, "stale-draft") == (
        "Someone else changed this draft since this page was loaded, so your change was not "
        "saved. The page now shows the draft as it is, and what you typed is kept in its form: "
        "check it and save again, or reload the draft to start over.")  # fmt: skip
    assert 'name="entry-goal_event" value="Checkout Done"' in content
    assert revisions_on_page(content) == {"2"}
    assert (draft(workspace, journey).revision, draft(workspace, journey).graph) == (2, theirs)


def test_a_stale_exit_form_with_an_error_says_both(member, workspace, journey):
    client = client_for(member)
    theirs = someone_else_edits(workspace, journey, holdout_percent=5)

    response = client.post(url(workspace, journey, "exits/"),
                           exit_data(kind="event", event="", revision="1"))  # fmt: skip

    content = response.content.decode()
    assert response.status_code == 409
    assert 'id="stale-draft"' in content
    assert field_errors(content) == ["Name the event."]
    assert draft(workspace, journey).graph == theirs


@pytest.mark.parametrize(
    ("rest", "data"),
    [
        ("exits/", exit_data(kind="consent_withdrawn", purpose="sms_marketing")),
        ("steps/email/", {"email-channel": "email", "email-kind": "marketing",
                          "email-quiet_hours": "skip"}),
    ],
)  # fmt: skip
def test_a_stale_form_of_an_exit_or_a_step_changes_nothing(member, workspace, journey, rest, data):
    theirs = someone_else_edits(workspace, journey, holdout_percent=5)

    response = client_for(member).post(url(workspace, journey, rest), data | {"revision": "1"})

    assert response.status_code == 409
    assert 'id="stale-draft"' in response.content.decode()
    assert (draft(workspace, journey).revision, draft(workspace, journey).graph) == (2, theirs)


@pytest.mark.parametrize(
    ("rest", "data"),
    [
        ("steps/a_day/remove/", {}),
        ("steps/", {"source": "a_day", "edge": "next", "choice": "delay"}),
        ("exits/0/remove/", {}),
    ],
)
def test_a_stale_button_goes_back_with_the_message_and_changes_nothing(
    member, workspace, templates, rest, data
):
    journey = make_journey(workspace, cart_graph(templates) | {"exits": [
        {"type": "event", "event": "Unsubscribed"}]})  # fmt: skip
    theirs = someone_else_edits(workspace, journey, holdout_percent=5)

    response = client_for(member).post(
        url(workspace, journey, rest), data | {"revision": "1"}, follow=True
    )

    content = response.content.decode()
    assert response.redirect_chain[0][1] == 302
    assert f'<div class="alert alert-error">{STALE_FLASH}</div>' in content
    assert revisions_on_page(content) == {"2"}
    assert (draft(workspace, journey).revision, draft(workspace, journey).graph) == (2, theirs)


@pytest.mark.parametrize("revision", ["two", "-1", "1.0", "9" * 19])
def test_a_revision_that_is_not_a_number_is_a_400(member, workspace, journey, templates, revision):
    response = client_for(member).post(
        url(workspace, journey, "steps/a_day/remove/"), {"revision": revision}
    )

    assert response.status_code == 400
    assert draft(workspace, journey).graph == cart_graph(templates)


def test_a_published_journey_edits_from_the_live_revision(member, workspace, templates):
    journey = make_journey(workspace, cart_graph(templates), publish=True)
    client = client_for(member)
    page = client.get(url(workspace, journey)).content.decode()

    first = client.post(url(workspace, journey, "exits/"),
                        exit_data(kind="event", event="Unsubscribed", revision="1"))  # fmt: skip
    late = client.post(url(workspace, journey, "exits/"),
                       exit_data(kind="event", event="Complained", revision="1"))  # fmt: skip

    assert revisions_on_page(page) == {"1"}
    assert (first.status_code, late.status_code) == (302, 409)
    version = draft(workspace, journey)
    assert (version.number, version.revision, version.graph["exits"]) == (
        2, 2, [{"type": "event", "event": "Unsubscribed"}])  # fmt: skip


def test_the_trigger_card_of_an_old_version_lists_its_exits_without_buttons(
    member, workspace, templates
):
    graph = cart_graph(templates) | {"exits": [{"type": "consent_withdrawn",
                                                "purpose": "sms_marketing"}]}  # fmt: skip
    journey = make_journey(workspace, graph, publish=True)
    client = client_for(member)
    client.post(url(workspace, journey, "exits/0/remove/"))

    old = client.get(url(workspace, journey, "versions/1/")).content.decode()

    assert text_of(old, "exits") == "Exits When they withdraw consent to SMS marketing"
    assert text_of(old, "who-may-enter") == "All customers, identified only"
    assert 'name="revision"' not in old and "exit-form" not in old


def test_a_viewer_sees_who_may_enter_and_exits_but_cannot_change_them(viewer, workspace, templates):
    graph = cart_graph(templates) | {"exits": [{"type": "event", "event": "Unsubscribed"}]}
    journey = make_journey(workspace, graph)
    client = client_for(viewer)

    content = client.get(url(workspace, journey)).content.decode()
    refused = [
        client.post(url(workspace, journey, "exits/"), exit_data(kind="event", event="X")),
        client.post(url(workspace, journey, "exits/0/remove/")),
        client.post(url(workspace, journey, "entry/"), entry_data(allow_anonymous="on")),
    ]

    assert text_of(content, "exits") == "Exits When Unsubscribed happens"
    assert "exit-form" not in content and 'name="revision"' not in content
    assert [r.status_code for r in refused] == [403] * 3
    assert draft(workspace, journey).graph == graph


def test_another_workspaces_journey_exits_are_not_found(
    outsider, workspace, other_workspace, templates
):
    graph = cart_graph(templates) | {"exits": [{"type": "event", "event": "Unsubscribed"}]}
    journey = make_journey(workspace, graph)
    client = client_for(outsider)

    answers = [
        client.post(f"/w/{other_workspace.id}/journeys/{journey.id}/exits/",
                    exit_data(kind="event", event="X")),
        client.post(f"/w/{other_workspace.id}/journeys/{journey.id}/exits/0/remove/"),
        client.post(f"/w/{workspace.id}/journeys/{journey.id}/exits/0/remove/"),
    ]  # fmt: skip

    assert [a.status_code for a in answers] == [404] * 3
    assert draft(workspace, journey).graph == graph


def test_publishing_a_draft_changed_since_the_page_was_drawn_is_refused(member, workspace,
                                                                       templates):  # fmt: skip
    journey = make_journey(workspace, cart_graph(templates))
    someone_else_edits(workspace, journey, holdout_percent=5)

    response = client_for(member).post(
        url(workspace, journey, "publish/"), {"revision": "1", "journey-publish-note": "v1"},
        follow=True,
    )  # fmt: skip

    content = response.content.decode()
    assert response.redirect_chain[0][1] == 302
    assert (
        '<div class="alert alert-error">Not published: someone else changed this draft since '
        "this page was loaded. The page now shows the draft as it is: review it, then publish "
        "again.</div>"
    ) in content
    with workspace_scope(workspace.id):
        assert Journey.objects.get(id=journey.id).status == "draft"
