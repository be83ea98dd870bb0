"""Webhook pages in the dashboard: the list, the form (the secret shown once after creating,
SSRF refused on the URL field), an endpoint's page with its hint, topics and delivery log,
rotate, send test, replay, a delivery's page; roles and foreign ids."""

import pytest
from django.urls import include, path

from destinations import webhooks
from destinations.connectors.webhook import webhook_id_for
from destinations.models import Destination, WebhookDelivery
from masivo import urls as root_urls
from masivo.dashboard import urls as dashboard_urls
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from tests.dashboard.conftest import client_for
from tests.destinations.test_webhooks import event_item, forward
from tests.factories import MemberFactory
from tests.fakes.base import Answer
from tests.fakes.webhook_receiver import WebhookReceiver

# The pages under the dashboard's namespace, whether or not masivo/dashboard/urls.py includes
# them yet: this dashboard (with them) comes first, so `dashboard:` names resolve here.
_pages = [*dashboard_urls.workspace_pages, path("", include("destinations.views.webhook_urls"))]
_dashboard = [
    *[p for p in dashboard_urls.urlpatterns if getattr(p, "name", None) == "home"],
    path("w/<int:workspace_id>/", include(_pages)),
]
urlpatterns = [
    path("", include((_dashboard, "dashboard"), namespace="dashboard")),
    *[p for p in root_urls.urlpatterns if getattr(p, "app_name", None) != "dashboard"],
]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

ADMIN = Actor(role=Role.ADMIN, user_id=1)


@pytest.fixture(scope="module")
def receiver_server():
    fake = WebhookReceiver().start()
    yield fake
    fake.stop()


@pytest.fixture
def receiver(receiver_server):
    receiver_server.reset()
    return receiver_server


@pytest.fixture
def admin(workspace):
    return MemberFactory(organization=workspace.organization, role=Role.ADMIN)


def base(workspace):
    return f"/w/{workspace.id}/destinations/webhooks"


def make_endpoint(workspace, receiver):
    with workspace_scope(workspace.id):
        created = webhooks.webhook_endpoint_create(
            workspace=workspace, actor=ADMIN, name="Orders", url=f"{receiver.url}/hooks",
            topics=["event.tracked", "audience.entered"],
        )  # fmt: skip
    receiver.trust(created.secret)
    return created.destination, created.secret


FORM = {"name": "Orders", "topics": ["event.tracked", "message.opened"],
        "event_names": "Order Completed\n\nSigned Up", "description": "ERP"}  # fmt: skip


def test_creating_an_endpoint_shows_its_secret_once(admin, workspace, receiver):
    client = client_for(admin)

    page = client.get(f"{base(workspace)}/new/")
    answer = client.post(f"{base(workspace)}/new/", FORM | {"url": f"{receiver.url}/hooks"})
    with workspace_scope(workspace.id):
        endpoint = Destination.objects.get()
    again = client.get(f"{base(workspace)}/{endpoint.id}/")
    listing = client.get(f"{base(workspace)}/")

    secret = endpoint.credentials["secrets"][0]
    assert page.status_code == 200
    assert answer.status_code == 201
    assert secret in answer.content.decode()
    assert 'id="new-secret"' in answer.content.decode()
    assert endpoint.config == {
        "url": f"{receiver.url}/hooks", "topics": ["event.tracked", "message.opened"],
        "event_names": ["Order Completed", "Signed Up"], "description": "ERP",
    }  # fmt: skip
    assert again.status_code == 200
    assert secret not in again.content.decode()
    assert f"whsec_…{secret[-4:]}" in again.content.decode()
    assert "Orders" in listing.content.decode()
    assert secret not in listing.content.decode()


def test_an_unsafe_url_is_refused_on_the_form(admin, workspace, settings):
    settings.MASIVO_OUTBOUND_ALLOWLIST = []

    answer = client_for(admin).post(f"{base(workspace)}/new/",
                                    FORM | {"url": "http://169.254.169.254/latest/"})  # fmt: skip

    assert answer.status_code == 400
    assert "the cloud metadata address (link-local)" in answer.content.decode()
    with workspace_scope(workspace.id):
        assert not Destination.objects.exists()


