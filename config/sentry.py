"""Optional error reporting to Sentry (``SENTRY_DSN``), scrubbed like the logs.

Nothing personal is sent (``send_default_pii=False``, no local variables, no request bodies), and
``before_send``/``before_breadcrumb`` walk every event: values under a sensitive key (tokens,
secrets, passwords, cookies, authorization, contact fields) are replaced, and every string goes
through ``config.redaction`` (bearer paths, token parameters, phone numbers, e-mail addresses)."""

from __future__ import annotations

import re
from typing import Any

from config.redaction import MARK, redact

SENSITIVE_KEY = re.compile(
    r"token|secret|passw|authorization|cookie|sessionid|csrf|signature|api[_-]?key|dsn|e-?mail|phone"
    r"|^(?:code|state|key|to|body)$",
    re.IGNORECASE,
)
#: Parts of an event that can only hold what we never send.
DROPPED_REQUEST_PARTS = ("data", "cookies", "env")


def scrub(value: Any, key: str = "") -> Any:
    if key and SENSITIVE_KEY.search(key) and isinstance(value, str | bytes | int | list | dict):
        return MARK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # Headers come as [name, value] pairs: the name says what the value is.
        if len(value) == 2 and isinstance(value[0], str) and SENSITIVE_KEY.search(value[0]):
            return [value[0], MARK]
        return [scrub(item) for item in value]
    return value


def before_send(event: dict, hint: dict | None = None) -> dict:  # noqa: ARG001 — sentry's signature
    request = event.get("request")
    if isinstance(request, dict):
        for part in DROPPED_REQUEST_PARTS:
            request.pop(part, None)
    event.pop("user", None)
    return scrub(event)


def before_breadcrumb(crumb: dict, hint: dict | None = None) -> dict:  # noqa: ARG001
    return scrub(crumb)


def init_sentry(*, dsn: str, environment: str, release: str, traces_sample_rate: float = 0.0) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=traces_sample_rate,
        before_send=before_send,
        before_breadcrumb=before_breadcrumb,
    )
