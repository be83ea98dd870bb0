"""/api/v1/destinations/webhooks: create (the secret once), read (only a hint), change, delete,
rotate, test, the delivery log with filters, a delivery's attempts and replay; SSRF refused
at save naming `url`; roles; another workspace's endpoint is a 404."""

import pytest
from django.urls import include, path

from destinations import webhooks
from destinations.connectors.base import ForwardItem
from destinations.connectors.webhook import webhook_id_for
from destinations.models import Destination, WebhookDelivery
from masivo import urls as root_urls
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from tests.conftest import bearer_client, mint_secret_key
from tests.destinations.test_webhooks import event_item, forward
from tests.fakes.base import Answer
from tests.fakes.webhook_receiver import WebhookReceiver

# The routes, whether or not masivo/urls.py includes them yet (the first match wins).
urlpatterns = [
    path("api/v1/", include(("destinations.api.webhook_urls", "api"), namespace="api")),
    *root_urls.urlpatterns,
]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

URL = "/api/v1/destinations/webhooks"
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


def post(client, url, data=None):
    return client.post(url, data or {}, content_type="application/json")


def patch(client, url, data):
    return client.patch(url, data, content_type="application/json")


def body(receiver, **changes):
    return {"name": "Orders", "url": f"{receiver.url}/hooks",
            "topics": ["event.tracked", "customer.created"]} | changes  # fmt: skip


def created(api, receiver, **changes):
    answer = post(api, URL, body(receiver, **changes))
    assert answer.status_code == 201, answer.json()
    return answer.json()


def test_create_shows_the_secret_once_then_only_a_hint(api, receiver, workspace):
    answer = post(api, URL, body(receiver, event_names=["Order Completed"], description="ERP"))
    data = answer.json()
    got = api.get(f"{URL}/{data['id']}").json()
    listed = api.get(URL).json()

    secret = data.pop("secret")
    assert answer.status_code == 201
    assert secret.startswith("whsec_") and len(secret) == 50
    assert {key: data[key] for key in ("name", "key", "url", "topics", "event_names",
                                       "description", "status", "disabled_reason",
                                       "secret_hint", "previous_secret_expires_at")} == {
        "name": "Orders", "key": "webhook", "url": f"{receiver.url}/hooks",
        "topics": ["customer.created", "event.tracked"], "event_names": ["Order Completed"],
        "description": "ERP", "status": "active", "disabled_reason": "",
        "secret_hint": f"whsec_…{secret[-4:]}", "previous_secret_expires_at": None,
    }  # fmt: skip
    assert got == data
    assert listed["results"] == [data]
    assert secret not in str(got) + str(listed)
    with workspace_scope(workspace.id):
        destination = Destination.objects.get(id=data["id"])
    assert destination.kind == "webhook"
    assert destination.credentials == {"secrets": [secret], "retired_at": None}
    assert destination.forwarding["enabled"] is True
    assert destination.forwarding["types"] == ["events", "profiles"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.1/hooks", "Refused 'http://10.0.0.1/hooks': the host 10.0.0.1 is a "
                                  "private address."),
        ("http://169.254.169.254/latest/", "Refused 'http://169.254.169.254/latest/': the host "
         "169.254.169.254 is the cloud metadata address (link-local)."),
        ("http://localhost:8000/", "Refused 'http://localhost:8000/': the host localhost "
                                   "resolves to 127.0.0.1, which is a loopback address."),
        ("ftp://example.com/", "Refused 'ftp://example.com/': only http and https URLs are "
                               "allowed, not ftp."),
        ("https://a:b@example.com/", "Refused 'https://a:b@example.com/': URLs with credentials "
                                     "(user:password@) are not allowed."),
    ],
)  # fmt: skip
def test_an_unsafe_url_is_a_400_naming_url(api, receiver, settings, workspace, url, message):
    settings.MASIVO_OUTBOUND_ALLOWLIST = []

    answer = post(api, URL, body(receiver, url=url))

    assert answer.status_code == 400
    assert answer.json() == {"detail": message, "code": "invalid", "errors": {"url": [message]}}
    with workspace_scope(workspace.id):
        assert not Destination.objects.exists()


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"topics": []}, {"topics": ["Ensure this field has at least 1 elements."]}),
        ({"topics": ["order.paid"]}, {"topics.0": ['"order.paid" is not a valid choice.']}),
        ({"url": 3}, {"url": ["must be a string"]}),
        ({"colour": "red"}, {"colour": ["unknown field"]}),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, receiver, changes, errors):
    answer = post(api, URL, body(receiver, **changes))

    assert answer.status_code == 400
    assert answer.json()["errors"] == errors


