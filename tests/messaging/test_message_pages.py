"""The message log and Settings, Contact policy and Suppressions in the dashboard."""

import datetime

import pytest

from masivo.tenancy.context import workspace_scope
from messaging import outbox
from messaging.models import ContactPolicy, Message, Suppression
from tests.dashboard.conftest import client_for
from tests.factories import CustomerFactory
from tests.messaging.test_policy_support import AT, make_template, suppress

pytestmark = pytest.mark.django_db


def base(workspace):
    return f"/w/{workspace.id}"


@pytest.fixture
def messages(workspace):
    with workspace_scope(workspace.id):
        template = make_template(workspace, name="Welcome")
        ana = CustomerFactory(workspace=workspace, first_name="Ana", last_name="López",
                              consent={"email_marketing": {"status": "granted"}})  # fmt: skip
        bob = CustomerFactory(workspace=workspace, first_name="Bob", last_name="Ruiz", consent={})
        return [
            outbox.message_enqueue(
                customer=customer, channel="email", kind="marketing", dedupe_key=f"k{index}",
                origin={"source": "test"}, template=template,
                at=AT + datetime.timedelta(minutes=index),
            ).message
            for index, customer in enumerate([ana, bob])
        ]  # fmt: skip


def test_the_log_shows_each_decision_and_filters(member, workspace, messages):
    client = client_for(member)
    bob_message = messages[1]

    everything = client.get(f"{base(workspace)}/messages/log/").content.decode()
    only_bob = client.get(
        f"{base(workspace)}/messages/log/?customer={bob_message.customer_id}"
    ).content.decode()
    suppressed = client.get(f"{base(workspace)}/messages/log/?status=suppressed").content.decode()

    assert "Ana López" in everything and "Bob Ruiz" in everything
    assert everything.index("Bob Ruiz") < everything.index("Ana López")  # newest first
    assert "suppressed: no consent" in everything
    assert "Ana López" not in only_bob and "Bob Ruiz" in only_bob
    assert "Ana López" not in suppressed and "Bob Ruiz" in suppressed


def test_a_bad_filter_shows_no_rows(member, workspace, messages):
    response = client_for(member).get(f"{base(workspace)}/messages/log/?customer=ana")

    assert response.status_code == 200
    assert "Fix the filters above" in response.content.decode()


def test_a_message_shows_its_decision_and_history(member, workspace, messages):
    bob_message = messages[1]

    response = client_for(member).get(f"{base(workspace)}/messages/log/{bob_message.id}/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "suppressed: no consent" in content
    assert "Status history" in content and "Welcome (version 1)" in content


def test_another_workspaces_message_is_a_404(member, workspace, other_workspace):
    with workspace_scope(other_workspace.id):
        customer = CustomerFactory(workspace=other_workspace)
        foreign = Message.objects.create(
            workspace=other_workspace, customer=customer, channel="email", kind="marketing",
            dedupe_key="x",
        )  # fmt: skip
        suppression = suppress(other_workspace, "email", "x@example.com", "manual")
    client = client_for(member)
    workspace_id = workspace.id

    assert client.get(f"/w/{workspace_id}/messages/log/{foreign.id}/").status_code == 404
    removed = client.post(f"/w/{workspace_id}/settings/suppressions/{suppression.id}/remove/")
    assert removed.status_code == 404
    with workspace_scope(other_workspace.id):
        assert Suppression.objects.count() == 1


def test_an_admin_sets_caps_and_quiet_hours(owner, workspace):
    response = client_for(owner).post(
        f"{base(workspace)}/settings/contact-policy/",
        {"frequency_caps": "email 3 24\n* 5 168\n", "quiet_hours_enabled": "on",
         "quiet_hours_start": "22:00", "quiet_hours_end": "07:30", "quiet_hours_action": "skip",
         "quiet_hours_channels": ["push", "sms"]},
    )  # fmt: skip

    assert response.status_code == 302
    with workspace_scope(workspace.id):
        policy = ContactPolicy.objects.get()
    assert policy.frequency_caps == [
        {"channel": "email", "limit": 3, "window_hours": 24},
        {"channel": "*", "limit": 5, "window_hours": 168},
    ]
    assert (policy.quiet_hours_enabled, policy.quiet_hours_start, policy.quiet_hours_end,
            policy.quiet_hours_action, policy.quiet_hours_channels) == (
        True, datetime.time(22), datetime.time(7, 30), "skip", ["push", "sms"],
    )  # fmt: skip
    page = client_for(owner).get(f"{base(workspace)}/settings/contact-policy/").content.decode()
    assert "email 3 24\n* 5 168" in page


@pytest.mark.parametrize(
    ("caps", "error"),
    [
        ("email three 24", "Line 1: write the channel, how many and per how many hours"),
        ("fax 1 1", "One of email, push, whatsapp, sms, in_app or * (every channel)"),
        ("email 1 9000", "Must be between 1 and 8,760"),
    ],
)
def test_a_bad_cap_is_shown_and_nothing_saved(owner, workspace, caps, error):
    response = client_for(owner).post(
        f"{base(workspace)}/settings/contact-policy/",
        {"frequency_caps": caps, "quiet_hours_start": "21:00", "quiet_hours_end": "08:00",
         "quiet_hours_action": "defer"},
    )  # fmt: skip

    assert response.status_code == 400
    assert error in response.content.decode()
    with workspace_scope(workspace.id):
        assert ContactPolicy.objects.get().frequency_caps == []


def test_a_marketer_cannot_change_the_contact_policy(member, workspace):
    response = client_for(member).post(
        f"{base(workspace)}/settings/contact-policy/", {"quiet_hours_enabled": "on"}
    )

    assert response.status_code == 403
    with workspace_scope(workspace.id):
        assert not ContactPolicy.objects.filter(quiet_hours_enabled=True).exists()


def test_suppress_and_remove_an_address(member, workspace):
    client = client_for(member)

    page = f"{base(workspace)}/settings/suppressions/"
    added = client.post(
        page, {"channel": "email", "address": "Ana@Example.com", "reason": "manual"}
    )
    duplicate = client.post(
        page, {"channel": "email", "address": "ana@example.com", "reason": "spam_report"}
    )
    listing = client.get(f"{base(workspace)}/settings/suppressions/").content.decode()

    assert added.status_code == 302
    assert duplicate.status_code == 409
    assert "ana@example.com is already suppressed (Added by hand)" in duplicate.content.decode()
    assert "ana@example.com" in listing
    with workspace_scope(workspace.id):
        row = Suppression.objects.get()

    removed = client.post(f"{base(workspace)}/settings/suppressions/{row.id}/remove/")

    assert removed.status_code == 302
    with workspace_scope(workspace.id):
        assert Suppression.objects.count() == 0


def test_a_viewer_cannot_change_the_suppression_list(viewer, workspace):
    response = client_for(viewer).post(
        f"{base(workspace)}/settings/suppressions/", {"channel": "email", "address": "a@b.co"}
    )

    assert response.status_code == 403
    with workspace_scope(workspace.id):
        assert Suppression.objects.count() == 0
