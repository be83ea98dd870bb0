"""Password reset by email (Django's views, Masivo's templates), linked from the sign-in page."""

import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from masivo.tenancy.redis import get_redis
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/password-reset/[^/\s]+/[^/\s]+/)")
NEW_PASSWORD = "another long passphrase 7"


@pytest.fixture(autouse=True)
def _clear_reset_counters():
    client = get_redis()
    for key in client.scan_iter(f"{settings.MASIVO_REDIS_PREFIX}ratelimit:password-reset:*"):
        client.delete(key)


def ask_for_reset(client, email):
    return client.post("/password-reset/", {"email": email})


def test_the_sign_in_page_links_to_password_reset():
    content = Client().get("/login/").content.decode()
    assert '<a href="/password-reset/">Forgot your password?</a>' in content


def test_the_reset_email_sets_a_new_password_once():
    user = UserFactory(email="ana@example.com", username="ana@example.com")
    client = Client()

    response = ask_for_reset(client, "ANA@example.com")

    assert response.status_code == 302
    assert response.url == "/password-reset/sent/"
    [message] = mail.outbox
    assert (message.to, message.subject) == (["ana@example.com"], "Reset your Masivo password")
    link = LINK.search(message.body).group(1)
    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    assert done.redirect_chain[-1][0] == "/password-reset/done/"
    assert "Password changed" in done.content.decode()
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    signed_in = Client().post("/login/", {"username": "ana@example.com", "password": NEW_PASSWORD})
    assert signed_in.status_code == 302
    again = Client().get(link, follow=True)
    assert "The password reset link is invalid, already used or expired." in (
        again.content.decode()
    )


def test_an_unknown_email_gets_the_same_page_and_no_email():
    response = ask_for_reset(Client(), "nobody@example.com")

    assert response.status_code == 302
    assert response.url == "/password-reset/sent/"
    assert mail.outbox == []


def test_an_account_without_a_password_can_set_one_by_email():
    user = UserFactory(email="old@example.com", username="old@example.com")
    user.set_unusable_password()
    user.save()

    ask_for_reset(Client(), "old@example.com")

    assert [message.to for message in mail.outbox] == [["old@example.com"]]


def test_reset_emails_to_one_address_are_limited():
    UserFactory(email="ana@example.com", username="ana@example.com")
    for _ in range(5):
        assert ask_for_reset(Client(), "ana@example.com").url == "/password-reset/sent/"

    assert len(mail.outbox) == 3


def test_a_weak_new_password_is_refused():
    user = UserFactory(email="ana@example.com", username="ana@example.com")
    client = Client()
    ask_for_reset(client, "ana@example.com")
    form = client.get(LINK.search(mail.outbox[0].body).group(1), follow=True)

    response = client.post(
        form.redirect_chain[-1][0], {"new_password1": "password", "new_password2": "password"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {"new_password2": ["This password is too common."]}
    user.refresh_from_db()
    assert user.check_password("correct horse battery staple")
