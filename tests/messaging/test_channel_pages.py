"""Settings, Channels in the dashboard: connect, test, edit, disconnect; admins only."""

import json

import pytest
from django.contrib.messages import get_messages

from masivo.tenancy.context import workspace_scope
from messaging.models import ChannelConnection
from tests.dashboard.conftest import client_for
from tests.messaging.helpers import (
    SENDGRID_KEY,
    SENDGRID_VALUES,
    TWILIO_SID,
    TWILIO_TOKEN,
    TWILIO_VALUES,
    connect,
)

pytestmark = pytest.mark.django_db


def url(workspace, suffix=""):
    return f"/w/{workspace.id}/settings/channels/{suffix}"


def stored(workspace):
    with workspace_scope(workspace.id):
        return {c.provider: (c.settings, c.credentials) for c in ChannelConnection.objects.all()}


def flashes(response):
    """The messages waiting to be shown (a redirect not followed keeps earlier ones)."""
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_page_lists_every_channel_and_in_app_is_built_in(owner, workspace):
    connect(workspace, "sendgrid", SENDGRID_VALUES)

    response = client_for(owner).get(url(workspace))

    content = response.content.decode()
    assert response.status_code == 200
    assert content.count("Not connected") == 2  # Twilio and FCM
    assert "Connected, not tested" in content
    assert "Set, ending in <code>WXYZ</code>" in content
    assert SENDGRID_KEY not in content
    assert "Built in" in content
    assert f'href="{url(workspace, "twilio/")}">Connect Twilio</a>' in content
    assert 'aria-current="page">Channels</a>' in content


def test_connect_twilio_from_the_form(owner, workspace):
    client = client_for(owner)

    form = client.get(url(workspace, "twilio/"))
    response = client.post(url(workspace, "twilio/"), TWILIO_VALUES)

    assert form.status_code == 200
    assert 'type="password" name="auth_token"' in form.content.decode()
    assert response.status_code == 302
    assert response["Location"] == url(workspace)
    assert flashes(response) == ["Twilio connected. Test the connection to check it."]
    assert stored(workspace) == {
        "twilio": (
            {"account_sid": TWILIO_SID, "whatsapp_from": "+14155238886"},
            {"auth_token": TWILIO_TOKEN},
        )
    }


def test_bad_input_shows_on_its_field_and_saves_nothing(owner, workspace):
    response = client_for(owner).post(
        url(workspace, "twilio/"), {**TWILIO_VALUES, "whatsapp_from": "555"}
    )

    assert response.status_code == 400
    assert "Must be a phone number in E.164 form, like +5215512345678" in response.content.decode()
    assert stored(workspace) == {}


def test_editing_keeps_a_credential_left_empty(owner, workspace):
    connect(workspace, "sendgrid", SENDGRID_VALUES)
    client = client_for(owner)

    form = client.get(url(workspace, "sendgrid/"))
    client.post(
        url(workspace, "sendgrid/"),
        {"api_key": "", "from_email": "hello@acme.example", "from_name": "", "reply_to": ""},
    )

    assert SENDGRID_KEY not in form.content.decode()
    assert "Leave empty to keep the stored one." in form.content.decode()
    assert stored(workspace) == {
        "sendgrid": ({"from_email": "hello@acme.example"}, {"api_key": SENDGRID_KEY})
    }


def test_test_connection_button_reports_what_the_provider_said(owner, workspace, sendgrid_fake):
    connect(workspace, "sendgrid", SENDGRID_VALUES)
    client = client_for(owner)

    refused = client.post(url(workspace, "sendgrid/test/"))
    sendgrid_fake.add_key(SENDGRID_KEY)
    accepted = client.post(url(workspace, "sendgrid/test/"))
    page = client.get(url(workspace)).content.decode()

    assert flashes(refused) == [
        "SendGrid refused the API key (401): check that it is complete and has not been deleted."
    ]
    assert flashes(accepted)[-1] == "SendGrid accepted the API key, which may send mail."
    assert '<span class="badge badge-success">Connected</span>' in page


def test_disconnect_asks_then_deletes(owner, workspace):
    connect(workspace, "sendgrid", SENDGRID_VALUES)
    client = client_for(owner)

    confirm = client.get(url(workspace, "sendgrid/disconnect/"))
    response = client.post(url(workspace, "sendgrid/disconnect/"))

    assert "Disconnect SendGrid?" in confirm.content.decode()
    assert response.status_code == 302
    assert stored(workspace) == {}


def test_a_marketer_sees_the_page_but_changes_nothing(member, workspace, twilio_fake):
    connect(workspace, "twilio", TWILIO_VALUES)
    client = client_for(member)

    page = client.get(url(workspace))
    answers = [
        client.get(url(workspace, "sendgrid/")),
        client.post(url(workspace, "sendgrid/"), SENDGRID_VALUES),
        client.post(url(workspace, "twilio/test/")),
        client.post(url(workspace, "twilio/disconnect/")),
    ]

    assert page.status_code == 200
    assert "Admins and owners connect and test channels." in page.content.decode()
    assert "Test connection" not in page.content.decode()
    assert [answer.status_code for answer in answers] == [403] * 4
    assert list(stored(workspace)) == ["twilio"]
    assert twilio_fake.requests == []


def test_an_outsider_gets_404_everywhere(outsider, workspace):
    connect(workspace, "sendgrid", SENDGRID_VALUES)
    client = client_for(outsider)

    answers = [
        client.get(url(workspace)),
        client.get(url(workspace, "sendgrid/")),
        client.post(url(workspace, "sendgrid/test/")),
        client.post(url(workspace, "sendgrid/disconnect/")),
    ]

    assert [answer.status_code for answer in answers] == [404] * 4
    assert list(stored(workspace)) == ["sendgrid"]


def test_an_unknown_provider_or_missing_connection_is_a_404(owner, workspace):
    client = client_for(owner)

    assert client.get(url(workspace, "mailchimp/")).status_code == 404
    assert client.post(url(workspace, "fcm/test/")).status_code == 404
    assert client.get(url(workspace, "fcm/disconnect/")).status_code == 404


def test_connect_fcm_with_a_pasted_key_file(owner, workspace, fcm_fake):
    account = fcm_fake.service_account("acme-push")
    client = client_for(owner)

    bad = client.post(url(workspace, "fcm/"), {"service_account": "{oops", "project_id": ""})
    good = client.post(
        url(workspace, "fcm/"), {"service_account": json.dumps(account), "project_id": ""}
    )
    tested = client.post(url(workspace, "fcm/test/"))

    assert bad.status_code == 400
    assert "Not valid JSON: paste the whole key file" in bad.content.decode()
    assert good.status_code == 302
    assert flashes(tested)[-1] == "FCM accepted a test message for project acme-push."
