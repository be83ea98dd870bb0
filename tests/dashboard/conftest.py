import pytest
from django.conf import settings
from django.test import Client

from masivo.tenancy import wakeups
from masivo.tenancy.redis import get_redis

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's password


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Users are made by the dozen here; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_login_counters():
    """Every test client signs in from 127.0.0.1: one test's failures must not lock the next."""
    client = get_redis()
    for key in client.scan_iter(f"{settings.MASIVO_REDIS_PREFIX}login:*"):
        client.delete(key)


def client_for(member) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


@pytest.fixture
def owner_client(owner):
    return client_for(owner)


@pytest.fixture
def member_client(member):
    return client_for(member)


@pytest.fixture
def viewer_client(viewer):
    return client_for(viewer)


@pytest.fixture
def outsider_client(outsider):
    return client_for(outsider)


@pytest.fixture
def woken(monkeypatch) -> list[tuple[str, dict]]:
    """The tasks that services woke by name (no worker here): (task name, keyword arguments)."""
    calls = []
    monkeypatch.setattr(wakeups, "task_wake", lambda name, **kwargs: calls.append((name, kwargs)))
    return calls
