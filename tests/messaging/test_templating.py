"""Rendering a template version: context, missing values, locales, each channel's fields, email
post-processing, the limits, and the checks content passes on save."""

import threading
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from masivo.tenancy.errors import InvalidInput
from masivo.tenancy.models import Workspace
from messaging.models import Template, TemplateVersion
from messaging.templating import Budget, TemplateRenderError, content_clean, render_version
from profiles.models import Customer

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
WORKSPACE = Workspace(id=7, name="Acme", timezone="America/Mexico_City")
SID = "HX" + "0123456789abcdef" * 2


def customer(**overrides):
    values = {
        "first_name": "Ana",
        "last_name": "Ruiz",
        "email": "ana@example.com",
        "locale": "es-MX",
        "traits": {"plan": "gold"},
        "tags": {"vip": True},
        "purchase_count": 3,
        "purchase_total": Decimal("120.50"),
        "consent": {"email_marketing": {"status": "granted", "source": "form"}},
    }
    return Customer(**(values | overrides))


def version(channel, content, locales=None):
    return TemplateVersion(
        template=Template(channel=channel), number=1, content=content, locales=locales or {}
    )


def render(channel, content, *, locales=None, who=None, **kwargs):
    return render_version(
        version(channel, content, locales),
        customer=who or customer(),
        workspace=WORKSPACE,
        now=NOW,
        **kwargs,
    )


def sms(body, **kwargs):
    return render("sms", {"body": body}, **kwargs).fields["body"]


def test_the_context_has_the_customer_event_workspace_and_links():
    body = (
        "{{ customer.first_name }} {{ customer.full_name }} {{ customer.traits.plan }} "
        "{{ customer.tags.vip }} {{ customer.purchase_count }} {{ customer.purchase_total }} "
        "{{ event.order_id }} {{ workspace.name }} {{ workspace.timezone }} "
        "{{ links.unsubscribe_url }} {{ now.year }}"
    )

    rendered = sms(body, event={"order_id": "A-1"}, links={"unsubscribe_url": "https://u/1"})

    assert rendered == (
        "Ana Ana Ruiz gold True 3 120.50 A-1 Acme America/Mexico_City https://u/1 2026"
    )


def test_consent_and_identities_are_not_in_the_context():
    assert sms("[{{ customer.consent }}][{{ customer.identities }}][{{ customer.devices }}]") == (
        "[][][]"
    )


def test_a_missing_value_renders_empty_and_default_replaces_it():
    body = (
        "[{{ event.missing.deeper }}][{{ customer.last_purchase_at }}][{{ nope|default('amiga') }}]"
    )

    assert sms(body) == "[][][amiga]"


@pytest.mark.parametrize(
    ("customer_locale", "wanted", "fallback", "chosen", "text"),
    [
        ("es-MX", None, None, "es-MX", "Hola MX"),
        ("es_mx", None, None, "es-MX", "Hola MX"),
        ("es-AR", None, None, "es", "Hola"),
        ("fr-FR", None, None, "", "Hello"),
        ("fr-FR", None, "es", "es", "Hola"),
        ("", None, None, "", "Hello"),
        ("es-MX", "pt-BR", None, "", "Hello"),
        ("fr", "es", None, "es", "Hola"),
    ],
)
def test_the_locale_variant_is_exact_then_language_then_default(
    customer_locale, wanted, fallback, chosen, text
):
    rendered = render(
        "sms",
        {"body": "Hello"},
        locales={"es-MX": {"body": "Hola MX"}, "es": {"body": "Hola"}},
        who=customer(locale=customer_locale),
        locale=wanted,
        locale_fallback=fallback,
    )

    assert (rendered.locale, rendered.fields["body"]) == (chosen, text)


class _StylesheetServer(BaseHTTPRequestHandler):
    requests: list = []

    def do_GET(self):
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"p { color: green }")

    def log_message(self, *args):
        pass


