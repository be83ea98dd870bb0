"""Channel connections through the services: what is stored, what is refused, and "test
connection" through the real SDKs against the fakes (success, bad credentials, 5xx, unreachable)."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed
from masivo.tenancy.roles import Role
from messaging import services
from messaging.models import ChannelConnection
from tests.fakes.fcm import FcmFake
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.twilio import TwilioFake
from tests.messaging.helpers import (
    ADMIN,
    SENDGRID_KEY,
    SENDGRID_VALUES,
    TWILIO_SID,
    TWILIO_TOKEN,
    TWILIO_VALUES,
    WHATSAPP_FROM,
    connect,
)

pytestmark = pytest.mark.django_db


def run_test(workspace, connection):
    with workspace_scope(workspace.id):
        outcome = services.connection_test(connection=connection, actor=ADMIN)
        stored = ChannelConnection.objects.get(id=connection.id)
    assert (stored.last_test_ok, stored.last_test_detail) == (outcome.is_ok, outcome.detail)
    assert stored.last_tested_at is not None
    return outcome


def connections_of(workspace):
    with workspace_scope(workspace.id):
        return list(ChannelConnection.objects.values_list("provider", "settings"))


# SendGrid ----------------------------------------------------------------------------------


def test_sendgrid_connect_stores_settings_and_hints(workspace):
    connection = connect(workspace, "sendgrid", SENDGRID_VALUES)

    assert connection.settings == {
        "from_email": "news@acme.example",
        "from_name": "Acme",
        "reply_to": "help@acme.example",
    }
    assert connection.credential_hints == {"api_key": "WXYZ"}
    assert connection.connected_by == "user:1"


def test_sendgrid_test_connection_reads_the_keys_scopes(workspace, sendgrid_fake):
    sendgrid_fake.add_key(SENDGRID_KEY)
    connection = connect(workspace, "sendgrid", SENDGRID_VALUES)

    outcome = run_test(workspace, connection)

    assert (outcome.is_ok, outcome.detail) == (
        True,
        "SendGrid accepted the API key, which may send mail.",
    )
    [request] = sendgrid_fake.requests
    assert (request.method, request.path) == ("GET", "/v3/scopes")
    assert request.header("Authorization") == f"Bearer {SENDGRID_KEY}"


@pytest.mark.parametrize(
    ("prepare", "detail"),
    [
        (
            lambda fake: None,
            "SendGrid refused the API key (401): check that it is complete and has not been "
            "deleted.",
        ),
        (
            lambda fake: fake.add_key(SENDGRID_KEY, scopes=["user.profile.read"]),
            "The API key works but may not send mail: give it the Mail Send permission.",
        ),
        (
            lambda fake: fake.script(SendGridFake.server_error(503)),
            "SendGrid answered 503; try again in a moment.",
        ),
        (
            lambda fake: fake.script(SendGridFake.rate_limited()),
            "SendGrid answered 429; try again in a moment.",
        ),
    ],
    ids=["unknown key", "no mail.send", "5xx", "429"],
)
def test_sendgrid_test_connection_failures(workspace, sendgrid_fake, prepare, detail):
    prepare(sendgrid_fake)
    connection = connect(workspace, "sendgrid", SENDGRID_VALUES)

    outcome = run_test(workspace, connection)

    assert (outcome.is_ok, outcome.detail) == (False, detail)


def test_an_unreachable_provider_is_a_failed_test_not_an_error(workspace, settings):
    settings.MASIVO_SENDGRID_API_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    connection = connect(workspace, "sendgrid", SENDGRID_VALUES)

    outcome = run_test(workspace, connection)

    assert (outcome.is_ok, outcome.detail) == (
        False,
        "Could not reach SendGrid: [Errno 111] Connection refused.",
    )


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"from_email": "a@acme.example"}, "api_key", "required"),
        ({**SENDGRID_VALUES, "from_email": "not an email"}, "from_email",
         "not a valid email address"),
        ({**SENDGRID_VALUES, "api_key": "SG.has space"}, "api_key", "must not contain spaces"),
        ({**SENDGRID_VALUES, "api_key": ""}, "api_key", "must not be empty"),
        ({**SENDGRID_VALUES, "auth_token": "x"}, "auth_token", "not a SendGrid setting"),
        (
            {**SENDGRID_VALUES, "event_webhook_public_key": "bm90IGEga2V5"},
            "event_webhook_public_key",
            "not a public key: paste the Verification Key SendGrid shows for the signed Event "
            "Webhook (base64, no BEGIN/END lines)",
        ),
    ],
)  # fmt: skip
def test_sendgrid_bad_input_names_the_field(workspace, values, field, message):
    with pytest.raises(InvalidInput) as raised:
        connect(workspace, "sendgrid", values)

    assert (raised.value.field, raised.value.message) == (field, message)
    assert connections_of(workspace) == []


def test_an_event_webhook_public_key_is_kept_as_given(workspace):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    encoded = base64.b64encode(
        key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).decode()

    connection = connect(
        workspace, "sendgrid", {**SENDGRID_VALUES, "event_webhook_public_key": encoded}
    )

    assert connection.settings["event_webhook_public_key"] == encoded


# Twilio ------------------------------------------------------------------------------------


def test_twilio_test_connection_fetches_the_account(workspace, twilio_fake):
    twilio_fake.add_account(TWILIO_SID, TWILIO_TOKEN)
    connection = connect(workspace, "twilio", TWILIO_VALUES)

    outcome = run_test(workspace, connection)

    assert (outcome.is_ok, outcome.detail) == (
        True,
        "Twilio accepted the credentials of Fake account.",
    )
    assert [(r.method, r.path) for r in twilio_fake.requests] == [
        ("GET", f"/2010-04-01/Accounts/{TWILIO_SID}.json")
    ]
    assert connection.settings == {"account_sid": TWILIO_SID, "whatsapp_from": WHATSAPP_FROM}
    assert connection.credential_hints == {"auth_token": "TOKN"}


def test_twilio_wrong_token_and_5xx(workspace, twilio_fake):
    twilio_fake.add_account(TWILIO_SID, "another-token-entirely-0000000000")
    connection = connect(workspace, "twilio", TWILIO_VALUES)

    refused = run_test(workspace, connection)
    twilio_fake.add_account(TWILIO_SID, TWILIO_TOKEN)
    twilio_fake.script(TwilioFake.server_error(500))
    failed = run_test(workspace, connection)

    assert (refused.is_ok, failed.is_ok) == (False, False)
    assert refused.detail.startswith("Twilio refused the account SID and auth token (20003 ")
    assert failed.detail == "Twilio answered 500 (20500); try again in a moment."


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({**TWILIO_VALUES, "account_sid": "AC123"}, "account_sid",
         "must be an Account SID: AC and 32 hexadecimal characters"),
        ({**TWILIO_VALUES, "whatsapp_from": "5215512345678"}, "whatsapp_from",
         "must be a phone number in E.164 form, like +5215512345678"),
        ({"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN}, "whatsapp_from",
         "give a WhatsApp sender or a Messaging Service SID"),
    ],
)  # fmt: skip
def test_twilio_bad_input_names_the_field(workspace, values, field, message):
    with pytest.raises(InvalidInput) as raised:
        connect(workspace, "twilio", values)

    assert (raised.value.field, raised.value.message) == (field, message)


def test_twilio_with_a_messaging_service_instead_of_a_sender(workspace):
    service_sid = "MG" + "a" * 32

    connection = connect(
        workspace,
        "twilio",
        {
            "account_sid": TWILIO_SID,
            "auth_token": TWILIO_TOKEN,
            "messaging_service_sid": service_sid,
        },
    )

    assert connection.settings == {"account_sid": TWILIO_SID, "messaging_service_sid": service_sid}


# FCM ---------------------------------------------------------------------------------------


def test_fcm_test_connection_is_a_dry_run_send(workspace, fcm_fake):
    account = fcm_fake.service_account("acme-push")
    connection = connect(workspace, "fcm", {"service_account": account})

    outcome = run_test(workspace, connection)

    assert (outcome.is_ok, outcome.detail) == (
        True,
        "FCM accepted a test message for project acme-push.",
    )
    [send] = fcm_fake.sends
    assert send.path == "/v1/projects/acme-push/messages:send"
    assert send.json == {
        "message": {"topic": "masivo-connection-test", "data": {"masivo": "connection test"}},
        "validate_only": True,
    }
    assert connection.settings == {
        "client_email": "firebase-adminsdk@acme-push.iam.gserviceaccount.com"
    }
    assert connection.credential_hints == {"service_account": "4567"}


def test_fcm_never_posts_the_key_to_the_token_uri_in_the_file(workspace, fcm_fake, sendgrid_fake):
    account = fcm_fake.service_account("acme-push") | {"token_uri": f"{sendgrid_fake.url}/steal"}
    connection = connect(workspace, "fcm", {"service_account": json.dumps(account)})

    assert run_test(workspace, connection).is_ok
    assert sendgrid_fake.requests == []
    assert [r.path for r in fcm_fake.requests] == ["/token", "/v1/projects/acme-push/messages:send"]


@pytest.mark.parametrize(
    ("prepare", "detail"),
    [
        (
            lambda fake: fake.service_account("acme-push", registered=False),
            "Google refused the service account key (invalid_grant): it may have been deleted; "
            "generate a new key in the Firebase console.",
        ),
        (
            lambda fake: (
                fake.script(FcmFake.error(404, "NOT_FOUND", "Requested entity was not found."))
                or fake.service_account("acme-push")
            ),
            "FCM refused project acme-push (404 NOT_FOUND): check the project id and that the "
            "service account belongs to it.",
        ),
        (
            lambda fake: (
                fake.script(FcmFake.server_error(502)) or fake.service_account("acme-push")
            ),
            "FCM answered 502 (INTERNAL); try again later.",
        ),
    ],
    ids=["unknown key", "wrong project", "5xx"],
)
def test_fcm_test_connection_failures(workspace, fcm_fake, prepare, detail):
    connection = connect(workspace, "fcm", {"service_account": prepare(fcm_fake)})

    outcome = run_test(workspace, connection)

    assert (outcome.is_ok, outcome.detail) == (False, detail)


@pytest.mark.parametrize(
    ("service_account", "message"),
    [
        ('{"type": "service_account", ', "not valid JSON: paste the whole key file"),
        ("[1, 2]", "must be the service account's JSON key (an object)"),
        ({"type": "authorized_user"},
         'not a service account key: "type" must be "service_account"'),
        ({"type": "service_account", "project_id": "p"},
         "the key file lacks private_key_id, private_key, client_email"),
        ({"type": "service_account", "project_id": "acme-push", "private_key_id": "k",
          "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
          "client_email": "a@b.example"},
         "private_key is not a PEM private key"),
    ],
)  # fmt: skip
def test_a_malformed_service_account_is_refused_naming_the_field(
    workspace, service_account, message
):
    with pytest.raises(InvalidInput) as raised:
        connect(workspace, "fcm", {"service_account": service_account})

    assert (raised.value.field, raised.value.message) == ("service_account", message)


# Update, disconnect, permissions ------------------------------------------------------------


def test_update_keeps_what_is_not_given_and_clears_the_last_test(workspace, sendgrid_fake):
    sendgrid_fake.add_key(SENDGRID_KEY)
    connection = connect(workspace, "sendgrid", SENDGRID_VALUES)
    run_test(workspace, connection)

    with workspace_scope(workspace.id):
        updated = services.connection_update(
            connection=ChannelConnection.objects.get(id=connection.id),
            values={"from_name": "", "reply_to": "support@acme.example"},
            actor=ADMIN,
        )
        stored = ChannelConnection.objects.get(id=connection.id)

    assert (
        stored.settings
        == updated.settings
        == {
            "from_email": "news@acme.example",
            "reply_to": "support@acme.example",
        }
    )
    assert stored.credentials == {"api_key": SENDGRID_KEY}
    assert (stored.last_tested_at, stored.last_test_ok, stored.last_test_detail) == (None, None, "")


def test_a_second_connection_to_one_provider_is_a_conflict(workspace, other_workspace):
    connect(workspace, "sendgrid", SENDGRID_VALUES)
    connect(other_workspace, "sendgrid", SENDGRID_VALUES)

    with pytest.raises(Conflict):
        connect(workspace, "sendgrid", SENDGRID_VALUES)

    assert len(connections_of(workspace)) == 1


def test_disconnect_deletes_the_credentials(workspace):
    connection = connect(workspace, "sendgrid", SENDGRID_VALUES)

    with workspace_scope(workspace.id):
        services.connection_delete(connection=connection, actor=ADMIN)

    assert connections_of(workspace) == []


@pytest.mark.parametrize("role", [Role.MARKETER, Role.VIEWER])
def test_only_admins_and_owners_manage_connections(workspace, role):
    actor = Actor(role=role, user_id=2)
    connection = connect(workspace, "sendgrid", SENDGRID_VALUES)

    with workspace_scope(workspace.id):
        for call in (
            lambda: services.connection_create(
                workspace=workspace, provider="twilio", values=TWILIO_VALUES, actor=actor
            ),
            lambda: services.connection_update(
                connection=connection, values={"from_name": "X"}, actor=actor
            ),
            lambda: services.connection_test(connection=connection, actor=actor),
            lambda: services.connection_delete(connection=connection, actor=actor),
        ):
            with pytest.raises(NotAllowed):
                call()

    assert connections_of(workspace) == [("sendgrid", connection.settings)]
