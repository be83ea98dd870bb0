"""Unsubscribe links (signed, non-expiring), RFC 8058 headers, the public unsubscribe page with
its one-click POST, and the preference centre."""

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.utils import timezone

from masivo.tenancy.context import workspace_scope
from messaging import unsubscribe
from messaging.models import Message
from messaging.policy.vocabulary import CHANNEL_PURPOSE
from profiles.models import ConsentChange, Customer, CustomerMerge
from profiles.services.customers import customer_erase
from profiles.services.devices import customer_token_issue
from profiles.services.settings import profile_settings_update
from tests.factories import CustomerFactory
from tests.profiles.helpers import get, rows

pytestmark = pytest.mark.django_db

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"
NOT_VALID = "This link is not valid"
GONE = "We no longer hold your profile"


@pytest.fixture
def ana(workspace):
    with workspace_scope(workspace.id):
        return CustomerFactory(
            workspace=workspace,
            external_id="ana",
            consent={"email_marketing": {"status": "granted", "source": "signup"}},
        )


def make_message(workspace, customer, *, channel="email", kind="marketing", key="campaign:1:1"):
    with workspace_scope(workspace.id):
        return Message.objects.create(
            workspace=workspace,
            customer=customer,
            channel=channel,
            kind=kind,
            dedupe_key=key,
            status="sent",
        )


@pytest.fixture
def email(workspace, ana):
    return make_message(workspace, ana)


@pytest.fixture
def browser():
    """A mailbox provider or a person's browser: no session, and CSRF enforced as in production."""
    return Client(enforce_csrf_checks=True)


def token_of(message) -> str:
    return unsubscribe.link_token_issue(
        workspace_id=message.workspace_id,
        customer_id=message.customer_id,
        message_id=message.id,
        purpose=CHANNEL_PURPOSE[message.channel],
    )


def unsubscribe_path(message) -> str:
    return f"/m/u/{token_of(message)}"


def preferences_path(message) -> str:
    return f"/m/preferences/{token_of(message)}"


def consent_changes(workspace) -> list[tuple]:
    return rows(workspace, ConsentChange, "customer_id", "purpose", "status", "source")


def page(response) -> str:
    return response.content.decode()


# -- tokens and links ---------------------------------------------------------------------------


def test_a_token_names_the_workspace_customer_message_and_purpose(email):
    link = unsubscribe.link_token_read(token_of(email))

    assert link == unsubscribe.LinkToken(
        workspace_id=email.workspace_id,
        customer_id=email.customer_id,
        message_id=email.id,
        purpose="email_marketing",
    )
    assert link.unsubscribe_source == f"unsubscribe:message:{email.id}"


def test_a_token_does_not_expire(email):
    token = token_of(email)

    with time_machine.travel(timezone.now() + timedelta(days=3650), tick=False):
        assert unsubscribe.link_token_read(token).message_id == email.id


def test_the_same_message_always_gets_the_same_token(email):
    assert token_of(email) == token_of(email)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature
        lambda token: "x" + token,  # the payload
        lambda token: token.split(":")[0],  # no signature
        lambda token: "",
        lambda token: "not-a-token",
        lambda token: token + ":extra",
    ],
)
def test_an_altered_token_reads_as_nothing(email, tamper):
    assert unsubscribe.link_token_read(tamper(token_of(email))) is None


def test_a_token_signed_for_something_else_reads_as_nothing(workspace, ana):
    """Same SECRET_KEY, another salt: a customer token of the device API is no unsubscribe link."""
    assert unsubscribe.link_token_read(customer_token_issue(customer=ana)) is None
    forged = signing.Signer(salt="another").sign_object(
        {"w": workspace.id, "c": ana.id, "m": None, "p": "email_marketing"}
    )
    assert unsubscribe.link_token_read(forged) is None


@pytest.mark.parametrize(
    "payload",
    [
        {"w": "1", "c": 1, "m": None, "p": "email_marketing"},
        {"w": 1, "c": True, "m": None, "p": "email_marketing"},
        {"w": 1, "c": 1, "m": -3, "p": "email_marketing"},
        {"w": 1, "c": 1, "m": None, "p": "advertising"},
        [1, 1, 1, "email_marketing"],
    ],
)
def test_a_signed_payload_of_the_wrong_shape_reads_as_nothing(payload):
    token = signing.Signer(salt="masivo.messaging.unsubscribe").sign_object(payload)

    assert unsubscribe.link_token_read(token) is None


