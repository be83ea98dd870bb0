"""Templates in the dashboard: list, create and edit (a new version), history, the live preview
and the email preview's own sandboxed page with its headers."""

import re

import pytest

from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from messaging import template_services
from messaging.models import Template, TemplateVersion
from messaging.views.templates import EMAIL_PREVIEW_CSP
from tests.dashboard.conftest import client_for
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

MARKETER = Actor(role=Role.MARKETER, user_id=1)
HTML = (
    "<html><head><style>p { color: red }</style></head>"
    "<body><p>Hola {{ customer.first_name }}</p><script>alert(1)</script></body></html>"
)


def url(workspace, suffix=""):
    return f"/w/{workspace.id}/messaging/templates/{suffix}"


@pytest.fixture
def ana(workspace):
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, first_name="Ana")


@pytest.fixture
def email_template(workspace):
    with workspace_scope(workspace.id):
        return template_services.template_create(
            workspace=workspace,
            name="Welcome",
            channel="email",
            content={"subject": "Hola {{ customer.first_name }}", "html": HTML},
            actor=MARKETER,
        )


def versions(workspace, template_id):
    with workspace_scope(workspace.id):
        return list(
            TemplateVersion.objects.filter(template_id=template_id)
            .order_by("number")
            .values_list("number", "content__subject")
        )


def test_the_list_shows_templates_and_the_nav_links_it(member, workspace, email_template):
    response = client_for(member).get(url(workspace))

    content = response.content.decode()
    assert response.status_code == 200
    assert f'href="{url(workspace, f"{email_template.id}/")}">Welcome</a>' in content
    assert f'href="{url(workspace)}"><' in content and "<span>Templates</span>" in content
    assert f'href="{url(workspace, "new/push/")}">New Push template</a>' in content


def test_create_an_email_template(member, workspace):
    response = client_for(member).post(
        url(workspace, "new/email/"),
        {
            "name": "Promo",
            "subject": "Hi {{ customer.first_name }}",
            "html": "<p>x</p>",
            "layout": "",
        },
    )

    with workspace_scope(workspace.id):
        template = Template.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url(workspace, f"{template.id}/")
    assert versions(workspace, template.id) == [(1, "Hi {{ customer.first_name }}")]


def test_a_bad_field_is_shown_on_it(member, workspace):
    response = client_for(member).post(
        url(workspace, "new/email/"), {"name": "Promo", "subject": "{{ oops", "html": "<p>x</p>"}
    )

    content = response.content.decode()
    assert response.status_code == 400
    assert re.search(r'has-error">\s*<label class="field-label" for="id_subject">', content)
    assert "Does not compile as a template (line 1)" in content
    with workspace_scope(workspace.id):
        assert Template.objects.count() == 0


def test_saving_changed_content_writes_a_version_and_history_lists_both(
    member, workspace, email_template
):
    client = client_for(member)
    response = client.post(
        url(workspace, f"{email_template.id}/"),
        {"name": "Welcome", "subject": "Hello {{ customer.first_name }}", "html": HTML},
    )
    history = client.get(url(workspace, f"{email_template.id}/versions/")).content.decode()

    assert response.status_code == 302
    assert versions(workspace, email_template.id) == [
        (1, "Hola {{ customer.first_name }}"),
        (2, "Hello {{ customer.first_name }}"),
    ]
    assert history.index('data-version="2"') < history.index('data-version="1"')


def test_saving_unchanged_content_writes_no_version(member, workspace, email_template):
    client_for(member).post(
        url(workspace, f"{email_template.id}/"),
        {"name": "Welcome 2", "subject": "Hola {{ customer.first_name }}", "html": HTML},
    )

    assert versions(workspace, email_template.id) == [(1, "Hola {{ customer.first_name }}")]


