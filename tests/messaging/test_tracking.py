"""Email open and click tracking: links rewritten only with consent, signed tokens, the redirect
and the pixel recording engagement, bad tokens refused (never an open redirect)."""

import pytest
from django.core import signing
from django.test import Client, override_settings

from masivo.tenancy.context import workspace_scope
from messaging import tracking
from messaging.models import Message, MessageStatusChange
from profiles.models import Event
from profiles.services.settings import profile_settings_get
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public_url")]

PUBLIC = "https://cdp.example.com"


@pytest.fixture
def public_url():
    with override_settings(MASIVO_PUBLIC_URL=PUBLIC):
        yield


@pytest.fixture
def message(workspace):
    with workspace_scope(workspace.id):
        customer = CustomerFactory(workspace=workspace, email="ana@example.com")
        return Message.objects.create(
            workspace=workspace,
            customer=customer,
            channel="email",
            kind="marketing",
            dedupe_key="api:1",
            address="ana@example.com",
            status="delivered",
        )


HTML = (
    "<html><body><p>Hi &amp; welcome</p>\n"
    '<a class="btn" href="https://shop.example/sale?a=1&amp;b=2">Sale</a>\n'
    "<a href='http://shop.example/x'>X</a> <a href=\"mailto:help@acme.example\">Mail</a>\n"
    '<a href="javascript:alert(1)">J</a> <a href="#top">Top</a> <a name="n">N</a>\n'
    f'<a href="{PUBLIC}/m/unsubscribe/abc">Unsubscribe</a>\n'
    "</BODY></html>"
)


def links(out: str) -> list[str]:
    from html.parser import HTMLParser

    found = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "a" and "href" in attrs:
                found.append(attrs["href"])
            if tag == "img":
                found.append(attrs["src"])

    Parser().feed(out)
    return found


def test_without_consent_the_html_is_unchanged(message):
    assert tracking.prepare_email_html(message, HTML, may_track=False) == HTML


@pytest.mark.parametrize(
    ("regime", "status", "allowed"),
    [
        ("opt_in", "granted", True),
        ("opt_in", None, False),
        ("opt_in", "denied", False),
        ("opt_out", None, True),
        ("opt_out", "denied", False),
    ],
)
def test_link_tracking_consent_decides_whether_links_are_tracked(
    workspace, message, regime, status, allowed
):
    with workspace_scope(workspace.id):
        settings = profile_settings_get(workspace=workspace)
        settings.consent_regime = regime
        customer = message.customer
        customer.consent = {"link_tracking": {"status": status}} if status else {}
        may_track = tracking.tracking_allowed(customer, settings=settings)
    out = tracking.prepare_email_html(message, HTML, may_track=may_track)
    assert may_track is allowed
    assert (out != HTML) is allowed
    assert ("/m/c/" in out, "/m/o/" in out) == (allowed, allowed)


def test_with_consent_http_links_are_signed_redirects_and_a_pixel_is_added(message):
    out = tracking.prepare_email_html(message, HTML, may_track=True)
    found = links(out)
    assert found[2:6] == [
        "mailto:help@acme.example",
        "javascript:alert(1)",
        "#top",
        f"{PUBLIC}/m/unsubscribe/abc",
    ]
    sale, plain, pixel = found[0], found[1], found[6]
    assert sale.startswith(f"{PUBLIC}/m/c/")
    assert signing.loads(sale.removeprefix(f"{PUBLIC}/m/c/"), salt=tracking.CLICK_SALT) == {
        "w": message.workspace_id,
        "m": message.id,
        "u": "https://shop.example/sale?a=1&b=2",
    }
    assert signing.loads(plain.removeprefix(f"{PUBLIC}/m/c/"), salt=tracking.CLICK_SALT)["u"] == (
        "http://shop.example/x"
    )
    assert pixel.startswith(f"{PUBLIC}/m/o/") and pixel.endswith(".gif")
    # Everything else is kept as written; the pixel goes before </body>.
    assert out.startswith('<html><body><p>Hi &amp; welcome</p>\n<a class="btn" href=')
    assert '<a name="n">N</a>' in out
    assert out.endswith(" /></BODY></html>")
    assert out.count("<img ") == 1


