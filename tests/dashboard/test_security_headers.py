"""Over HTTPS (MASIVO_HTTPS) cookies are Secure and HSTS is sent; no page holding data may be
cached; the API docs and schema are public on purpose (they describe the API, hold no data)."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.dashboard.conftest import client_for

NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"
SECURITY_SETTINGS = [
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
]


def settings_under(environment: dict) -> dict:
    """The settings module as a fresh process reads it from this environment."""
    script = (
        "import json; from masivo import settings as s; "
        f"print(json.dumps({{name: getattr(s, name) for name in {SECURITY_SETTINGS!r}}}))"
    )
    env = {**os.environ, "DEBUG": "no", "SECURE_HSTS_SECONDS": "", **environment}
    env = {key: value for key, value in env.items() if value != ""}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_https_marks_cookies_secure_and_sends_hsts():
    assert settings_under({"MASIVO_HTTPS": "yes"}) == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    }


def test_plain_http_keeps_cookies_usable_on_localhost():
    assert settings_under({"MASIVO_HTTPS": "no"}) == {
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    }


def test_an_https_response_carries_hsts_and_a_secure_csrf_cookie(settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.CSRF_COOKIE_SECURE = True

    response = Client().get("/login/", secure=True)

    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert response.cookies["csrftoken"]["secure"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["", "customers/", "audiences/", "settings/api-keys/"])
def test_dashboard_pages_are_never_cached(member, workspace, page):
    response = client_for(member).get(f"/w/{workspace.id}/{page}")

    assert response.status_code == 200
    assert response["Cache-Control"] == NEVER_CACHE


@pytest.mark.django_db
def test_the_sign_in_page_and_api_answers_are_never_cached(api):
    assert Client().get("/login/")["Cache-Control"] == NEVER_CACHE
    assert api.get("/api/v1/workspace")["Cache-Control"] == NEVER_CACHE


def test_static_files_keep_their_own_caching():
    response = Client().get("/static/masivo/masivo.css")

    assert response.status_code == 200
    assert "no-store" not in response["Cache-Control"]


@pytest.mark.parametrize("path", ["/api/docs/", "/api/v1/schema/?format=json"])
def test_the_api_docs_and_schema_are_public(path):
    assert Client().get(path).status_code == 200
