"""The in-app messages API for mobile apps: write key + customer token, the customer's active
messages, and seen / clicked / dismissed reports recorded once each."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from masivo.tenancy.services import api_key_create
from messaging.models import Message, MessageStatusChange
from profiles.models import Event
from profiles.services.devices import customer_token_issue
from tests.conftest import bearer_client, mint_secret_key
from tests.factories import CustomerFactory
from tests.profiles.helpers import get, rows

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
LIST = "/api/v1/inapp/messages"
NO_CUSTOMER = (
    "in-app messages need a valid customer token (X-Customer-Token); "
    "get one from POST /customers/{id}/token"
)
LIST_QUERIES = 1  # the messages; the key is cached, the customer token is signed
NOT_FOUND = {"detail": "Not found.", "code": "not_found"}
PAYLOAD = {
    "title": "Hola Ana",
    "body": "Your order has shipped",
    "image": "https://cdn.acme.example/box.png",
    "buttons": [{"label": "Track it", "deep_link": "acme://orders/7"}],
    "layout": "card",
    "expires_at": "2026-12-08T15:00:00Z",
}


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def write_key(workspace):
    with workspace_scope(workspace.id):
        return api_key_create(workspace=workspace, kind="write", name="app").token


@pytest.fixture
def app(write_key):
    """A mobile app: it holds only the workspace's public write key."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {write_key}")


def make_customer(workspace, external_id):
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, external_id=external_id)


@pytest.fixture
def ana(workspace):
    return make_customer(workspace, "ana")


@pytest.fixture
def bob(workspace):
    return make_customer(workspace, "bob")


def as_customer(customer) -> dict:
    return {"HTTP_X_CUSTOMER_TOKEN": customer_token_issue(customer=customer)}


_keys = iter(range(1, 1_000_000))


def make_message(workspace, customer, *, channel="in_app", status="sent", payload=None, **fields):
    with workspace_scope(workspace.id):
        return Message.objects.create(
            workspace=workspace,
            customer=customer,
            channel=channel,
            kind="marketing",
            dedupe_key=f"campaign:{next(_keys)}:{customer.id}",
            status=status,
            payload=PAYLOAD if payload is None else payload,
            **fields,
        )


def listed(client, customer) -> list[int]:
    response = client.get(LIST, **as_customer(customer))
    assert response.status_code == 200, response.content
    return [message["id"] for message in response.json()]


def report(client, message_id, what, customer):
    return client.post(f"{LIST}/{message_id}/{what}", **as_customer(customer))


def history(workspace) -> list[tuple]:
    return rows(
        workspace, MessageStatusChange, "message_id", "status", "detail", "provider_event_id"
    )


def events(workspace) -> list[tuple]:
    return rows(workspace, Event, "customer_id", "name", "message_id", order_by=("occurred_at",))


# -- listing ------------------------------------------------------------------------------------


def test_the_app_lists_the_customers_message_as_its_payload_says(app, workspace, ana):
    message = make_message(workspace, ana, sent_at=NOW - timedelta(minutes=5))

    response = app.get(LIST, **as_customer(ana))

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": message.id,
            "title": "Hola Ana",
            "body": "Your order has shipped",
            "image": "https://cdn.acme.example/box.png",
            "buttons": [{"label": "Track it", "deep_link": "acme://orders/7"}],
            "layout": "card",
            "expires_at": "2026-12-08T15:00:00Z",
            "sent_at": "2026-12-01T14:55:00Z",
            "status": "sent",
        }
    ]


def test_newest_first_and_only_active_in_app_messages_of_this_customer(app, workspace, ana, bob):
    oldest = make_message(workspace, ana, status="clicked", created_at=NOW - timedelta(days=3))
    delivered = make_message(workspace, ana, status="delivered", created_at=NOW - timedelta(days=2))
    opened = make_message(workspace, ana, status="opened", created_at=NOW - timedelta(days=1))
    newest = make_message(workspace, ana, status="sent", created_at=NOW)
    for status in ("queued", "deferred", "sending", "failed", "suppressed", "canceled", "unknown"):
        make_message(workspace, ana, status=status)
    make_message(workspace, ana, channel="email")
    make_message(workspace, ana, channel="push")
    make_message(workspace, bob)

    assert listed(app, ana) == [newest.id, opened.id, delivered.id, oldest.id]


