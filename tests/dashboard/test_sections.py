import pytest

from masivo.dashboard.views.sections import SECTIONS

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "empty_text"),
    [
        (
            "customers/",
            "Customers will appear here once events or profiles arrive through the API "
            "or an import.",
        ),
        (
            "audiences/",
            "Audiences will appear here once you define one with rules on traits and events "
            "or upload a list of customers.",
        ),
    ],
)
def test_each_section_shows_its_empty_state(viewer_client, workspace, path, empty_text):
    response = viewer_client.get(f"/w/{workspace.id}/{path}")

    assert response.status_code == 200
    content = response.content.decode()
    assert f"<p>{empty_text}</p>" in content
    name = path.rstrip("/")
    assert f'class="nav-link is-active" href="/w/{workspace.id}/{path}"' in content
    assert f"<title>{SECTIONS[name].title} · Masivo</title>" in content


@pytest.mark.parametrize(
    ("path", "title", "says"),
    [
        ("messages/", "Messages are not available yet", "Masivo cannot send messages yet."),
    ],
)
def test_sections_still_to_come_say_so(viewer_client, workspace, path, title, says):
    content = viewer_client.get(f"/w/{workspace.id}/{path}").content.decode()

    assert '<span class="badge badge-muted">Coming soon</span>' in content
    assert f"<h2>{title}</h2>" in content
    assert f"<p>{says} " in content
    assert "will appear here once" not in content


def test_the_overview_names_the_workspace_and_the_role(member_client, workspace):
    content = member_client.get(f"/w/{workspace.id}/").content.decode()

    assert f"<h1>{workspace.name}</h1>" in content
    assert "Time zone UTC · Your role: Marketer" in content


def test_the_layout_has_every_section_and_a_post_only_sign_out(member_client, workspace):
    content = member_client.get(f"/w/{workspace.id}/").content.decode()

    for path, label in [
        ("customers/", "Customers"),
        ("audiences/", "Audiences"),
        ("journeys/", "Journeys"),
        ("messages/", "Messages"),
        ("destinations/", "Destinations"),
        ("settings/", "Settings"),
    ]:
        assert f'href="/w/{workspace.id}/{path}">' in content
        assert f"<span>{label}</span>" in content
    assert '<form method="post" action="/logout/">' in content


def test_sections_are_read_only(member_client, workspace):
    assert member_client.post(f"/w/{workspace.id}/customers/").status_code == 405


def test_pages_carry_a_strict_content_security_policy(member_client, workspace):
    response = member_client.get(f"/w/{workspace.id}/customers/")

    policy = response["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    assert "<script>" not in response.content.decode()
    assert " style=" not in response.content.decode()
