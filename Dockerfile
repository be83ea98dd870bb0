# Masivo's one image. web (the default command), worker, beat and the one-shot jobs
# (db-init, migrate) all run from it; docker-compose.yml shows how. See docs/operations.md.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=masivo.settings \
    MASIVO_DATA_DIR=/var/lib/masivo \
    STATIC_ROOT=/app/staticfiles \
    PYTHONPATH=/app

# The processes run as this unprivileged user. MASIVO_DATA_DIR is the only place they write
# (the `masivo` command creates it if missing); the code in /app stays owned by root.
RUN groupadd --system --gid 10001 masivo \
 && useradd --system --uid 10001 --gid masivo --home-dir /var/lib/masivo \
      --shell /usr/sbin/nologin masivo \
 && install -d -o masivo -g masivo -m 0700 /var/lib/masivo

WORKDIR /app
COPY . /app

# Installs the dependencies and the `masivo` command. The wheel holds only the Python packages,
# not the top-level templates/ folder or the dashboard's static files, so the processes import
# the source tree in /app instead (PYTHONPATH above), where settings.BASE_DIR finds both.
RUN pip install .

# Static files are collected once, into the image, and served by WhiteNoise.
# SECRET_KEY is set for this step only: without it settings.py would generate a key and write it
# to MASIVO_DATA_DIR/secret_key inside the image. `python -m django`, not manage.py: manage.py
# would try to start the embedded PostgreSQL and Redis.
RUN SECRET_KEY=build-only python -m django collectstatic --noinput

USER masivo
EXPOSE 8000

# gunicorn reads WEB_CONCURRENCY for its number of worker processes (default 1).
CMD ["gunicorn", "masivo.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
