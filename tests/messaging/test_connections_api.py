"""/api/v1/messaging/connections: tenant-scoped, admin to change, credentials never echoed."""

import pytest

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from messaging.models import ChannelConnection
from tests.conftest import bearer_client, mint_secret_key
from tests.messaging.helpers import (
    SENDGRID_KEY,
    SENDGRID_VALUES,
    TWILIO_SID,
    TWILIO_TOKEN,
    TWILIO_VALUES,
    connect,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/messaging/connections"


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


def rows(workspace):
    with workspace_scope(workspace.id):
        return list(ChannelConnection.objects.values_list("provider", flat=True))


def test_connect_sendgrid_answers_the_connection_without_the_key(api, workspace):
    response = post(api, URL, {"provider": "sendgrid", **SENDGRID_VALUES})

    assert response.status_code == 201, response.content
    body = response.json()
    assert SENDGRID_KEY not in response.content.decode()
    assert {key: body[key] for key in body if key not in {"id", "created_at", "updated_at"}} == {
        "provider": "sendgrid",
        "channels": ["email"],
        "settings": {
            "from_email": "news@acme.example",
            "from_name": "Acme",
            "reply_to": "help@acme.example",
        },
        "credentials": {"api_key": {"is_set": True, "last4": "WXYZ"}},
        "last_tested_at": None,
        "last_test_ok": None,
        "last_test_detail": "",
    }
    assert rows(workspace) == ["sendgrid"]


def test_list_and_detail_show_hints_only(api, workspace, django_assert_num_queries):
    sendgrid = connect(workspace, "sendgrid", SENDGRID_VALUES)
    twilio = connect(workspace, "twilio", TWILIO_VALUES)

    with django_assert_num_queries(3) as queries:  # the key, its last_used_at, the page
        listing = api.get(URL)
    detail = api.get(f"{URL}/{twilio.id}")

    assert listing.status_code == 200
    assert [(c["id"], c["credentials"]) for c in listing.json()["results"]] == [
        (twilio.id, {"auth_token": {"is_set": True, "last4": "TOKN"}}),
        (sendgrid.id, {"api_key": {"is_set": True, "last4": "WXYZ"}}),
    ]
    assert detail.json()["settings"] == {"account_sid": TWILIO_SID, "whatsapp_from": "+14155238886"}
    assert TWILIO_TOKEN not in listing.content.decode() + detail.content.decode()
    # The page never reads (so never decrypts) the credentials.
    assert all('"credentials"' not in q["sql"] for q in queries.captured_queries)


def test_another_workspaces_connection_is_a_404_like_a_missing_one(api, other_workspace):
    foreign = connect(other_workspace, "sendgrid", SENDGRID_VALUES)

    answers = [
        api.get(f"{URL}/{foreign.id}"),
        api.patch(f"{URL}/{foreign.id}", {"from_name": "X"}, content_type="application/json"),
        post(api, f"{URL}/{foreign.id}/test", {}),
        api.delete(f"{URL}/{foreign.id}"),
        api.get(f"{URL}/999999999"),
    ]

    assert {(a.status_code, a.content) for a in answers} == {
        (404, b'{"detail":"Not found.","code":"not_found"}')
    }
    assert rows(other_workspace) == ["sendgrid"]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"provider": "mailchimp"}, {"provider": ["one of sendgrid, twilio, fcm"]}),
        ({"from_email": "a@acme.example"}, {"provider": ["one of sendgrid, twilio, fcm"]}),
        ({"provider": "sendgrid", "from_email": "a@acme.example"},
         {"api_key": ["This field is required."]}),
        ({"provider": "sendgrid", **SENDGRID_VALUES, "from_email": "nope"},
         {"from_email": ["Enter a valid email address."]}),
        ({"provider": "sendgrid", **SENDGRID_VALUES, "colour": "red"},
         {"colour": ["unknown field"]}),
        ({"provider": "sendgrid", **SENDGRID_VALUES, "api_key": 12345},
         {"api_key": ["must be a string"]}),
        ({"provider": "twilio", **TWILIO_VALUES, "account_sid": "AC1"},
         {"account_sid": ["This value does not match the required pattern."]}),
        ({"provider": "twilio", "account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
         {"whatsapp_from": ["give a WhatsApp sender or a Messaging Service SID"]}),
        ({"provider": "fcm", "service_account": {"type": "service_account"}},
         {"service_account": [
             "the key file lacks project_id, private_key_id, private_key, client_email"]}),
        ({"provider": "fcm", "service_account": "{not json"},
         {"service_account": ['Expected a dictionary of items but got type "str".']}),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(api, workspace, body, errors):
    response = post(api, URL, body)

    assert response.status_code == 400, response.content
    assert response.json()["errors"] == errors
    assert response.json()["code"] == "invalid"
    assert rows(workspace) == []


def test_a_second_connection_to_a_provider_is_a_409(api, workspace):
    connect(workspace, "sendgrid", SENDGRID_VALUES)

    response = post(api, URL, {"provider": "sendgrid", **SENDGRID_VALUES})

    assert response.status_code == 409
    assert response.json() == {
        "detail": "SendGrid is already connected; update or disconnect that connection",
        "code": "conflict",
        "errors": {
            "provider": ["SendGrid is already connected; update or disconnect that connection"]
        },
    }


@pytest.mark.parametrize("role", [Role.MARKETER, Role.VIEWER])
def test_changing_connections_needs_an_admin_key(workspace, role):
    client = bearer_client(mint_secret_key(workspace, role=role))
    existing = connect(workspace, "sendgrid", SENDGRID_VALUES)

    read = client.get(f"{URL}/{existing.id}")
    answers = [
        post(client, URL, {"provider": "twilio", **TWILIO_VALUES}),
        client.patch(f"{URL}/{existing.id}", {"from_name": "X"}, content_type="application/json"),
        post(client, f"{URL}/{existing.id}/test", {}),
        client.delete(f"{URL}/{existing.id}"),
    ]

    assert read.status_code == 200
    assert [a.status_code for a in answers] == [403] * 4
    assert answers[0].json() == {
        "detail": f"the {role} role may not manage workspace",
        "code": "permission_denied",
    }
    assert rows(workspace) == ["sendgrid"]


def test_patch_changes_only_the_given_fields(api, workspace):
    existing = connect(workspace, "sendgrid", SENDGRID_VALUES)

    response = api.patch(
        f"{URL}/{existing.id}",
        {"api_key": "SG.rotated-key.000000000000NEW1", "from_name": "Acme News"},
        content_type="application/json",
    )
    wrong_provider = api.patch(
        f"{URL}/{existing.id}", {"auth_token": "x"}, content_type="application/json"
    )

    assert response.status_code == 200
    assert response.json()["credentials"] == {"api_key": {"is_set": True, "last4": "NEW1"}}
    assert response.json()["settings"]["from_name"] == "Acme News"
    assert wrong_provider.status_code == 400
    assert wrong_provider.json()["errors"] == {"auth_token": ["unknown field"]}
    with workspace_scope(workspace.id):
        stored = ChannelConnection.objects.get(id=existing.id)
    assert stored.credentials == {"api_key": "SG.rotated-key.000000000000NEW1"}


def test_test_endpoint_answers_the_providers_verdict(api, workspace, twilio_fake):
    twilio_fake.add_account(TWILIO_SID, TWILIO_TOKEN)
    existing = connect(workspace, "twilio", TWILIO_VALUES)

    response = post(api, f"{URL}/{existing.id}/test", {})
    after = api.get(f"{URL}/{existing.id}").json()

    assert response.status_code == 200
    body = response.json()
    assert (body["is_ok"], body["detail"]) == (
        True,
        "Twilio accepted the credentials of Fake account.",
    )
    assert (after["last_test_ok"], after["last_tested_at"]) == (True, body["tested_at"])


def test_test_endpoint_reports_bad_credentials(api, workspace, twilio_fake):
    existing = connect(workspace, "twilio", TWILIO_VALUES)

    response = post(api, f"{URL}/{existing.id}/test", {})

    assert response.status_code == 200
    assert response.json()["is_ok"] is False
    assert response.json()["detail"].startswith("Twilio refused the account SID and auth token")


def test_delete_disconnects(api, workspace):
    existing = connect(workspace, "sendgrid", SENDGRID_VALUES)

    response = api.delete(f"{URL}/{existing.id}")

    assert response.status_code == 204
    assert rows(workspace) == []


def test_connect_fcm_through_the_api(api, workspace, fcm_fake):
    account = fcm_fake.service_account("acme-push")

    created = post(api, URL, {"provider": "fcm", "service_account": account})
    tested = post(api, f"{URL}/{created.json()['id']}/test", {})

    assert created.status_code == 201, created.content
    assert account["private_key"] not in created.content.decode()
    assert created.json()["credentials"] == {"service_account": {"is_set": True, "last4": "4567"}}
    assert tested.json()["is_ok"] is True


def test_the_schema_documents_the_endpoints(api):
    schema = api.get("/api/v1/schema/?format=json").json()

    assert set(schema["paths"]["/api/v1/messaging/connections"]) == {"get", "post"}
    assert set(schema["paths"]["/api/v1/messaging/connections/{id}"]) == {"get", "patch", "delete"}
    assert set(schema["paths"]["/api/v1/messaging/connections/{id}/test"]) == {"post"}
    create = schema["components"]["schemas"]["ConnectionCreateInRequest"]
    assert create["discriminator"]["propertyName"] == "provider"
    assert schema["components"]["schemas"]["CredentialOut"]["properties"].keys() == {
        "is_set",
        "last4",
    }
