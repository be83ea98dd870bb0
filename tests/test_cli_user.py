"""`masivo user set-password EMAIL`: for operators who lost the first-run credentials."""

import io

import pytest

from masivo import cli
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a fresh long passphrase 3"


@pytest.fixture(autouse=True)
def _no_embedded_services(monkeypatch):
    monkeypatch.setattr(cli, "_setup_django", lambda quiet=False: None)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["user", "set-password", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_reads_the_password_from_stdin(capsys, monkeypatch):
    user = UserFactory(email="admin@example.com", username="admin@example.com")
    monkeypatch.setattr("sys.stdin", io.StringIO(NEW_PASSWORD + "\n"))

    code, out, err = run(capsys, "Admin@Example.com", "--password-stdin")

    assert (code, out, err) == (0, "password of Admin@Example.com changed\n", "")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_prompts_twice(capsys, monkeypatch):
    user = UserFactory(email="admin@example.com", username="admin@example.com")
    answers = iter([NEW_PASSWORD, NEW_PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))

    assert run(capsys, "admin@example.com")[0] == 0
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_two_different_answers_change_nothing(capsys, monkeypatch):
    user = UserFactory(email="admin@example.com", username="admin@example.com")
    answers = iter([NEW_PASSWORD, "something else entirely"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))

    code, _, err = run(capsys, "admin@example.com")

    assert (code, err) == (2, "the two passwords differ; nothing changed\n")
    user.refresh_from_db()
    assert user.check_password("correct horse battery staple")


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("nobody@example.com", NEW_PASSWORD, "no account has the email 'nobody@example.com'"),
        (
            "admin@example.com",
            "12345678",
            "This password is too common. This password is entirely numeric.",
        ),
    ],
)
def test_refusals_change_nothing(capsys, monkeypatch, email, password, message):
    user = UserFactory(email="admin@example.com", username="admin@example.com")
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))

    code, out, err = run(capsys, email, "--password-stdin")

    assert (code, out, err) == (2, "", f"masivo: {message}; nothing changed\n")
    user.refresh_from_db()
    assert user.check_password("correct horse battery staple")