@pytest.fixture
def stylesheet_url():
    server = HTTPServer(("127.0.0.1", 0), _StylesheetServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _StylesheetServer.requests = []
    yield f"http://127.0.0.1:{server.server_port}/style.css"
    server.shutdown()


def test_email_escapes_html_inlines_css_never_fetches_stylesheets_and_hides_the_preheader(
    stylesheet_url,
):
    html = (
        f'<html><head><link rel="stylesheet" href="{stylesheet_url}">'
        "<style>p { color: red }</style></head>"
        "<body><p>Hola {{ customer.first_name }}</p></body></html>"
    )

    fields = render(
        "email",
        {
            "subject": "Hi\n {{ customer.first_name }}",
            "preheader": "A <gift>",
            "html": html,
            "text": "",
        },
        who=customer(first_name="<b>Ana</b>"),
    ).fields

    assert fields["subject"] == "Hi <b>Ana</b>"
    assert fields["preheader"] == "A <gift>"
    assert fields["html"] == (
        "<html><head><style>p { color: red }</style></head><body>"
        '<div style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;'
        'opacity:0;overflow:hidden;mso-hide:all">A &lt;gift&gt;</div>'
        '<p style="color: red;">Hola &lt;b&gt;Ana&lt;/b&gt;</p></body></html>'
    )
    assert fields["text"] == "Hola <b>Ana</b>"
    assert _StylesheetServer.requests == []


def test_email_text_written_by_hand_is_kept():
    fields = render(
        "email",
        {
            "subject": "S",
            "preheader": "",
            "html": "<p>Html</p>",
            "text": "Plain {{ customer.first_name }}",
        },
    ).fields

    assert fields["text"] == "Plain Ana"


def test_push_whatsapp_and_in_app_fields():
    push = render(
        "push",
        {
            "title": "Hi {{ customer.first_name }}",
            "body": "Your {{ event.product }}",
            "image": "https://cdn.example/{{ event.sku }}.png",
            "deep_link": "acme://p/{{ event.sku }}",
            "data": {"sku": "{{ event.sku }}", "count": "{{ customer.purchase_count }}"},
        },
        event={"product": "mug", "sku": 42},
    ).fields
    whatsapp = render(
        "whatsapp",
        {"content_sid": SID, "variables": {"1": "{{ customer.first_name }}", "2": "{{ 2 * 3 }}"}},
    ).fields
    in_app = render(
        "in_app",
        {
            "title": "Hola {{ customer.first_name }}",
            "body": "",
            "image": "",
            "buttons": [{"label": "Ver {{ event.sku }}", "deep_link": "acme://p/{{ event.sku }}"}],
            "layout": "card",
            "expires_after_hours": 48,
        },
        event={"sku": 7},
    ).fields

    assert push == {
        "title": "Hi Ana",
        "body": "Your mug",
        "image": "https://cdn.example/42.png",
        "deep_link": "acme://p/42",
        "data": {"sku": "42", "count": "3"},
    }
    assert whatsapp == {"content_sid": SID, "variables": {"1": "Ana", "2": "6"}}
    assert in_app == {
        "title": "Hola Ana",
        "body": "",
        "image": "",
        "buttons": [{"label": "Ver 7", "deep_link": "acme://p/7"}],
        "layout": "card",
        "expires_after_hours": 48,
        "expires_at": "2026-12-03T15:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ({"body": "Hi {{ customer.first_name "}, "body, line 1: the template has a syntax error"),
        ({"body": "a\n{{ 1 / 0 }}"}, "body, line 2: the template divides by zero"),
        ({"body": "{{ missing() }}"}, "body, line 1: 'missing' is undefined"),
        ({"body": "{{ 'a' + 1 }}"}, "body, line 1: the template cannot render: "),
    ],
)
def test_a_template_that_cannot_render_says_where_and_why(content, reason):
    with pytest.raises(TemplateRenderError) as raised:
        render("sms", content)

    assert raised.value.reason.startswith(reason), raised.value.reason
    assert raised.value.field == "body"


def test_a_locale_variants_failure_names_the_locale():
    with pytest.raises(TemplateRenderError) as raised:
        render("sms", {"body": "ok"}, locales={"es": {"body": "{{ 1 // 0 }}"}})

    assert raised.value.reason == "body (es), line 1: the template divides by zero"


def test_the_output_limit_stops_a_huge_output():
    body = "{% for i in range(10000) %}{{ 'x' * 100 }}{% endfor %}"

    with pytest.raises(TemplateRenderError) as raised:
        sms(body)

    assert raised.value.reason == "body: the result is longer than 256 KB"


def test_captured_blocks_count_towards_the_limit():
    body = (
        "{% set s %}{% for i in range(10000) %}{{ 'x' * 200 }}{% endfor %}{% endset %}"
        "{{ s|length }}"
    )

    with pytest.raises(TemplateRenderError) as raised:
        sms(body)

    assert raised.value.reason == "body, line 1: rendering produced more than 1024 KB of text"


def test_the_time_limit_is_checked_inside_loops_on_an_injected_clock():
    ticks = iter(range(1_000_000))
    limits = Budget(seconds=50, clock=lambda: next(ticks))

    with pytest.raises(TemplateRenderError) as raised:
        sms("{% for i in range(100) %}{% endfor %}done", limits=limits)

    assert raised.value.reason == "body, line 1: rendering took longer than 50 s"


def test_the_time_limit_stops_a_real_slow_template():
    body = "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"

    with pytest.raises(TemplateRenderError) as raised:
        sms(body, limits=Budget(seconds=0.05))

    assert raised.value.reason == "body, line 1: rendering took longer than 0.05 s"


# Checks on save


def test_content_gets_every_field_of_its_channel():
    content, locales = content_clean(
        "email", {"subject": "Hi", "html": "<p>x</p>"}, {"es_MX": {"subject": "Hola"}}
    )

    assert content == {"subject": "Hi", "preheader": "", "html": "<p>x</p>", "text": ""}
    assert locales == {"es-MX": {"subject": "Hola"}}


@pytest.mark.parametrize(
    ("channel", "content", "locales", "field", "message"),
    [
        ("email", {"html": "<p>x</p>"}, None, "content.subject", "required"),
        ("email", {"subject": " ", "html": "x"}, None, "content.subject", "required"),
        ("email", {"subject": "S", "html": "x", "body": "?"}, None, "content.body", "not a field"),
        ("email", {"subject": "{{ x ", "html": "x"}, None, "content.subject", "does not compile"),
        ("email", {"subject": "S", "html": "{% for %}"}, None, "content.html", "does not compile"),
        ("email", {"subject": "S", "html": "{{ x|pprint }}"}, None, "content.html", "No filter"),
        ("email", {"subject": 3, "html": "x"}, None, "content.subject", "must be text"),
        ("email", {"subject": "S", "html": "x"}, {"e!": {}}, "locales.e!", "a locale is like"),
        (
            "email",
            {"subject": "S", "html": "x"},
            {"es": {"subject": "{% if %}"}},
            "locales.es.subject",
            "does not compile",
        ),
        ("email", [], None, "content", "must be an object"),
        ("whatsapp", {"content_sid": "HX12"}, None, "content.content_sid", "HX followed by 32"),
        (
            "whatsapp",
            {"content_sid": SID, "variables": {"name": "x"}},
            None,
            "content.variables.name",
            "numbered",
        ),
        (
            "whatsapp",
            {"content_sid": SID, "variables": {"1": "{{"}},
            None,
            "content.variables.1",
            "does not compile",
        ),
        (
            "push",
            {"title": "T", "body": "B", "data": {"google.x": "1"}},
            None,
            "content.data.google.x",
            "FCM reserves",
        ),
        (
            "push",
            {"title": "T", "body": "B", "data": {"k": 1}},
            None,
            "content.data.k",
            "must be text",
        ),
        ("in_app", {"title": "T", "layout": "popup"}, None, "content.layout", "one of modal"),
        (
            "in_app",
            {"title": "T", "buttons": [{"label": ""}]},
            None,
            "content.buttons.0.label",
            "required",
        ),
        (
            "in_app",
            {"title": "T", "buttons": [{"label": "a", "url": "x"}]},
            None,
            "content.buttons.0",
            "a button is",
        ),
        (
            "in_app",
            {"title": "T", "expires_after_hours": 0},
            None,
            "content.expires_after_hours",
            "between 1",
        ),
        (
            "in_app",
            {"title": "T", "expires_after_hours": "2"},
            None,
            "content.expires_after_hours",
            "whole number",
        ),
        ("fax", {}, None, "channel", "one of email"),
    ],
)
def test_bad_content_is_refused_naming_the_field(channel, content, locales, field, message):
    with pytest.raises(InvalidInput) as raised:
        content_clean(channel, content, locales)

    assert raised.value.field == field
    assert message in raised.value.message
