"""A template's test send: `POST /api/v1/messaging/templates/{id}/test-send` renders the
current (or a chosen) version for a customer and sends it now through the outbox and the
sender, to a given address or the customer's own, against the SendGrid fake."""

import pytest

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from messaging.models import Message, Suppression
from messaging.sending import send_due
from tests.conftest import bearer_client, mint_secret_key
from tests.messaging.test_sending_support import connect_sendgrid
from tests.messaging.test_templates_api import EMAIL, URL, ana, marketer_api, post, template

pytestmark = pytest.mark.django_db
__all__ = ["ana", "marketer_api", "template"]  # fixtures


def send_test(marketer_api, template, body):
    return post(marketer_api, f"{URL}/{template['id']}/test-send", body)


def stored(workspace, message_id) -> Message:
    with workspace_scope(workspace.id):
        return Message.objects.get(id=message_id)


def test_a_test_goes_to_the_given_address_rendered_for_the_customer(
    workspace, marketer_api, template, ana, sendgrid_fake
):
    connect_sendgrid(workspace, sendgrid_fake)

    response = send_test(
        marketer_api,
        template,
        {"customer_id": ana.id, "to": " QA@Acme.example ", "event": {"product": "zapatos"}},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body | {"message_id": None} == {
        "message_id": None,
        "status": "queued",
        "decision": "test send to qa@acme.example",
    }
    message = stored(workspace, body["message_id"])
    assert (message.kind, message.origin["source"], message.address) == (
        "transactional", "test", "qa@acme.example",
    )  # fmt: skip
    send_due()
    [request] = sendgrid_fake.requests_to("/v3/mail/send")
    assert request.json["personalizations"][0]["to"] == [{"email": "qa@acme.example"}]
    assert request.json["subject"] == "Hola Ana"
    assert "zapatos" in request.json["content"][-1]["value"]
    assert stored(workspace, body["message_id"]).status == "sent"


def test_without_an_address_the_customers_own_is_used(workspace, marketer_api, template, ana):
    response = send_test(marketer_api, template, {"customer_id": ana.id})

    assert response.status_code == 201
    assert stored(workspace, response.json()["message_id"]).address == ana.email


def test_a_hard_bounced_address_is_refused_like_any_transactional_send(
    workspace, marketer_api, template, ana
):
    with workspace_scope(workspace.id):
        Suppression.objects.create(
            workspace=workspace, channel="email", address="qa@acme.example", reason="hard_bounce"
        )

    response = send_test(marketer_api, template, {"customer_id": ana.id, "to": "qa@acme.example"})

    assert response.status_code == 201
    assert (response.json()["status"], response.json()["decision"]) == (
        "suppressed", "suppressed: hard bounce",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": 2_000_000_000}, "customer_id"),
        ({"to": "qa@acme.example"}, "customer_id"),
        ({"customer_id": "ANA", "to": "x"}, "customer_id"),
        ({"customer_id": "{ana}", "to": "not an email"}, "to"),
        ({"customer_id": "{ana}", "version": 9}, "version"),
        ({"customer_id": "{ana}", "cc": "x@y.z"}, "cc"),
    ],
)
def test_bad_input_names_the_field(workspace, marketer_api, template, ana, body, field):
    body = {name: ana.id if value == "{ana}" else value for name, value in body.items()}

    response = send_test(marketer_api, template, body)

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    with workspace_scope(workspace.id):
        assert not Message.objects.exists()


def test_push_tests_go_to_the_customers_devices_only(workspace, marketer_api, ana):
    push = post(
        marketer_api,
        URL,
        {"name": "Push", "channel": "push", "content": {"title": "Hi", "body": "There"}},
    ).json()

    response = send_test(marketer_api, push, {"customer_id": ana.id, "to": "token-1"})

    assert response.status_code == 400
    assert response.json()["errors"] == {"to": ["a Push test goes to the customer's own devices"]}


def test_viewers_may_not_send_tests_and_foreign_templates_are_404(
    workspace, other_workspace, template, ana
):
    viewer = bearer_client(mint_secret_key(workspace, role=Role.VIEWER))
    other = bearer_client(mint_secret_key(other_workspace))

    assert send_test(viewer, template, {"customer_id": ana.id}).status_code == 403
    assert send_test(other, template, {"customer_id": ana.id}).status_code == 404
    assert EMAIL["subject"].startswith("Hola")
