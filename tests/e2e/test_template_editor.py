"""The template editor in a real browser: write an email with personalization, preview it for a
customer, and see the name inside the sandboxed iframe."""

import pytest
from playwright.sync_api import expect

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from messaging.models import Template, TemplateVersion
from tests.e2e.test_dashboard import sign_in
from tests.factories import CustomerFactory, MemberFactory, OrganizationFactory, WorkspaceFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HTML = (
    "<html><head><style>h1 { color: #0a7 }</style></head><body>"
    "<h1>Hola {{ customer.first_name }}</h1><p>Tu {{ event.product|default('pedido') }} te espera."
    "</p><script>document.body.dataset.ran = 'yes'</script></body></html>"
)


def test_write_an_email_template_and_preview_it_for_a_customer(page, screenshot):
    member = MemberFactory(organization=OrganizationFactory(name="Acme Inc"), role=Role.MARKETER)
    workspace = WorkspaceFactory(name="Acme", organization=member.organization)
    with workspace_scope(workspace.id):
        ana = CustomerFactory(workspace=workspace, first_name="Ana", email="ana@example.com")

    sign_in(page, member.user.email)
    page.click("text=Templates")
    page.click("text=New Email template")
    page.fill("#id_name", "Welcome")
    page.fill("#id_subject", "Hola {{ customer.first_name }}")
    page.fill("#id_html", HTML)
    page.select_option("#preview-customer", str(ana.id))
    page.fill("#preview-event", '{"product": "taza"}')
    page.click("#preview-button")

    expect(page.locator("[data-preview-subject]")).to_have_text("Hola Ana")
    frame_element = page.locator("iframe.email-preview")
    expect(frame_element).to_have_attribute(
        "sandbox", "allow-popups allow-popups-to-escape-sandbox"
    )
    frame = page.frame_locator("iframe.email-preview")
    expect(frame.locator("h1")).to_have_text("Hola Ana")
    expect(frame.locator("p")).to_have_text("Tu taza te espera.")
    expect(frame.locator("body")).not_to_have_attribute("data-ran", "yes")  # scripts are off
    screenshot(page, "template-editor-email-preview")

    page.click("text=Create template")
    page.wait_for_url("**/messaging/templates/*/")
    with workspace_scope(workspace.id):
        template = Template.objects.get()
        assert TemplateVersion.objects.get(template=template).content["subject"] == (
            "Hola {{ customer.first_name }}"
        )
    # The only console error is the browser refusing the email's script in the sandbox.
    assert [error.split(" in '")[0] for error in page.console_errors] == [
        "Blocked script execution"
    ], page.console_errors
    assert "the document's frame is sandboxed" in page.console_errors[0]