def test_an_expired_message_is_no_longer_listed(app, workspace, ana):
    expiring = make_message(
        workspace, ana, payload=PAYLOAD | {"expires_at": "2026-12-01T16:00:00Z"}
    )
    lasting = make_message(workspace, ana, payload=PAYLOAD | {"expires_at": None})

    assert listed(app, ana) == [lasting.id, expiring.id]
    with time_machine.travel(datetime(2026, 12, 1, 16, 0, tzinfo=UTC), tick=False):
        assert listed(app, ana) == [lasting.id]


@pytest.mark.parametrize(
    ("payload", "expires_at"),
    [
        ({"expires_at": "2026-12-02T10:00:00+01:00"}, "2026-12-02T09:00:00Z"),
        ({"expires_at": "2026-12-02T09:00:00"}, "2026-12-02T09:00:00Z"),  # no zone: UTC
        ({"expires_after_hours": 2}, "2026-12-01T16:00:00Z"),  # from the hand-over
        ({"expires_at": "next tuesday"}, None),
        ({"expires_at": "2026-02-30T00:00:00Z"}, None),
        ({"expires_at": "0001-01-01T00:00:00+01:00"}, None),
        ({"expires_at": 1767225600}, None),
        ({}, None),
    ],
)
def test_expiry_comes_from_the_payload(app, workspace, ana, payload, expires_at):
    make_message(workspace, ana, payload=payload, sent_at=NOW - timedelta(hours=1))

    [message] = app.get(LIST, **as_customer(ana)).json()

    assert message["expires_at"] == expires_at


def test_relative_expiry_counts_from_the_hand_over(app, workspace, ana):
    make_message(
        workspace, ana, payload={"expires_after_hours": 2}, sent_at=NOW - timedelta(hours=2)
    )

    assert listed(app, ana) == []


def test_a_payload_of_another_shape_still_lists_safely(app, workspace, ana):
    message = make_message(
        workspace,
        ana,
        payload={"title": 7, "buttons": ["x", {"label": "Go"}], "layout": "fullscreen"},
    )

    [body] = app.get(LIST, **as_customer(ana)).json()

    assert body == {
        "id": message.id,
        "title": "",
        "body": "",
        "image": "",
        "buttons": [{"label": "Go", "deep_link": ""}],
        "layout": "modal",
        "expires_at": None,
        "sent_at": None,
        "status": "sent",
    }


def test_at_most_fifty_are_listed(app, workspace, ana):
    made = [
        make_message(workspace, ana, created_at=NOW - timedelta(minutes=n)).id for n in range(52)
    ]

    assert listed(app, ana) == made[:50]


def test_listing_runs_the_same_queries_for_many_messages(
    app, workspace, ana, django_assert_num_queries
):
    for _ in range(11):
        make_message(workspace, ana)
    app.get(LIST, **as_customer(ana))  # the key is cached from here on

    with django_assert_num_queries(LIST_QUERIES):
        assert len(listed(app, ana)) == 11


def test_a_secret_key_lists_with_the_customer_token_too(workspace, ana):
    message = make_message(workspace, ana)

    assert listed(bearer_client(mint_secret_key(workspace, role=Role.VIEWER)), ana) == [message.id]


# -- reports ------------------------------------------------------------------------------------


def test_seen_moves_the_message_to_opened_and_records_the_event(app, workspace, ana):
    message = make_message(workspace, ana)

    response = report(app, message.id, "seen", ana)

    assert response.status_code == 204
    assert get(workspace, Message, id=message.id).status == "opened"
    assert history(workspace) == [
        (message.id, "opened", "in-app: seen", f"in_app:{message.id}:seen")
    ]
    assert events(workspace) == [(ana.id, "Message Opened", f"msv:{message.id}:message-opened")]
    assert listed(app, ana) == [message.id]


def test_clicked_moves_the_message_to_clicked(app, workspace, ana):
    message = make_message(workspace, ana)

    response = report(app, message.id, "clicked", ana)

    assert response.status_code == 204
    assert get(workspace, Message, id=message.id).status == "clicked"
    assert history(workspace) == [
        (message.id, "clicked", "in-app: clicked", f"in_app:{message.id}:clicked")
    ]
    assert [name for _, name, _ in events(workspace)] == ["Message Clicked"]


def test_seen_after_clicked_keeps_clicked(app, workspace, ana):
    message = make_message(workspace, ana)
    report(app, message.id, "clicked", ana)

    response = report(app, message.id, "seen", ana)

    assert response.status_code == 204
    assert get(workspace, Message, id=message.id).status == "clicked"