def test_patch_changes_the_fields_given_and_checks_the_url(api, receiver, settings):
    endpoint = created(api, receiver)

    changed = patch(api, f"{URL}/{endpoint['id']}", {"topics": ["audience.entered"],
                                                     "name": "Audiences"})  # fmt: skip
    settings.MASIVO_OUTBOUND_ALLOWLIST = []
    refused = patch(api, f"{URL}/{endpoint['id']}", {"url": "http://192.168.0.10/"})

    assert changed.status_code == 200
    assert (changed.json()["name"], changed.json()["topics"]) == ("Audiences", ["audience.entered"])
    assert changed.json()["url"] == endpoint["url"]
    assert refused.status_code == 400
    assert list(refused.json()["errors"]) == ["url"]
    assert api.get(f"{URL}/{endpoint['id']}").json()["url"] == endpoint["url"]


def test_rotate_returns_the_new_secret_once(api, receiver, workspace):
    endpoint = created(api, receiver)
    old = endpoint["secret"]

    answer = post(api, f"{URL}/{endpoint['id']}/rotate-secret")
    got = api.get(f"{URL}/{endpoint['id']}").json()

    new = answer.json()["secret"]
    assert answer.status_code == 200
    assert new != old and new.startswith("whsec_")
    assert answer.json()["secret_hint"] == got["secret_hint"] == f"whsec_…{new[-4:]}"
    assert answer.json()["previous_secret_expires_at"] == got["previous_secret_expires_at"]
    assert got["previous_secret_expires_at"] is not None
    with workspace_scope(workspace.id):
        assert Destination.objects.get(id=endpoint["id"]).credentials["secrets"] == [new, old]


def test_test_sends_a_signed_webhook_test_now(api, receiver):
    endpoint = created(api, receiver)
    receiver.trust(endpoint["secret"])

    answer = post(api, f"{URL}/{endpoint['id']}/test")
    receiver.script(Answer(500))
    failing = post(api, f"{URL}/{endpoint['id']}/test")

    data = answer.json()
    assert answer.status_code == 200
    assert (data["ok"], data["status_code"], data["error"]) == (True, 200, "")
    assert data["delivery"]["topic"] == "webhook.test"
    assert data["delivery"]["status"] == "succeeded"
    assert data["delivery"]["payload"]["data"] == {"destination_id": endpoint["id"], "test": True}
    assert [payload["type"] for payload in receiver.applied.values()] == ["webhook.test"]
    assert (failing.json()["ok"], failing.json()["status_code"]) == (False, 500)
    assert failing.json()["error"] == "the endpoint answered 500"
    assert failing.json()["delivery"]["status"] == "failed"


def test_the_delivery_log_filters_shows_attempts_and_replays(api, receiver, workspace):
    endpoint = created(api, receiver)
    with workspace_scope(workspace.id):
        destination = Destination.objects.get(id=endpoint["id"])
    receiver.trust(endpoint["secret"])
    forward(destination, [event_item(1), event_item(2)])
    receiver.script(Answer(500))
    webhooks.deliveries_send_due()
    log = f"{URL}/{endpoint['id']}/deliveries"

    everything = api.get(log).json()["results"]
    failed = api.get(f"{log}?status=failed").json()["results"]
    by_topic = api.get(f"{log}?topic=customer.created").json()["results"]
    bad_status = api.get(f"{log}?status=lost")
    detail = api.get(f"{log}/{failed[0]['id']}").json()
    replayed = post(api, f"{log}/{failed[0]['id']}/replay")

    assert [row["webhook_id"] for row in everything] == [
        webhook_id_for("event:2"), webhook_id_for("event:1")
    ]  # fmt: skip
    assert [row["status"] for row in everything] == ["pending", "failed"]
    assert [row["webhook_id"] for row in failed] == [webhook_id_for("event:1")]
    assert by_topic == []
    assert (bad_status.status_code, list(bad_status.json()["errors"])) == (400, ["status"])
    assert detail["payload"]["type"] == "event.tracked"
    assert detail["last_response"] == ""
    assert [(a["attempt"], a["status_code"], a["error"]) for a in detail["history"]] == [
        (1, 500, "the endpoint answered 500")
    ]
    assert replayed.status_code == 202
    assert (replayed.json()["status"], replayed.json()["attempts"]) == ("pending", 0)
    assert replayed.json()["webhook_id"] == webhook_id_for("event:1")


