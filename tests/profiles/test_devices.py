"""Push devices: registered by a backend (secret key) or an app (write key + customer token)."""

import time
from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from masivo.tenancy.services import api_key_create
from profiles.models import Customer, Device
from profiles.services.devices import customer_token_issue
from tests.factories import CustomerFactory
from tests.profiles.helpers import client_with_role, drf_time, get, rows, send

pytestmark = pytest.mark.django_db

IPHONE = {"platform": "ios", "model": "iPhone15,2", "osVersion": "17.1"}
REQUIRED = "a non-empty string is required"
NEEDS_TOKEN = (
    "with a write key, registering a device needs a valid customer token for this customer "
    "(X-Customer-Token); get one from POST /customers/{id}/token"
)


def devices_url(customer_id: int) -> str:
    return f"/api/v1/customers/{customer_id}/devices"


def make_customer(workspace, **fields) -> Customer:
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, **fields)


def register(client, customer_id, token="token-1", info=IPHONE, **headers):  # noqa: S107
    return client.patch(
        devices_url(customer_id),
        {"device_token": token, "device_info": info},
        content_type="application/json",
        **headers,
    )


def devices(workspace) -> list[tuple]:
    return rows(workspace, Device, "token", "customer_id", "platform", "model", "os_version")


@pytest.fixture
def ana(workspace):
    return make_customer(workspace, external_id="ana")


@pytest.fixture
def bob(workspace):
    return make_customer(workspace, external_id="bob")