def test_a_dismissed_message_is_no_longer_listed_and_keeps_its_status(app, workspace, ana):
    dismissed = make_message(workspace, ana, status="opened")
    kept = make_message(workspace, ana)

    response = report(app, dismissed.id, "dismissed", ana)

    assert response.status_code == 204
    assert listed(app, ana) == [kept.id]
    assert get(workspace, Message, id=dismissed.id).status == "opened"
    assert history(workspace) == [
        (dismissed.id, "opened", "in-app: dismissed", f"in_app:{dismissed.id}:dismissed")
    ]
    assert [name for _, name, _ in events(workspace)] == ["Message Dismissed"]


@pytest.mark.parametrize("what", ["seen", "clicked", "dismissed"])
def test_a_report_sent_twice_is_recorded_once(app, workspace, ana, what):
    message = make_message(workspace, ana)
    report(app, message.id, what, ana)
    before = (get(workspace, Message, id=message.id).status, history(workspace), events(workspace))

    again = report(app, message.id, what, ana)

    assert again.status_code == 204
    after = (get(workspace, Message, id=message.id).status, history(workspace), events(workspace))
    assert after == before
    assert len(before[1]) == len(before[2]) == 1


def test_a_dismissed_message_can_still_be_reported(app, workspace, ana):
    message = make_message(workspace, ana)
    report(app, message.id, "dismissed", ana)

    assert report(app, message.id, "dismissed", ana).status_code == 204
    assert report(app, message.id, "seen", ana).status_code == 204


# -- what is refused ----------------------------------------------------------------------------


def unchanged(workspace, message) -> bool:
    return (
        get(workspace, Message, id=message.id).status == message.status
        and history(workspace) == []
        and events(workspace) == []
    )


@pytest.mark.parametrize("what", ["seen", "clicked", "dismissed"])
def test_another_customers_message_is_a_404(app, workspace, ana, bob, what):
    message = make_message(workspace, ana)

    response = report(app, message.id, what, bob)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert unchanged(workspace, message)


@pytest.mark.parametrize(
    "fields",
    [{"channel": "email"}, {"status": "queued"}, {"status": "failed"}, {"status": "suppressed"}],
)
def test_a_message_that_is_not_a_delivered_in_app_message_is_a_404(app, workspace, ana, fields):
    message = make_message(workspace, ana, **fields)

    response = report(app, message.id, "seen", ana)

    assert response.status_code == 404
    assert unchanged(workspace, message)


def test_another_workspaces_message_is_a_404(app, workspace, other_workspace, ana):
    stranger = make_customer(other_workspace, "ana")
    message = make_message(other_workspace, stranger)

    response = report(app, message.id, "seen", ana)
    missing = report(app, 2_000_000_000, "seen", ana)

    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json() == NOT_FOUND
    assert get(other_workspace, Message, id=message.id).status == "sent"
    assert history(other_workspace) == []


def test_without_a_key_the_api_answers_401(ana):
    response = Client().get(LIST, **as_customer(ana))

    assert response.status_code == 401


def test_a_write_key_without_a_customer_token_is_refused(app, workspace, ana):
    message = make_message(workspace, ana)

    listing = app.get(LIST)
    reporting = app.post(f"{LIST}/{message.id}/seen")

    assert listing.status_code == reporting.status_code == 403
    assert listing.json() == {"detail": NO_CUSTOMER, "code": "permission_denied"}
    assert unchanged(workspace, message)


@pytest.mark.parametrize("token", ["forged", "", "a:b:c"])
def test_a_bad_customer_token_is_refused(app, token):
    response = app.get(LIST, HTTP_X_CUSTOMER_TOKEN=token)

    assert response.status_code == 403
    assert response.json()["detail"] == NO_CUSTOMER


def test_an_expired_customer_token_is_refused(app, workspace, ana):
    headers = as_customer(ana)

    with time_machine.travel(NOW + timedelta(hours=1, seconds=1), tick=False):
        response = app.get(LIST, **headers)

    assert response.status_code == 403


def test_another_workspaces_customer_token_is_refused(app, other_workspace):
    stranger = make_customer(other_workspace, "ana")
    make_message(other_workspace, stranger)

    response = app.get(LIST, **as_customer(stranger))

    assert response.status_code == 403


def test_a_viewer_secret_key_may_list_but_not_report(workspace, ana):
    viewer = bearer_client(mint_secret_key(workspace, role=Role.VIEWER))
    message = make_message(workspace, ana)

    response = report(viewer, message.id, "seen", ana)

    assert response.status_code == 403
    assert unchanged(workspace, message)


def test_a_write_key_still_cannot_reach_the_rest_of_the_api(app):
    assert app.get("/api/v1/customers").status_code == 403