def test_message_links_are_absolute_on_the_public_url(settings, email):
    settings.MASIVO_PUBLIC_URL = "https://news.acme.example"
    token = token_of(email)

    assert unsubscribe.message_links(email) == {
        "unsubscribe_url": f"https://news.acme.example/m/u/{token}",
        "preferences_url": f"https://news.acme.example/m/preferences/{token}",
    }


@pytest.mark.parametrize(
    ("channel", "purpose"),
    [("push", "push_notifications"), ("whatsapp", "whatsapp_marketing"), ("sms", "sms_marketing")],
)
def test_each_channels_link_unsubscribes_from_its_purpose(workspace, ana, channel, purpose):
    message = make_message(workspace, ana, channel=channel)

    url = unsubscribe.message_links(message)["unsubscribe_url"]

    assert unsubscribe.link_token_read(url.rsplit("/", 1)[1]).purpose == purpose


def test_an_in_app_messages_unsubscribe_link_is_the_preference_centre(workspace, ana):
    message = make_message(workspace, ana, channel="in_app")

    links = unsubscribe.message_links(message)

    assert links["unsubscribe_url"] == links["preferences_url"]
    assert links["preferences_url"].startswith("http://localhost:8000/m/preferences/")


# -- RFC 8058 headers ---------------------------------------------------------------------------


def test_a_marketing_email_carries_the_one_click_headers(settings, email):
    settings.MASIVO_PUBLIC_URL = "https://news.acme.example"

    assert unsubscribe.unsubscribe_headers(email) == {
        "List-Unsubscribe": f"<https://news.acme.example/m/u/{token_of(email)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


@pytest.mark.parametrize(
    ("channel", "kind"),
    [("email", "transactional"), ("push", "marketing"), ("whatsapp", "marketing")],
)
def test_other_messages_carry_no_unsubscribe_headers(workspace, ana, channel, kind):
    message = make_message(workspace, ana, channel=channel, kind=kind)

    assert unsubscribe.unsubscribe_headers(message) == {}


# -- the unsubscribe page -----------------------------------------------------------------------


def test_the_page_asks_before_unsubscribing_and_a_get_changes_nothing(browser, workspace, email):
    response = browser.get(unsubscribe_path(email))

    assert response.status_code == 200
    html = page(response)
    assert "<title>Unsubscribe · Acme</title>" in html
    assert "Unsubscribe from marketing emails" in html
    assert "You will no longer receive marketing emails from Acme." in html
    assert '<form method="post">' in html
    assert f'href="{preferences_path(email)}"' in html
    assert consent_changes(workspace) == []


def test_the_button_unsubscribes_with_the_message_as_source(browser, workspace, ana, email):
    response = browser.post(unsubscribe_path(email))

    assert response.status_code == 200
    assert "You are unsubscribed" in page(response)
    assert consent_changes(workspace) == [
        (ana.id, "email_marketing", "denied", f"unsubscribe:message:{email.id}")
    ]
    consent = get(workspace, Customer, id=ana.id).consent
    assert consent["email_marketing"]["status"] == "denied"
    assert consent["email_marketing"]["source"] == f"unsubscribe:message:{email.id}"


def test_the_rfc_8058_one_click_post_unsubscribes_without_a_csrf_token(
    browser, workspace, ana, email
):
    response = browser.post(unsubscribe_path(email), ONE_CLICK_BODY, content_type=FORM)

    assert response.status_code == 200
    assert consent_changes(workspace) == [
        (ana.id, "email_marketing", "denied", f"unsubscribe:message:{email.id}")
    ]


def test_unsubscribing_again_records_nothing_more(browser, workspace, ana, email):
    browser.post(unsubscribe_path(email), ONE_CLICK_BODY, content_type=FORM)

    again = browser.post(unsubscribe_path(email), ONE_CLICK_BODY, content_type=FORM)
    revisited = browser.get(unsubscribe_path(email))

    assert again.status_code == 200
    assert "You are already unsubscribed: Acme sends you no marketing emails." in page(revisited)
    assert '<form method="post">' not in page(revisited)
    assert consent_changes(workspace) == [
        (ana.id, "email_marketing", "denied", f"unsubscribe:message:{email.id}")
    ]


def test_unsubscribing_changes_only_the_links_purpose(browser, workspace, ana):
    with workspace_scope(workspace.id):
        Customer.objects.filter(id=ana.id).update(
            consent={
                "email_marketing": {"status": "granted"},
                "sms_marketing": {"status": "granted"},
            }
        )
    sms = make_message(workspace, ana, channel="sms", key="campaign:2:1")
    assert "Unsubscribe from text messages (SMS)" in page(browser.get(unsubscribe_path(sms)))

    browser.post(unsubscribe_path(sms))

    consent = get(workspace, Customer, id=ana.id).consent
    assert consent["email_marketing"] == {"status": "granted"}
    assert consent["sms_marketing"]["status"] == "denied"
    assert consent_changes(workspace) == [
        (ana.id, "sms_marketing", "denied", f"unsubscribe:message:{sms.id}")
    ]


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "eyJ3IjoxLCJjIjoxLCJtIjoxLCJwIjoiZW1haWxfbWFya2V0aW5nIn0:forgedSignature",
        "%00",
        "x" * 5000,
    ],
)
def test_a_bad_token_is_a_404_page_that_changes_nothing(browser, workspace, method, token):
    for path in (f"/m/u/{token}", f"/m/preferences/{token}"):
        response = getattr(browser, method)(path)

        assert response.status_code == 404
        assert NOT_VALID in page(response)
    assert consent_changes(workspace) == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_token_is_a_404(browser, workspace, email, method):
    token = token_of(email)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")

    response = browser.generic(method.upper(), f"/m/u/{tampered}", ONE_CLICK_BODY, FORM)

    assert response.status_code == 404
    assert NOT_VALID in page(response)
    assert consent_changes(workspace) == []