def test_the_email_preview_is_its_own_sandboxed_document(member, workspace, email_template, ana):
    response = client_for(member).get(
        url(workspace, f"{email_template.id}/preview/email/"), {"customer": ana.id}
    )

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == EMAIL_PREVIEW_CSP
    assert EMAIL_PREVIEW_CSP == (
        "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
        "img-src https: data:; style-src 'unsafe-inline' https:; font-src https: data:; "
        "frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response.content.decode() == (
        '<html><head><base target="_blank"><style>p { color: red }</style></head>'
        '<body><p style="color: red;">Hola Ana</p><script>alert(1)</script></body></html>'
    )


def test_the_live_preview_renders_the_draft_and_frames_the_email(member, workspace, ana):
    client = client_for(member)
    response = client.post(
        url(workspace, "preview/email/"),
        {
            "name": "Draft",
            "subject": "Hi {{ customer.first_name }}",
            "html": "<p>{{ customer.first_name }} likes {{ event.product }}</p>",
            "preview_customer": ana.id,
            "preview_event": '{"product": "mugs"}',
        },
        HTTP_HX_REQUEST="true",
    )
    content = response.content.decode()
    frame = re.search(
        r'<iframe [^>]*src="([^"]+)" sandbox="allow-popups allow-popups-to-escape-sandbox"', content
    )
    framed = client.get(frame.group(1))

    assert response.status_code == 200
    assert "<dd data-preview-subject>Hi Ana</dd>" in content
    assert framed.status_code == 200
    assert framed["Content-Security-Policy"] == EMAIL_PREVIEW_CSP
    assert "<p>Ana likes mugs</p>" in framed.content.decode()


def test_the_live_preview_says_why_it_cannot_render(member, workspace, ana):
    response = client_for(member).post(
        url(workspace, "preview/sms/"),
        {"name": "Draft", "body": "{{ 1 / 0 }}", "preview_customer": ana.id},
    )

    assert (
        '<p class="field-error" data-preview-problem>body, line 1: the template divides by zero</p>'
        in (response.content.decode())
    )


def test_push_preview_is_a_device_mockup(member, workspace, ana):
    response = client_for(member).post(
        url(workspace, "preview/push/"),
        {
            "name": "D",
            "title": "Hi {{ customer.first_name }}",
            "body": "<b>x</b>",
            "data": '{"k": "v"}',
            "preview_customer": ana.id,
        },
    )

    content = response.content.decode()
    assert '<div class="strong">Hi Ana</div>' in content
    assert "<div>&lt;b&gt;x&lt;/b&gt;</div>" in content


def test_an_outsider_gets_404s(outsider, workspace, email_template, ana):
    client = client_for(outsider)

    answers = [
        client.get(url(workspace)),
        client.get(url(workspace, f"{email_template.id}/")),
        client.get(url(workspace, f"{email_template.id}/preview/email/"), {"customer": ana.id}),
    ]

    assert [answer.status_code for answer in answers] == [404, 404, 404]


def test_a_viewer_cannot_save(viewer, workspace, email_template):
    response = client_for(viewer).post(
        url(workspace, f"{email_template.id}/"), {"name": "X", "subject": "S", "html": "h"}
    )

    assert response.status_code == 403
    assert versions(workspace, email_template.id) == [(1, "Hola {{ customer.first_name }}")]


def test_send_a_test_from_the_editor(member, workspace, email_template, ana):
    from messaging.models import Message

    client = client_for(member)
    editor = client.get(url(workspace, f"{email_template.id}/")).content.decode()
    send = url(workspace, f"{email_template.id}/test-send/")

    sent = client.post(send, {"customer": ana.id, "to": "qa@acme.example"})
    refused = client.post(send, {"customer": ana.id, "to": "not an email"})
    nobody = client.post(send, {"customer": ""})

    assert "Send a test" in editor and send in editor
    assert sent.status_code == 200
    with workspace_scope(workspace.id):
        message = Message.objects.get()
    assert (message.address, message.origin["source"]) == ("qa@acme.example", "test")
    assert "test send to qa@acme.example" in sent.content.decode()
    assert f"/messages/log/{message.id}/" in sent.content.decode()
    assert refused.status_code == 400 and "alert-error" in refused.content.decode()
    assert nobody.status_code == 400
    assert "Choose a customer of this workspace." in nobody.content.decode()
