"""Settings shared by every environment. Every value comes from the environment (design.md)."""

from pathlib import Path

import environ
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
PORTAL_BASE_URL = env("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")

# Fernet keys, comma separated: the first encrypts, all decrypt (rotation). Never derived from
# SECRET_KEY, so rotating SECRET_KEY cannot make stored tokens unreadable.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

WITHINGS_CLIENT_ID = env("WITHINGS_CLIENT_ID", default="")
WITHINGS_CLIENT_SECRET = env("WITHINGS_CLIENT_SECRET", default="")
WITHINGS_API_URL = env("WITHINGS_API_URL", default="https://wbsapi.withings.net").rstrip("/")
WITHINGS_AUTH_URL = env("WITHINGS_AUTH_URL", default="https://account.withings.com").rstrip("/")
# The shared upstream budget (withings.ratelimit): calls are paced at PER_MINUTE a minute; notification
# syncs may run up to BURST slots ahead of the pace. PER_MINUTE + BURST must stay below Withings' 120
# per rolling minute per application (the remainder covers clock skew between us and Withings).
WITHINGS_RATE_LIMIT_PER_MINUTE = env.int("WITHINGS_RATE_LIMIT_PER_MINUTE", default=112)
WITHINGS_RATE_LIMIT_BURST = env.int("WITHINGS_RATE_LIMIT_BURST", default=4)
WITHINGS_SANDBOX_MOUNTED = False  # development only (config/settings/local.py)

INSTALLED_APPS = [
    "config.apps.PortalAdminConfig",  # django.contrib.admin with the staff home as its index
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "import_export",
    "core",
    "cohorts",
    "withings",
    "measurements",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "cohorts.middleware.StaffTwoFactorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

AUTH_USER_MODEL = "cohorts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/admin/"

# django-allauth: e-mail login, no public sign-up, mandatory TOTP for staff (middleware).
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ADAPTER = "cohorts.adapters.StaffAccountAdapter"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_RATE_LIMITS = {
    # allauth's defaults, spelled out so nobody switches them off by accident.
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/300s/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
}
MFA_ADAPTER = "cohorts.adapters.EncryptedMFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env("MFA_TOTP_ISSUER", default="Cohort portal")

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="Cohort portal <portal@localhost>")

# Cache: Redis when configured (allauth's rate limits and the worker heartbeat need a shared cache),
# else a per-process memory cache for the zero-setup demo. Never DummyCache: it disables rate limits.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="portal"),
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis broker, JSON only, bounded tasks. Every task of ours is idempotent (unique keys and
# upserts), so acks_late + reject_on_worker_lost: a killed worker's task is redelivered, never lost.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
# In-process mode: the dev server runs retries and the beat schedule on a thread (config.embedded).
EMBEDDED_RUNNER = env.bool("EMBEDDED_RUNNER", default=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
# Redis redelivers an unacknowledged task only after this; no countdown/ETA of ours exceeds it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 1800}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "portal.heartbeat", "schedule": 30.0},
}
WORKER_HEARTBEAT_MAX_AGE = env.int("WORKER_HEARTBEAT_MAX_AGE", default=120)

# Bearer secrets in URLs (/p/<token>/, invitations, the notify secret, OAuth code/state) never reach a
# log: the filter rewrites every record the project's handlers print, and the records of the loggers
# that carry request lines (also for handlers added later, such as pytest's). Django's own handlers of
# the `django` logger are replaced: its records reach the root handler. gunicorn: config/gunicorn.py.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "config.redaction.RedactSecrets"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {
            "handlers": ["django.server"],
            "level": "INFO",
            "propagate": False,
            "filters": ["redact_secrets"],
        },
        "django.request": {"filters": ["redact_secrets"]},
        "django.db.backends": {"level": "INFO"},
    },
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Withings link (withings app): timeout of every upstream HTTP call, in seconds.
WITHINGS_HTTP_TIMEOUT = env.float("WITHINGS_HTTP_TIMEOUT", default=10.0)
# How long a call may wait for a slot of the shared rate limiter before giving up (transient error).
WITHINGS_RATE_LIMIT_MAX_WAIT = env.float("WITHINGS_RATE_LIMIT_MAX_WAIT", default=30.0)
CELERY_BEAT_SCHEDULE["withings-refresh-due-connections"] = {
    "task": "withings.refresh_due_connections",
    "schedule": 300.0,
}
# requests-oauthlib logs token request bodies (client secret, code, refresh token) at DEBUG.
LOGGING["loggers"]["requests_oauthlib"] = {"level": "WARNING"}
LOGGING["loggers"]["oauthlib"] = {"level": "WARNING"}