def test_a_token_naming_a_workspace_that_is_gone_is_a_404(browser, ana):
    token = unsubscribe.link_token_issue(
        workspace_id=2_000_000_000, customer_id=ana.id, message_id=1, purpose="email_marketing"
    )

    response = browser.post(f"/m/u/{token}")

    assert response.status_code == 404


def test_a_token_for_another_workspace_never_reaches_this_workspaces_customer(
    browser, workspace, other_workspace, ana
):
    """Naming ana under Globex: the lookup runs in Globex's scope, which has no such customer."""
    token = unsubscribe.link_token_issue(
        workspace_id=other_workspace.id, customer_id=ana.id, message_id=1, purpose="email_marketing"
    )

    response = browser.post(f"/m/u/{token}", ONE_CLICK_BODY, content_type=FORM)

    assert response.status_code == 200
    assert GONE in page(response)
    assert "Globex" in page(response)
    assert get(workspace, Customer, id=ana.id).consent["email_marketing"]["status"] == "granted"
    assert consent_changes(workspace) == consent_changes(other_workspace) == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_erased_customers_link_shows_a_friendly_page(browser, workspace, ana, email, method):
    path = unsubscribe_path(email)
    with workspace_scope(workspace.id):
        customer_erase(customer=ana, actor="test")

    for url in (path, path.replace("/m/u/", "/m/preferences/")):
        response = getattr(browser, method)(url)

        assert response.status_code == 200
        assert GONE in page(response)
        assert "Acme has deleted the profile this link was for" in page(response)
    assert consent_changes(workspace) == []


def test_a_link_of_a_profile_merged_into_another_unsubscribes_the_survivor(
    browser, workspace, ana, email
):
    path = unsubscribe_path(email)
    with workspace_scope(workspace.id):
        survivor = CustomerFactory(workspace=workspace, external_id="ana-2")
        CustomerMerge.objects.create(
            workspace=workspace,
            winner=survivor,
            loser_id=ana.id,
            loser_snapshot={},
            reason="identify",
            actor="test",
        )
        Customer.objects.filter(id=ana.id).delete()

    response = browser.post(path)

    assert response.status_code == 200
    assert consent_changes(workspace) == [
        (survivor.id, "email_marketing", "denied", f"unsubscribe:message:{email.id}")
    ]