def test_the_endpoint_page_shows_topics_and_the_delivery_log(admin, workspace, receiver):
    endpoint, _ = make_endpoint(workspace, receiver)
    forward(endpoint, [event_item(1), event_item(2)])
    receiver.script(Answer(500))
    webhooks.deliveries_send_due()

    page = client_for(admin).get(f"{base(workspace)}/{endpoint.id}/")
    failed_only = client_for(admin).get(f"{base(workspace)}/{endpoint.id}/?status=failed")

    html = page.content.decode()
    assert page.status_code == 200
    assert "event.tracked" in html and "audience.entered" in html
    assert webhook_id_for("event:1") in html and webhook_id_for("event:2") in html
    assert 'data-status="failed"' in html and 'data-status="pending"' in html
    assert ">500<" in html
    assert "Send test" in html and "Rotate secret" in html and "Replay" in html
    assert webhook_id_for("event:2") not in failed_only.content.decode()


def test_rotate_shows_the_new_secret_once(admin, workspace, receiver):
    endpoint, old = make_endpoint(workspace, receiver)

    answer = client_for(admin).post(f"{base(workspace)}/{endpoint.id}/rotate-secret/")

    with workspace_scope(workspace.id):
        new, previous = Destination.objects.get(id=endpoint.id).credentials["secrets"]
    assert answer.status_code == 200
    assert previous == old
    assert new in answer.content.decode()
    assert old not in answer.content.decode()
    assert "The previous secret also signs every delivery until" in answer.content.decode()


def test_send_test_and_replay(admin, workspace, receiver):
    endpoint, _ = make_endpoint(workspace, receiver)
    client = client_for(admin)

    tested = client.post(f"{base(workspace)}/{endpoint.id}/test/", follow=True)
    with workspace_scope(workspace.id):
        delivery = WebhookDelivery.objects.get()
    replayed = client.post(
        f"{base(workspace)}/{endpoint.id}/deliveries/{delivery.id}/replay/", follow=True
    )
    detail = client.get(f"{base(workspace)}/{endpoint.id}/deliveries/{delivery.id}/")

    assert "The endpoint answered 200." in tested.content.decode()
    assert f"{delivery.webhook_id} is queued again." in replayed.content.decode()
    with workspace_scope(workspace.id):
        assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.PENDING
    assert detail.status_code == 200
    assert "webhook.test" in detail.content.decode()
    assert [request.header("webhook-id") for request in receiver.requests] == [delivery.webhook_id]


def test_disable_enable_and_delete(admin, workspace, receiver):
    endpoint, _ = make_endpoint(workspace, receiver)
    client = client_for(admin)

    client.post(f"{base(workspace)}/{endpoint.id}/disable/")
    with workspace_scope(workspace.id):
        disabled = Destination.objects.get(id=endpoint.id).status
    client.post(f"{base(workspace)}/{endpoint.id}/enable/")
    with workspace_scope(workspace.id):
        enabled = Destination.objects.get(id=endpoint.id).status
    deleted = client.post(f"{base(workspace)}/{endpoint.id}/delete/")

    assert (disabled, enabled) == ("disabled", "active")
    assert deleted.status_code == 302
    with workspace_scope(workspace.id):
        assert not Destination.objects.exists()


def test_a_viewer_sees_the_pages_but_changes_nothing(workspace, receiver):
    endpoint, secret = make_endpoint(workspace, receiver)
    viewer = client_for(MemberFactory(organization=workspace.organization, role=Role.VIEWER))

    page = viewer.get(f"{base(workspace)}/{endpoint.id}/")
    answers = [
        viewer.post(f"{base(workspace)}/{endpoint.id}/rotate-secret/"),
        viewer.post(f"{base(workspace)}/{endpoint.id}/test/"),
        viewer.post(f"{base(workspace)}/{endpoint.id}/delete/"),
        viewer.post(f"{base(workspace)}/new/", FORM | {"url": f"{receiver.url}/x"}),
    ]

    assert page.status_code == 200
    assert "Rotate secret" not in page.content.decode()
    assert [answer.status_code for answer in answers] == [403] * 4
    with workspace_scope(workspace.id):
        assert Destination.objects.get().credentials["secrets"] == [secret]
        assert not WebhookDelivery.objects.exists()
    assert receiver.requests == []


def test_another_workspaces_endpoint_is_a_404(admin, workspace, other_workspace, receiver):
    foreign, _ = make_endpoint(other_workspace, receiver)
    client = client_for(admin)

    answers = [
        client.get(f"{base(workspace)}/{foreign.id}/"),
        client.post(f"{base(workspace)}/{foreign.id}/rotate-secret/"),
        client.post(f"{base(workspace)}/{foreign.id}/test/"),
        client.get(f"/w/{other_workspace.id}/destinations/webhooks/{foreign.id}/"),
    ]

    assert [answer.status_code for answer in answers] == [404] * 4
    assert receiver.requests == []
