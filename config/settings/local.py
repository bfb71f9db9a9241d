"""Development: zero configuration (SQLite, in-process tasks, console e-mail, the SMS sandbox)."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-do-not-use-in-production")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
# A fixed development key so the demo works out of the box; production refuses to start without one.
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS", default=["bG9jYWwtZGV2LW9ubHkta2V5LW5vdC1mb3ItcHJvZC0="]
)

# The Withings sandbox is mounted in the dev server at /sandbox unless a real (or other) Withings
# is configured: then WITHINGS_API_URL/WITHINGS_AUTH_URL/WITHINGS_CLIENT_* come from the env.
WITHINGS_SANDBOX_MOUNTED = env.bool("WITHINGS_SANDBOX", default=not env("WITHINGS_API_URL", default=""))
# The dev server's app mounts the sandbox (when on) and starts the embedded runner (tasks in-process).
WSGI_APPLICATION = "config.wsgi_dev.application"
if WITHINGS_SANDBOX_MOUNTED:
    WITHINGS_API_URL = f"{PORTAL_BASE_URL}/sandbox"  # noqa: F405
    WITHINGS_AUTH_URL = f"{PORTAL_BASE_URL}/sandbox"  # noqa: F405
    WITHINGS_CLIENT_ID = env("WITHINGS_CLIENT_ID", default="sandbox-client")
    WITHINGS_CLIENT_SECRET = env("WITHINGS_CLIENT_SECRET", default="sandbox-secret")

# The SMS sandbox (a fake Twilio) is mounted at /sms-sandbox and used unless SMS_BACKEND or
# TWILIO_API_URL says otherwise: `make run` shows texts, delivery receipts and replies (STOP) there.
SMS_SANDBOX_MOUNTED = env.bool(
    "SMS_SANDBOX", default=not env("TWILIO_API_URL", default="") and not env("SMS_BACKEND", default="")
)
if SMS_SANDBOX_MOUNTED:
    SMS_BACKEND = "twilio"
    TWILIO_API_URL = f"{PORTAL_BASE_URL}/sms-sandbox"  # noqa: F405
    TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="ACsandbox0000000000000000000000000")
    TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="sandbox-auth-token")
    TWILIO_FROM_NUMBER = env("TWILIO_FROM_NUMBER", default="+15005550006")
    MESSAGING_SMS_PER_SECOND = 20.0