def test_a_viewer_reads_but_cannot_change(api, receiver, workspace):
    endpoint = created(api, receiver)
    viewer = bearer_client(mint_secret_key(workspace, role=Role.VIEWER))
    marketer = bearer_client(mint_secret_key(workspace, role=Role.MARKETER))
    with workspace_scope(workspace.id):
        destination = Destination.objects.get(id=endpoint["id"])
    forward(destination, [event_item(1)])
    with workspace_scope(workspace.id):
        delivery_id = WebhookDelivery.objects.get().id
    log = f"{URL}/{endpoint['id']}/deliveries"

    assert viewer.get(f"{URL}/{endpoint['id']}").status_code == 200
    assert viewer.get(log).status_code == 200
    refused = [
        post(viewer, URL, body(receiver)),
        patch(viewer, f"{URL}/{endpoint['id']}", {"name": "x"}),
        viewer.delete(f"{URL}/{endpoint['id']}"),
        post(viewer, f"{URL}/{endpoint['id']}/rotate-secret"),
        post(viewer, f"{URL}/{endpoint['id']}/test"),
        post(viewer, f"{log}/{delivery_id}/replay"),
        post(marketer, f"{URL}/{endpoint['id']}/rotate-secret"),
    ]
    replayed_by_marketer = post(marketer, f"{log}/{delivery_id}/replay")

    assert [answer.status_code for answer in refused] == [403] * 7
    assert replayed_by_marketer.status_code == 202
    with workspace_scope(workspace.id):  # nothing made, changed or rotated
        assert list(Destination.objects.values_list("name", flat=True)) == ["Orders"]
        stored = Destination.objects.get(id=endpoint["id"]).credentials
        assert stored == {"secrets": [endpoint["secret"]], "retired_at": None}
        assert list(WebhookDelivery.objects.values_list("topic", flat=True)) == ["event.tracked"]


def test_another_workspaces_endpoint_is_a_404(api, other_api, receiver, other_workspace):
    endpoint = created(other_api, receiver)
    with workspace_scope(other_workspace.id):
        destination = Destination.objects.get(id=endpoint["id"])
    forward(destination, [event_item(1)])
    with workspace_scope(other_workspace.id):
        delivery_id = WebhookDelivery.objects.get().id
    base = f"{URL}/{endpoint['id']}"

    answers = [
        api.get(base),
        patch(api, base, {"name": "mine"}),
        api.delete(base),
        post(api, f"{base}/rotate-secret"),
        post(api, f"{base}/test"),
        api.get(f"{base}/deliveries"),
        api.get(f"{base}/deliveries/{delivery_id}"),
        post(api, f"{base}/deliveries/{delivery_id}/replay"),
    ]

    assert [answer.status_code for answer in answers] == [404] * 8
    assert answers[0].json() == {"detail": "Not found.", "code": "not_found"}
    assert api.get(URL).json()["results"] == []
    assert receiver.requests == []


def test_a_delivery_of_another_endpoint_is_a_404(api, receiver, workspace):
    first = created(api, receiver)
    second = created(api, receiver, name="Second")
    with workspace_scope(workspace.id):
        destination = Destination.objects.get(id=first["id"])
    profile = {"email": "a@example.com"}
    item = ForwardItem("profile", "profile:1", 7, event_item().occurred_at, customer=profile,
                       kind="created")  # fmt: skip
    forward(destination, [item])
    with workspace_scope(workspace.id):
        delivery_id = WebhookDelivery.objects.get().id

    assert api.get(f"{URL}/{second['id']}/deliveries/{delivery_id}").status_code == 404
    assert api.get(f"{URL}/{first['id']}/deliveries/{delivery_id}").status_code == 200


def test_delete_removes_the_endpoint_and_its_log(api, receiver, workspace):
    endpoint = created(api, receiver)
    with workspace_scope(workspace.id):
        forward(Destination.objects.get(id=endpoint["id"]), [event_item(1)])

    answer = api.delete(f"{URL}/{endpoint['id']}")

    assert answer.status_code == 204
    with workspace_scope(workspace.id):
        assert not Destination.objects.exists()
        assert not WebhookDelivery.objects.exists()
