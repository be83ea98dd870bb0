import pytest
from django.utils.html import escape

from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def url(workspace):
    return f"/w/{workspace.id}/settings/"


def test_an_owner_saves_the_exact_name_and_time_zone(owner_client, workspace):
    response = owner_client.post(
        url(workspace), {"name": "  Acme Europe ", "timezone": "Europe/Madrid"}, follow=True
    )

    assert response.redirect_chain == [(url(workspace), 302)]
    assert "Workspace settings saved." in response.content.decode()
    workspace.refresh_from_db()
    assert (workspace.name, workspace.timezone) == ("Acme Europe", "Europe/Madrid")


def test_the_form_shows_the_current_values(owner_client, workspace):
    content = owner_client.get(url(workspace)).content.decode()

    assert 'name="name" value="Acme"' in content
    assert '<option value="UTC" selected>UTC</option>' in content
    assert "Save changes" in content


def test_a_name_taken_in_the_organization_shows_the_service_error(owner_client, workspace):
    WorkspaceFactory(organization=workspace.organization, name="Beta")

    response = owner_client.post(url(workspace), {"name": "beta", "timezone": "Europe/Madrid"})

    assert response.status_code == 409
    assert escape("A workspace named 'beta' already exists") in response.content.decode()
    assert response.context["form"].errors == {"name": ["A workspace named 'beta' already exists"]}
    assert response.context["current_workspace"].name == "Acme"
    workspace.refresh_from_db()
    assert (workspace.name, workspace.timezone) == ("Acme", "UTC")


def test_an_unknown_time_zone_is_a_form_error(owner_client, workspace):
    response = owner_client.post(url(workspace), {"name": "Acme", "timezone": "Mars/Olympus"})

    assert response.status_code == 400
    assert "Mars/Olympus is not one of the available choices." in response.content.decode()
    workspace.refresh_from_db()
    assert workspace.timezone == "UTC"


@pytest.mark.parametrize("client_fixture", ["member_client", "viewer_client"])
def test_marketers_and_viewers_see_values_but_no_form(request, workspace, client_fixture):
    client = request.getfixturevalue(client_fixture)

    content = client.get(url(workspace)).content.decode()

    assert "<dd>Acme</dd>" in content
    assert "Only admins and owners can change these settings." in content
    assert 'name="name"' not in content
    assert "Save changes" not in content


@pytest.mark.parametrize("client_fixture", ["member_client", "viewer_client"])
def test_marketers_and_viewers_posting_get_403_and_nothing_changes(
    request, workspace, client_fixture
):
    client = request.getfixturevalue(client_fixture)

    response = client.post(url(workspace), {"name": "Hijacked", "timezone": "Asia/Tokyo"})

    assert response.status_code == 403
    assert "Your role does not allow this action." in response.content.decode()
    workspace.refresh_from_db()
    assert (workspace.name, workspace.timezone) == ("Acme", "UTC")
