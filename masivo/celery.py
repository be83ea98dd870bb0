import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "masivo.settings")

app = Celery("masivo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _require_service_urls(sender, **kwargs):
    """Without REDIS_URL kombu would silently fall back to amqp://localhost."""
    if not os.environ.get("DATABASE_URL") or not (
        os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL")
    ):
        raise RuntimeError(
            "DATABASE_URL and REDIS_URL must be set for Celery (`masivo up` sets them)"
        )
