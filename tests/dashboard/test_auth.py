import pytest
from django.test import Client

from tests.dashboard.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-in attempts. Try again in 15 minutes."
WRONG = "That email and password do not match an account."


@pytest.fixture(autouse=True)
def _three_failures_lock(settings):
    settings.MASIVO_LOGIN_MAX_FAILURES = 3
    settings.MASIVO_LOGIN_LOCKOUT_SECONDS = 900


def sign_in(client, email, password, ip="127.0.0.1"):
    return client.post("/login/", {"username": email, "password": password}, REMOTE_ADDR=ip)


def signed_in_user_id(client):
    return client.session.get("_auth_user_id")


def test_the_right_password_signs_in_and_opens_the_first_workspace(client, owner, workspace):
    response = sign_in(client, owner.user.email, PASSWORD)

    assert response.status_code == 302
    assert response.url == "/"
    assert signed_in_user_id(client) == str(owner.user.id)
    assert client.get("/").url == f"/w/{workspace.id}/"


def test_the_email_is_matched_case_insensitively(client, owner):
    response = sign_in(client, f"  {owner.user.email.upper()} ", PASSWORD)

    assert response.status_code == 302
    assert signed_in_user_id(client) == str(owner.user.id)


def test_a_wrong_password_is_refused_with_a_message(client, owner):
    response = sign_in(client, owner.user.email, "not the password")

    assert response.status_code == 200
    assert WRONG in response.content.decode()
    assert signed_in_user_id(client) is None


def test_after_the_maximum_failures_even_the_right_password_is_refused(client, owner):
    first, second = (sign_in(client, owner.user.email, "guess") for _ in range(2))
    third = sign_in(client, owner.user.email, "guess")
    with_right_password = sign_in(client, owner.user.email, PASSWORD)

    assert [first.status_code, second.status_code] == [200, 200]
    assert third.status_code == 429
    assert with_right_password.status_code == 429
    assert LOCKED in with_right_password.content.decode()
    assert WRONG not in with_right_password.content.decode()
    assert 890 <= int(with_right_password["Retry-After"]) <= 900
    assert signed_in_user_id(client) is None


def test_one_address_guessing_many_usernames_is_locked_out(client, owner):
    for number in range(3):
        sign_in(client, f"someone{number}@example.com", "guess", ip="10.0.0.1")

    from_that_address = sign_in(client, owner.user.email, PASSWORD, ip="10.0.0.1")
    assert from_that_address.status_code == 429
    assert signed_in_user_id(client) is None

    from_elsewhere = sign_in(client, owner.user.email, PASSWORD, ip="10.0.0.2")
    assert from_elsewhere.status_code == 302
    assert signed_in_user_id(client) == str(owner.user.id)


def test_one_username_guessed_from_many_addresses_is_locked_out(client, owner):
    for number in range(3):
        sign_in(client, owner.user.email, "guess", ip=f"10.0.1.{number}")

    response = sign_in(client, owner.user.email.upper(), PASSWORD, ip="10.0.1.99")

    assert response.status_code == 429
    assert signed_in_user_id(client) is None


def test_a_success_clears_the_username_counter(owner):
    for _ in range(2):
        sign_in(Client(), owner.user.email, "guess", ip="10.0.2.1")
    assert sign_in(Client(), owner.user.email, PASSWORD, ip="10.0.2.2").status_code == 302

    # Without the reset these would be the username's 3rd and 4th failures.
    for _ in range(2):
        assert sign_in(Client(), owner.user.email, "guess", ip="10.0.2.3").status_code == 200
    client = Client()
    assert sign_in(client, owner.user.email, PASSWORD, ip="10.0.2.4").status_code == 302
    assert signed_in_user_id(client) == str(owner.user.id)


def test_a_post_without_a_password_is_not_counted(client, owner):
    for _ in range(5):
        client.post("/login/", {"username": owner.user.email}, REMOTE_ADDR="10.0.3.1")

    assert sign_in(client, owner.user.email, PASSWORD, ip="10.0.3.1").status_code == 302


def test_sign_in_needs_a_csrf_token(owner):
    client = Client(enforce_csrf_checks=True)

    response = sign_in(client, owner.user.email, PASSWORD)

    assert response.status_code == 403
    assert signed_in_user_id(client) is None


def test_sign_out_is_post_only(owner_client, owner):
    assert owner_client.get("/logout/").status_code == 405
    assert signed_in_user_id(owner_client) == str(owner.user.id)

    response = owner_client.post("/logout/", follow=True)

    assert response.redirect_chain == [("/login/", 302)]
    assert "You have been signed out." in response.content.decode()
    assert signed_in_user_id(owner_client) is None


@pytest.mark.parametrize("path", ["/", "/w/1/", "/w/1/settings/api-keys/"])
def test_pages_send_anonymous_visitors_to_sign_in(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response.url == f"/login/?next={path}"


def test_a_signed_in_user_visiting_the_sign_in_page_goes_home(owner_client):
    response = owner_client.get("/login/")

    assert response.status_code == 302
    assert response.url == "/"
