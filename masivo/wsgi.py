import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "masivo.settings")
for _name in ("DATABASE_URL", "REDIS_URL"):
    if not os.environ.get(_name):
        raise RuntimeError(
            f"{_name} is not set. `masivo up` sets it (embedded servers); in production set it "
            "yourself (docs/operations.md)."
        )
application = get_wsgi_application()
