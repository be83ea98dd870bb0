import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_dependencies():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_redis_and_broker():
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "broker": "ok"},
        "failing": [],
    }


def test_readyz_names_the_failing_parts(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["failing"] == ["redis", "broker"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("failing: ")