def test_a_fragment_without_body_gets_the_pixel_at_the_end(message):
    out = tracking.prepare_email_html(message, '<a href="https://a.example">A</a>', may_track=True)
    assert out.startswith(f'<a href="{PUBLIC}/m/c/')
    assert out.endswith('alt="" style="display:block;width:1px;height:1px;border:0" />')


def state(workspace, message):
    with workspace_scope(workspace.id):
        message.refresh_from_db()
        history = list(
            MessageStatusChange.objects.filter(message=message).values_list("status", "detail")
        )
        events = list(
            Event.objects.order_by("id").values_list("name", "properties__url", "message_id")
        )
    return message.status, history, events


def test_a_click_redirects_and_records_clicked_once_and_an_event_per_url(workspace, message):
    out = tracking.prepare_email_html(message, HTML, may_track=True)
    sale, plain = links(out)[:2]
    client = Client()
    response = client.get(sale.removeprefix(PUBLIC))
    assert (response.status_code, response["Location"]) == (
        302,
        "https://shop.example/sale?a=1&b=2",
    )
    client.get(sale.removeprefix(PUBLIC))
    client.get(plain.removeprefix(PUBLIC))
    status, history, events = state(workspace, message)
    assert status == "clicked"
    assert history == [("clicked", "clicked https://shop.example/sale?a=1&b=2")]
    assert [(name, url) for name, url, _ in events] == [
        ("Message Clicked", "https://shop.example/sale?a=1&b=2"),
        ("Message Clicked", "http://shop.example/x"),
    ]


def test_the_pixel_answers_a_gif_and_records_the_open(workspace, message):
    pixel = links(tracking.prepare_email_html(message, HTML, may_track=True))[6]
    response = Client().get(pixel.removeprefix(PUBLIC))
    assert (response.status_code, response["Content-Type"]) == (200, "image/gif")
    assert response.content == tracking.PIXEL_GIF
    assert response.content.startswith(b"GIF89a")
    Client().get(pixel.removeprefix(PUBLIC))
    status, history, events = state(workspace, message)
    assert (status, history) == ("opened", [("opened", "open pixel")])
    assert [name for name, _, _ in events] == ["Message Opened"]


def test_bad_tokens_are_404s_and_never_redirect(workspace, message):
    client = Client()
    forged = signing.dumps(
        {"w": message.workspace_id, "m": message.id, "u": "https://evil.example"}
    )
    wrong_salt_open = tracking.open_token(message)
    javascript = signing.dumps(
        {"w": message.workspace_id, "m": message.id, "u": "javascript:alert(1)"},
        salt=tracking.CLICK_SALT,
    )
    for token in ["nope", forged, wrong_salt_open, javascript, "a" * 300]:
        response = client.get(f"/m/c/{token}")
        assert response.status_code == 404, token
        assert "Location" not in response
    click = tracking.click_token(message, "https://shop.example")
    for token in ["nope", click]:
        assert client.get(f"/m/o/{token}.gif").status_code == 404
    assert state(workspace, message)[0] == "delivered"


def test_a_token_of_another_workspace_cannot_reach_this_one(workspace, other_workspace, message):
    # A token signed for another workspace id finds no message there, and changes nothing here.
    token = signing.dumps(
        {"w": other_workspace.id, "m": message.id, "u": "https://shop.example"},
        salt=tracking.CLICK_SALT,
        compress=True,
    )
    response = Client().get(f"/m/c/{token}")
    assert (response.status_code, response["Location"]) == (302, "https://shop.example")
    assert state(workspace, message)[0] == "delivered"
