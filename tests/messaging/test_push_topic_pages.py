"""Settings, Push topics in the dashboard: add a topic for an audience, see its state, remove
it; viewers only read; without FCM the page says to connect it."""

import pytest

from masivo.tenancy.context import workspace_scope
from messaging.models import AudienceTopic
from tests.dashboard.conftest import client_for
from tests.factories import AudienceFactory
from tests.messaging.helpers import connect

pytestmark = pytest.mark.django_db


def page(workspace, suffix=""):
    return f"/w/{workspace.id}/settings/push-topics/{suffix}"


def test_add_see_and_remove_a_topic(member, workspace, fcm_fake):
    connect(workspace, "fcm", {"service_account": fcm_fake.service_account("acme-push")})
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace, name="VIP")
    client = client_for(member)

    before = client.get(page(workspace)).content.decode()
    added = client.post(page(workspace), {"audience": audience.id})
    listed = client.get(page(workspace)).content.decode()
    with workspace_scope(workspace.id):
        topic = AudienceTopic.objects.get()
    removed = client.post(page(workspace, f"{topic.id}/remove/"))

    assert f'<option value="{audience.id}">VIP</option>' in before
    assert added.status_code == 302
    assert f"{workspace.id}_audience_{audience.id}" in listed and "Subscribing members" in listed
    assert removed.status_code == 302
    with workspace_scope(workspace.id):
        assert AudienceTopic.objects.get().status == "removing"


def test_a_bad_choice_is_shown_and_nothing_is_made(member, workspace, fcm_fake):
    connect(workspace, "fcm", {"service_account": fcm_fake.service_account("acme-push")})
    client = client_for(member)

    response = client.post(page(workspace), {"audience": ""})

    assert response.status_code == 400 and "Choose an audience." in response.content.decode()
    with workspace_scope(workspace.id):
        assert not AudienceTopic.objects.exists()


def test_without_fcm_the_page_says_to_connect_it(member, workspace):
    body = client_for(member).get(page(workspace)).content.decode()
    assert "Connect Firebase Cloud Messaging first" in body


def test_viewers_read_but_may_not_add(viewer, workspace, fcm_fake):
    connect(workspace, "fcm", {"service_account": fcm_fake.service_account("acme-push")})
    with workspace_scope(workspace.id):
        audience = AudienceFactory(workspace=workspace)
    client = client_for(viewer)

    assert client.get(page(workspace)).status_code == 200
    assert client.post(page(workspace), {"audience": audience.id}).status_code == 403
    with workspace_scope(workspace.id):
        assert not AudienceTopic.objects.exists()
