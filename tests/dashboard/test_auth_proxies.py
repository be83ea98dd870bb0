"""Client addresses behind reverse proxies, and case-insensitive sign-in."""

import pytest
from django.test import RequestFactory

from masivo.dashboard.views.auth import client_ip
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1"),
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "10.0.0.1"),
    ],
)
def test_client_ip_trusts_only_the_configured_proxies(settings, proxies, forwarded, expected):
    settings.MASIVO_TRUSTED_PROXIES = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_sign_in_ignores_the_case_of_the_email(client, workspace):
    user = UserFactory(username="Admin@Example.com", email="Admin@Example.com")
    MemberFactory(organization=workspace.organization, user=user, role="owner")
    response = client.post(
        "/login/", {"username": "admin@EXAMPLE.com", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.id)
