"""pytest: PostgreSQL/Redis from DATABASE_URL/REDIS_URL (the Makefile and .ci/run set them)."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = "test-only-secret-key"
ALLOWED_HOSTS = ["*"]
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS", default=["dGVzdC1vbmx5LWtleS10ZXN0LW9ubHkta2V5LXRlc3Q="]
)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
SMS_BACKEND = env("SMS_BACKEND", default="console")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests talk to a real broker only through a real worker (tests/integration starts one with
# CELERY_TASK_ALWAYS_EAGER=0 and a broker of its own); elsewhere tasks run eagerly.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
EMBEDDED_RUNNER = False  # tests that need it start their own (tests/withings/test_embedded_mode.py)
MIDDLEWARE = [m for m in MIDDLEWARE if "whitenoise" not in m]  # noqa: F405 — no collected static in tests