# Ingestion (withings sync, notifications, back-fill).
WITHINGS_NOTIFY_SECRET = env("WITHINGS_NOTIFY_SECRET", default="")  # empty: derived from SECRET_KEY
WITHINGS_SYNC_MARGIN_SECONDS = env.int("WITHINGS_SYNC_MARGIN_SECONDS", default=300)
# A killed worker's lock expires after this; longer than any task may run (CELERY_TASK_TIME_LIMIT).
WITHINGS_SYNC_LOCK_TTL = env.int("WITHINGS_SYNC_LOCK_TTL", default=330)
WITHINGS_BACKFILL_DAYS_DEFAULT = env.int("WITHINGS_BACKFILL_DAYS_DEFAULT", default=90)
WITHINGS_POLL_HOURS = env.int("WITHINGS_POLL_HOURS", default=6)
# An unfinished back-fill with no step for this long is re-queued (withings.resume_backfills). Longer
# than WITHINGS_SYNC_LOCK_TTL, so the lock of a task that died has expired by then.
WITHINGS_BACKFILL_STALL_SECONDS = env.int("WITHINGS_BACKFILL_STALL_SECONDS", default=600)
# Queues: notifications first, then everything else, then the back-fill (one page per task).
# The workers consume them in this order (queue_order_strategy "priority").
WITHINGS_QUEUES = ("withings_notify", "default", "withings_backfill")
# A worker without -Q consumes every declared queue, in this order.
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in WITHINGS_QUEUES]
CELERY_TASK_ROUTES = {
    "withings.process_notification": {"queue": "withings_notify"},
    "withings.sync_connection": {"queue": "withings_notify"},
    "withings.backfill_step": {"queue": "withings_backfill"},
    "withings.poll_connection": {"queue": "withings_backfill"},
}
CELERY_BROKER_TRANSPORT_OPTIONS["queue_order_strategy"] = "priority"
CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = env.int("CELERY_VISIBILITY_TIMEOUT", default=1800)
CELERY_BEAT_SCHEDULE.update(
    {
        "withings-sweep-notifications": {"task": "withings.sweep_notifications", "schedule": 120.0},
        "withings-resume-backfills": {"task": "withings.resume_backfills", "schedule": 60.0},
        "withings-safety-net-poll": {"task": "withings.poll_all", "schedule": 3600.0},
        "withings-subscriptions-daily": {"task": "withings.check_subscriptions", "schedule": 86400.0},
        "withings-devices-daily": {"task": "withings.refresh_all_devices", "schedule": 86400.0},
    }
)

# How many proxies in front of the portal set X-Forwarded-For (0: none): the client address every
# rate limit keys on, participant pages (core.throttle) and staff sign-in (allauth) alike.
PORTAL_TRUSTED_PROXY_COUNT = env.int("PORTAL_TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_PROXY_COUNT = PORTAL_TRUSTED_PROXY_COUNT
# Monitoring (measurements): zero rows for missed days at night, alerts every hour.
CELERY_BEAT_SCHEDULE["measurements-monitoring-nightly"] = {
    "task": "measurements.monitoring_nightly",
    "schedule": 86400.0,
}
CELERY_BEAT_SCHEDULE["measurements-resume-exports"] = {
    "task": "measurements.resume_exports",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["measurements-evaluate-alerts"] = {
    "task": "measurements.evaluate_alerts",
    "schedule": 3600.0,
}

# Content-Security-Policy (django-csp): no inline script or style anywhere. Participant pages use
# static/portal/participant.css and no JavaScript; the admin and allauth use their own static files.
# `style-src` allows a per-response nonce for the rare admin <style> block that asks for one
# ({{ request.csp_nonce }}); the nonce is only added to the header when a template used it.
# `img-src data:` is for allauth's TOTP QR code. form-action also allows the Withings authorize
# origin: re-linking is a POST that redirects there, and browsers apply form-action to redirects.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware"
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF, "/".join(WITHINGS_AUTH_URL.split("/")[:3])],
    },
}


def _django_admin_inline_styles() -> list[str]:
    """CSP hashes of the one inline <style> Django's admin emits (change_list.html, a column width
    for changelists without actions), read from the installed Django so an upgrade stays covered."""
    import base64
    import hashlib
    import re

    import django

    template = Path(django.__file__).parent / "contrib/admin/templates/admin/change_list.html"
    blocks = re.findall(r"<style>(.*?)</style>", template.read_text(), re.S)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks]


CONTENT_SECURITY_POLICY["DIRECTIVES"]["style-src"] += _django_admin_inline_styles()
