"""Participant messaging: the SMS gateway (Twilio's Messages API, or the console in development) and
e-mail through Django's SMTP backend. Every DJANGO_EMAIL_* variable is read here, so every settings
module — development included — can use a real SMTP server."""

from ._env import env

# SMS: "console" prints that a text was sent (never the number); "twilio" speaks Twilio's Messages API
# at TWILIO_API_URL — Twilio itself, the SMS sandbox of `make run`, or any server speaking that API.
SMS_BACKEND = env("SMS_BACKEND", default="console")
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env("TWILIO_FROM_NUMBER", default="")
TWILIO_API_URL = env("TWILIO_API_URL", default="https://api.twilio.com").rstrip("/")
TWILIO_HTTP_TIMEOUT = env.float("TWILIO_HTTP_TIMEOUT", default=10.0)
# Key of the keyed hash that finds the participant of an inbound text (empty: derived from SECRET_KEY;
# set it before rotating SECRET_KEY, or inbound STOP/HELP of existing participants go unmatched).
CONTACT_LOOKUP_KEY = env("CONTACT_LOOKUP_KEY", default="")
SMS_SANDBOX_MOUNTED = False  # development only (config/settings/local.py)

# Sending: at most this many messages a second per channel across all workers (Twilio's default for
# a long code is 1/s; a messaging service or short code allows more). Transient provider errors are
# retried this many times, then the message is failed; a contact whose number or address failed
# this many messages in a row is flagged for the coordinator.
MESSAGING_SMS_PER_SECOND = env.float("MESSAGING_SMS_PER_SECOND", default=1.0)
MESSAGING_EMAIL_PER_SECOND = env.float("MESSAGING_EMAIL_PER_SECOND", default=10.0)
MESSAGING_MAX_ATTEMPTS = env.int("MESSAGING_MAX_ATTEMPTS", default=5)
MESSAGING_FLAG_AFTER_FAILURES = env.int("MESSAGING_FLAG_AFTER_FAILURES", default=3)
# A rule's reminder (prompt, no-data, Wi-Fi, re-link, battery) still queued this long after it was due
# is not sent late but marked "expired" with the reason in the delivery log: a replayed past week
# (`tick --at`), a dispatcher that was down, or a retry that waited too long.
MESSAGING_STALE_AFTER_MINUTES = env.int("MESSAGING_STALE_AFTER_MINUTES", default=120)

EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="Cohort portal <portal@localhost>")
EMAIL_HOST = env("DJANGO_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("DJANGO_EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("DJANGO_EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("DJANGO_EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("DJANGO_EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("DJANGO_EMAIL_TIMEOUT", default=20)
