"""A customer's profile page shows their latest messages (messaging.views.customers, passed
in by the dashboard's shell so profiles never imports messaging)."""

import pytest

from masivo.tenancy.context import workspace_scope
from tests.dashboard.conftest import client_for
from tests.factories import CustomerFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_the_profile_lists_the_latest_messages_with_their_decisions(member, workspace):
    with workspace_scope(workspace.id):
        ana, bob = CustomerFactory(workspace=workspace), CustomerFactory(workspace=workspace)
        for number in range(11):
            MessageFactory(
                workspace=workspace,
                customer=ana,
                channel="email",
                status="suppressed" if number == 10 else "sent",
                decision="suppressed: no consent" if number == 10 else "sent",
            )
        MessageFactory(workspace=workspace, customer=bob, decision="for bob only")
    client = client_for(member)

    page = client.get(f"/w/{workspace.id}/customers/{ana.id}/").content.decode()
    empty = client.get(f"/w/{workspace.id}/customers/{bob.id}/?x=1").content.decode()

    assert 'id="messages"' in page
    assert page.count("badge-success") >= 9 and "suppressed: no consent" in page
    assert "for bob only" not in page
    assert f"/messages/log/?customer={ana.id}" in page and "All messages" in page
    assert "for bob only" in empty and "Open in the message log" in empty


def test_a_customer_without_messages_says_so(member, workspace):
    with workspace_scope(workspace.id):
        ana = CustomerFactory(workspace=workspace)
    page = client_for(member).get(f"/w/{workspace.id}/customers/{ana.id}/").content.decode()
    assert "No messages yet." in page
