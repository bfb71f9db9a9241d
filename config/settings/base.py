"""Settings shared by every environment; every value comes from the environment, with a default that
suits development. The concerns with many settings have their own module: Celery and the beat schedule
(`_celery`), the Withings link (`_withings`), logging (`_logging`), HTTP security and the CSP
(`_security`), messaging and e-mail (`_messaging`), metrics, logs, Sentry and the version (`_ops`). The
environment modules (local, test, production) override what differs."""

from pathlib import Path

from ._celery import *  # noqa: F403
from ._env import BASE_DIR, REDIS_URL, env
from ._logging import *  # noqa: F403
from ._messaging import *  # noqa: F403
from ._ops import *  # noqa: F403
from ._security import *  # noqa: F403
from ._withings import *  # noqa: F403

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
PORTAL_BASE_URL = env("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# The analysts' API (/api/v1/): calls per token per minute, and readings per page.
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=120)
API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=1000)
API_MAX_PAGE_SIZE = 10_000

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Fernet keys, comma separated: the first encrypts, all decrypt (rotation). Never derived from
# SECRET_KEY, so rotating SECRET_KEY cannot make stored tokens unreadable.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

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
    "messaging",
    "api",
    "redcap_bridge",
    "demo",
]

MIDDLEWARE = [
    # Outermost: counts and times every request, whatever answers it.
    "config.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "core.language.ParticipantLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Request id (X-Request-ID), user id and study of the URL on every log line of the request.
    "config.logs.RequestContextMiddleware",
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
# No e-mail to addresses without an account: allauth's would invite them to sign up, and sign-up is closed.
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
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
LANGUAGES = [("en", "English"), ("es", "Español"), ("fr", "Français")]
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

# Readings: a pulse outside this range (beats/min, inclusive bounds plausible) is flagged implausible
# (measurements.quality). After changing it, run `manage.py readings_quality_backfill`.
PLAUSIBLE_PULSE_RANGE = tuple(env.list("PORTAL_PLAUSIBLE_PULSE_RANGE", cast=int, default=[30, 220]))
if len(PLAUSIBLE_PULSE_RANGE) != 2 or PLAUSIBLE_PULSE_RANGE[0] >= PLAUSIBLE_PULSE_RANGE[1]:
    raise ValueError("PORTAL_PLAUSIBLE_PULSE_RANGE must be two numbers, low,high (e.g. 30,220)")
# Readings of a participant less than this many minutes apart form one measurement session.
READING_SESSION_GAP_MINUTES = env.int("PORTAL_READING_SESSION_GAP_MINUTES", default=10)
