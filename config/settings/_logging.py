"""Logging: one plain console handler, and no bearer secret in any record.

Bearer secrets in URLs (/p/<token>/, invitations, the notify secret, OAuth code/state) never reach a
log: the filter rewrites every record the project's handlers print, and the records of the loggers
that carry request lines (also for handlers added later, such as pytest's). Django's own handlers of
the `django` logger are replaced: its records reach the root handler. gunicorn: config/gunicorn.py."""

from ._env import env

# "json": one object per line with request/user/study/task ids (production's default, see
# production.py); "text": the plain format with the request or task id (development).
LOG_FORMAT = env("LOG_FORMAT", default="text")
PLAIN = "%(asctime)s %(levelname)s %(name)s %(message)s"


def console_formatter(log_format: str) -> str:
    if log_format not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be json or text, not {log_format!r}")
    return log_format


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "config.redaction.RedactSecrets"},
        "context": {"()": "config.logs.ContextFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "text": {
            "()": "config.logs.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "config.logs.JsonFormatter"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": console_formatter(LOG_FORMAT),
            "filters": ["redact_secrets", "context"],
        },
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
        # requests-oauthlib logs token request bodies (client secret, code, refresh token) at DEBUG.
        "requests_oauthlib": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
    },
}