def test_an_in_app_token_on_the_unsubscribe_route_opens_the_preference_centre(
    browser, workspace, ana
):
    message = make_message(workspace, ana, channel="in_app")
    token = token_of(message)

    response = browser.post(f"/m/u/{token}")

    assert response.status_code == 302
    assert response["Location"] == f"/m/preferences/{token}"
    assert consent_changes(workspace) == []


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_are_refused(browser, workspace, email, method):
    response = getattr(browser, method)(unsubscribe_path(email))

    assert response.status_code == 405
    assert consent_changes(workspace) == []


def test_the_pages_need_no_sign_in_and_are_not_cached(browser, email):
    response = browser.get(unsubscribe_path(email))

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert '<meta name="robots" content="noindex, nofollow">' in page(response)


# -- the preference centre ----------------------------------------------------------------------


def checked(html: str) -> dict[str, bool]:
    return {
        purpose: f'name="granted" value="{purpose}" checked' in html
        for purpose in unsubscribe.PREFERENCE_PURPOSES
    }


def save(browser, message, granted: list[str], shown=tuple(unsubscribe.PREFERENCE_PURPOSES)):
    return browser.post(preferences_path(message), {"purpose": list(shown), "granted": granted})


def test_the_preference_centre_lists_each_marketing_purpose_as_the_policy_reads_it(browser, email):
    response = browser.get(preferences_path(email))

    assert response.status_code == 200
    html = page(response)
    assert "<title>Your preferences · Acme</title>" in html
    assert "Choose the messages Acme may send you:" in html
    for label in ("Marketing emails", "Push notifications", "WhatsApp messages", "Text messages"):
        assert label in html
    # Opt-in (the default regime): only the granted purpose allows contact.
    assert checked(html) == {
        "email_marketing": True,
        "push_notifications": False,
        "whatsapp_marketing": False,
        "sms_marketing": False,
    }


def test_under_opt_out_a_purpose_not_recorded_shows_as_allowed(browser, workspace, ana, email):
    with workspace_scope(workspace.id):
        profile_settings_update(workspace=workspace, changes={"consent_regime": "opt_out"})
        Customer.objects.filter(id=ana.id).update(consent={"sms_marketing": {"status": "denied"}})

    html = page(browser.get(preferences_path(email)))

    assert checked(html) == {
        "email_marketing": True,
        "push_notifications": True,
        "whatsapp_marketing": True,
        "sms_marketing": False,
    }


def test_saving_records_each_changed_choice_as_a_consent_change(browser, workspace, ana, email):
    response = save(browser, email, granted=["push_notifications", "whatsapp_marketing"])

    assert response.status_code == 200
    html = page(response)
    assert "Your choices are saved." in html
    assert checked(html) == {
        "email_marketing": False,
        "push_notifications": True,
        "whatsapp_marketing": True,
        "sms_marketing": False,
    }
    # sms was not allowed and stays not allowed: nothing recorded for it.
    assert consent_changes(workspace) == [
        (ana.id, "email_marketing", "denied", "preference-centre"),
        (ana.id, "push_notifications", "granted", "preference-centre"),
        (ana.id, "whatsapp_marketing", "granted", "preference-centre"),
    ]


def test_saving_the_same_choices_again_records_nothing(browser, workspace, email):
    save(browser, email, granted=["push_notifications"])
    before = consent_changes(workspace)

    save(browser, email, granted=["push_notifications"])

    assert consent_changes(workspace) == before


def test_under_opt_out_keeping_an_allowed_purpose_records_nothing(browser, workspace, email):
    with workspace_scope(workspace.id):
        profile_settings_update(workspace=workspace, changes={"consent_regime": "opt_out"})

    save(browser, email, granted=list(unsubscribe.PREFERENCE_PURPOSES))

    assert consent_changes(workspace) == []


def test_only_the_purposes_the_form_showed_change(browser, workspace, ana, email):
    """A post without the hidden `purpose` fields (a one-click body sent here) changes nothing;
    purposes outside the preference centre are ignored."""
    browser.post(preferences_path(email), ONE_CLICK_BODY, content_type=FORM)
    save(browser, email, granted=[], shown=["advertising", "link_tracking", "sms_marketing"])

    assert consent_changes(workspace) == []
    assert get(workspace, Customer, id=ana.id).consent["email_marketing"]["status"] == "granted"
