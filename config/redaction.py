"""Bearer secrets out of log lines: the participant status token (`/p/<token>/`), invitation tokens,
the Withings notification secret, the e-mail unsubscribe links, allauth's password-reset and e-mail
keys (all in URL paths), OAuth `code`/`state` and token query parameters, E.164 phone numbers and
e-mail addresses.
Used by the LOGGING filter (Django's dev server and request loggers, everything the project's handlers
print) and by the gunicorn access log."""

from __future__ import annotations

import logging
import re

MARK = "[redacted]"
SECRET_IN_PATH = re.compile(
    r"(/(?:p|enroll/invite|withings/notify|messaging/unsubscribe|accounts/password/reset/key"
    r"|accounts/confirm-email)/)"
    r"[^/?#\s\"']+"
)
SECRET_PARAMETER = re.compile(
    r"([?&;](?:code|state|access_token|refresh_token|client_secret|token|key)=)[^&#\s\"']+", re.IGNORECASE
)

# Participants' mobile numbers in E.164 form (also URL-encoded): never logged on purpose, and a
# stray one (a URL, a library's debug line) is masked too.
PHONE_NUMBER = re.compile(r"(?:\+|%2[Bb])[1-9]\d{6,14}\b")
# E-mail addresses (also URL-encoded @): participants' contact details are never logged either.
EMAIL_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def redact(text: str) -> str:
    text = SECRET_PARAMETER.sub(rf"\g<1>{MARK}", SECRET_IN_PATH.sub(rf"\g<1>{MARK}", text))
    return EMAIL_ADDRESS.sub(MARK, PHONE_NUMBER.sub(MARK, text))


class RedactSecrets(logging.Filter):
    """Rewrites the record's message (and traceback) without the secrets; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            trace = logging.Formatter().formatException(record.exc_info)
            if redact(trace) != trace:
                record.exc_text = redact(trace)
        return True