@pytest.fixture
def app(write_key):
    """A mobile app: it holds only the workspace's public write key."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {write_key}")


def customer_token(api, customer_id: int) -> str:
    response = api.post(f"/api/v1/customers/{customer_id}/token")
    assert response.status_code == 200
    return response.json()["customer_token"]


# -- with a secret key --------------------------------------------------------------------------


def test_register_stores_the_device_until_now_plus_the_ttl(api, workspace, ana):
    started = timezone.now()

    response = register(api, ana.id)

    assert response.status_code == 200
    device = get(workspace, Device, token="token-1")
    assert started <= device.created_at <= timezone.now()
    assert device.updated_at == device.created_at
    assert device.expires_at == device.created_at + timedelta(days=270)
    assert response.json() == {
        "id": device.id,
        "token": "token-1",
        "platform": "ios",
        "model": "iPhone15,2",
        "os_version": "17.1",
        "push_enabled": True,
        "is_active": True,
        "created_at": drf_time(device.created_at),
        "updated_at": drf_time(device.updated_at),
        "expires_at": drf_time(device.expires_at),
    }
    assert devices(workspace) == [("token-1", ana.id, "ios", "iPhone15,2", "17.1")]


def test_the_ttl_comes_from_the_profile_settings(api, workspace, ana):
    send(api, "patch", "/api/v1/profile-settings", {"device_token_ttl_days": 30})

    register(api, ana.id)

    device = get(workspace, Device, token="token-1")
    assert device.expires_at - device.updated_at == timedelta(days=30)


def test_registering_the_same_token_again_updates_it(api, workspace, ana):
    register(api, ana.id)
    first = get(workspace, Device, token="token-1")
    with workspace_scope(workspace.id):
        Device.objects.filter(id=first.id).update(push_enabled=False)

    response = register(
        api, ana.id, info={"platform": "ios", "model": "iPhone16,1", "osVersion": "18.0"}
    )

    assert response.status_code == 200
    again = get(workspace, Device, token="token-1")
    assert again.id == first.id
    assert devices(workspace) == [("token-1", ana.id, "ios", "iPhone16,1", "18.0")]
    assert again.created_at == first.created_at
    assert again.updated_at > first.updated_at
    assert again.expires_at == again.updated_at + timedelta(days=270)
    assert again.push_enabled is True


def test_a_token_registered_to_another_customer_moves(api, workspace, ana, bob):
    register(api, ana.id)

    response = register(
        api, bob.id, info={"platform": "android", "model": "Pixel 8", "osVersion": "15"}
    )

    assert response.status_code == 200
    assert devices(workspace) == [("token-1", bob.id, "android", "Pixel 8", "15")]
    assert api.get(devices_url(ana.id)).json() == []
    assert [d["token"] for d in api.get(devices_url(bob.id)).json()] == ["token-1"]


def test_nul_characters_and_blanks_are_removed_from_the_token(api, workspace, ana):
    register(api, ana.id, token=" tok\x00en-1 ", info={"platform": "web"})
    assert devices(workspace) == [("token-1", ana.id, "web", "", "")]


def test_get_lists_the_customers_devices_newest_first(api, workspace, ana, bob):
    register(api, ana.id, token="old")
    register(api, ana.id, token="new", info={"platform": "web"})
    register(api, bob.id, token="bob's")

    response = api.get(devices_url(ana.id))

    assert response.status_code == 200
    assert [(d["token"], d["platform"]) for d in response.json()] == [
        ("new", "web"),
        ("old", "ios"),
    ]


def test_delete_with_a_token_removes_that_device(api, workspace, ana):
    register(api, ana.id, token="token-1")
    register(api, ana.id, token="token-2")

    response = api.delete(devices_url(ana.id) + "?device_token=token-1")

    assert response.status_code == 204
    assert rows(workspace, Device, "token") == ["token-2"]


def test_delete_without_a_token_removes_all_of_the_customers_devices(api, workspace, ana, bob):
    register(api, ana.id, token="token-1")
    register(api, ana.id, token="token-2")
    register(api, bob.id, token="token-3")

    response = api.delete(devices_url(ana.id))

    assert response.status_code == 204
    assert rows(workspace, Device, "token", "customer_id") == [("token-3", bob.id)]


def test_delete_cannot_remove_another_customers_device(api, workspace, ana, bob):
    register(api, bob.id, token="bob-token")

    response = api.delete(devices_url(ana.id) + "?device_token=bob-token")

    assert response.status_code == 204
    assert rows(workspace, Device, "token", "customer_id") == [("bob-token", bob.id)]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"device_token": "t", "device_info": {"platform": "blackberry"}},
            "device_info.platform",
            "one of android, ios, web",
        ),
        (
            {"device_token": "t", "device_info": {"model": "Pixel 8"}},
            "device_info.platform",
            "one of android, ios, web",
        ),
        ({"device_info": IPHONE}, "device_token", REQUIRED),
        ({"device_token": "  ", "device_info": IPHONE}, "device_token", REQUIRED),
        ({"device_token": 5, "device_info": IPHONE}, "device_token", REQUIRED),
        (
            {"device_token": "x" * 4097, "device_info": IPHONE},
            "device_token",
            "longer than 4096 characters",
        ),
        (
            {"device_token": "t"},
            "device_info",
            "an object with platform, model and osVersion",
        ),
        (
            {"device_token": "t", "device_info": {"platform": "ios", "model": "x" * 101}},
            "device_info.model",
            "longer than 100 characters",
        ),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_stored(
    api, workspace, ana, body, field, message
):
    response = send(api, "patch", devices_url(ana.id), body)

    assert response.status_code == 400
    assert response.json() == {"detail": message, "code": "invalid", "errors": {field: [message]}}
    assert devices(workspace) == []


def test_a_body_that_is_not_an_object_is_a_400(api, workspace, ana):
    response = send(api, "patch", devices_url(ana.id), ["token-1"])

    assert response.status_code == 400
    assert response.json() == {"detail": "must be a JSON object", "code": "invalid"}
    assert devices(workspace) == []


def test_a_viewer_key_cannot_register_remove_or_mint_tokens(api, workspace, ana):
    register(api, ana.id, token="kept")
    viewer = client_with_role(workspace, Role.VIEWER)
    denied = {"detail": "the viewer role may not edit marketing", "code": "permission_denied"}

    assert register(viewer, ana.id, token="new").json() == denied
    assert viewer.delete(devices_url(ana.id)).json() == denied
    assert viewer.post(f"/api/v1/customers/{ana.id}/token").json() == denied
    assert rows(workspace, Device, "token") == ["kept"]
    assert viewer.get(devices_url(ana.id)).status_code == 200


# -- with the write key (mobile apps) -----------------------------------------------------------


def test_the_customer_token_answer(api, ana):
    response = api.post(f"/api/v1/customers/{ana.id}/token")

    assert response.status_code == 200
    assert set(response.json()) == {"customer_token", "expires_in"}
    assert response.json()["expires_in"] == 3600


def test_a_write_key_without_a_customer_token_is_refused(app, workspace, ana):
    response = register(app, ana.id)

    assert response.status_code == 403
    assert response.json() == {"detail": NEEDS_TOKEN, "code": "permission_denied"}
    assert devices(workspace) == []


def test_a_write_key_with_the_customers_token_registers(app, api, workspace, ana):
    token = customer_token(api, ana.id)

    response = register(app, ana.id, HTTP_X_CUSTOMER_TOKEN=token)

    assert response.status_code == 200
    assert response.json()["token"] == "token-1"
    assert devices(workspace) == [("token-1", ana.id, "ios", "iPhone15,2", "17.1")]


def test_the_customer_token_may_come_in_the_body(app, api, workspace, ana):
    body = {
        "device_token": "token-1",
        "device_info": IPHONE,
        "customer_token": customer_token(api, ana.id),
    }

    response = send(app, "patch", devices_url(ana.id), body)

    assert response.status_code == 200
    assert devices(workspace) == [("token-1", ana.id, "ios", "iPhone15,2", "17.1")]


def test_a_token_for_one_customer_does_not_open_another(app, api, workspace, ana, bob):
    anas_token = customer_token(api, ana.id)

    response = register(app, bob.id, HTTP_X_CUSTOMER_TOKEN=anas_token)

    assert response.status_code == 403
    assert response.json() == {"detail": NEEDS_TOKEN, "code": "permission_denied"}
    assert devices(workspace) == []


def test_a_tampered_token_is_refused(app, api, workspace, ana):
    token = customer_token(api, ana.id)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")

    response = register(app, ana.id, HTTP_X_CUSTOMER_TOKEN=tampered)

    assert response.status_code == 403
    assert devices(workspace) == []


def test_an_expired_token_is_refused(app, api, workspace, ana, monkeypatch):
    an_hour_ago = signing.b62_encode(int(time.time()) - 3601)
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: an_hour_ago)
    token = customer_token(api, ana.id)
    monkeypatch.undo()

    response = register(app, ana.id, HTTP_X_CUSTOMER_TOKEN=token)

    assert response.status_code == 403
    assert devices(workspace) == []


def test_a_token_signed_for_another_workspace_is_refused(app, workspace, other_workspace, ana):
    foreign = Customer(id=ana.id, workspace_id=other_workspace.id)

    response = register(app, ana.id, HTTP_X_CUSTOMER_TOKEN=customer_token_issue(customer=foreign))

    assert response.status_code == 403
    assert devices(workspace) == []


def test_another_workspaces_write_key_cannot_reach_the_customer(
    api, workspace, other_workspace, ana
):
    with workspace_scope(other_workspace.id):
        other_key = api_key_create(workspace=other_workspace, kind="write", name="app").token
    token = customer_token(api, ana.id)

    response = register(
        Client(HTTP_AUTHORIZATION=f"Bearer {other_key}"), ana.id, HTTP_X_CUSTOMER_TOKEN=token
    )

    assert response.status_code == 404
    assert devices(workspace) == []


def test_a_write_key_removes_devices_only_with_a_token(app, api, workspace, ana):
    register(api, ana.id, token="token-1")
    register(api, ana.id, token="token-2")

    refused = app.delete(devices_url(ana.id) + "?device_token=token-1")
    assert refused.status_code == 403
    assert rows(workspace, Device, "token") == ["token-1", "token-2"]

    token = customer_token(api, ana.id)
    allowed = app.delete(devices_url(ana.id) + "?device_token=token-1", HTTP_X_CUSTOMER_TOKEN=token)
    assert allowed.status_code == 204
    assert rows(workspace, Device, "token") == ["token-2"]


def test_a_write_key_cannot_list_devices(app, api, ana):
    register(api, ana.id)
    token = customer_token(api, ana.id)

    response = app.get(devices_url(ana.id), HTTP_X_CUSTOMER_TOKEN=token)

    assert response.status_code == 403
    assert response.json() == {
        "detail": "listing devices needs a secret key",
        "code": "permission_denied",
    }


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("post", "/token"), ("get", ""), ("patch", ""), ("get", "/consent"), ("post", "/erase")],
)
def test_a_write_key_opens_nothing_else(app, workspace, ana, method, suffix):
    before = rows(workspace, Customer, "id", "external_id", "updated_at")

    response = send(app, method, f"/api/v1/customers/{ana.id}{suffix}", {})

    assert response.status_code == 403
    assert response.json() == {
        "detail": "write keys are for ingestion and mobile apps only; use a secret key",
        "code": "permission_denied",
    }
    assert rows(workspace, Customer, "id", "external_id", "updated_at") == before
