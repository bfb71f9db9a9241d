"""Withings status codes and the error type the sandbox raises to answer with an error envelope.

Every Withings answer is HTTP 200 with ``{"status": <int>, "body": {...}}``; failures add an
``"error"`` text. The codes below are the ones the sandbox emits (see ``docs/withings-api.md`` §5).
"""

from __future__ import annotations

from typing import Any

OK = 0
#: invalid or expired access token (observed text below).
INVALID_TOKEN = 401
#: "Invalid Params" — also what a dead/used refresh token, a bad code or a bad client secret get.
INVALID_PARAMS = 503
#: no subscription matches ``notify get``.
NO_SUCH_SUBSCRIPTION = 286
#: the notification callback did not answer the HEAD check with 2xx.
CALLBACK_REJECTED = 293
#: no subscription could be deleted by ``notify revoke``.
NOTHING_TO_REVOKE = 294
#: a signed call (getnonce, revoke) carried a wrong signature or nonce.
INVALID_SIGNATURE = 342
#: token lacks the scope the service needs.
NOT_ALLOWED = 277
#: a timeout occurred upstream.
TIMEOUT = 522
#: wrong action or wrong webservice.
NOT_IMPLEMENTED = 2554
#: too many requests (``body.wait_seconds``).
TOO_MANY_REQUESTS = 601

INVALID_TOKEN_TEXT = "invalid_token: The access token provided is invalid"
INVALID_REFRESH_TEXT = "Invalid Params: invalid refresh_token"


class WithingsError(Exception):
    """Raised by handlers; rendered as ``{"status": status, "body": body, "error": error}``."""

    def __init__(self, status: int, error: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status}: {error}")
        self.status = status
        self.error = error
        self.body: dict[str, Any] = body or {}

    def envelope(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body, "error": self.error}


def ok(body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A success envelope."""
    return {"status": OK, "body": body or {}}


def invalid_params(what: str) -> WithingsError:
    return WithingsError(INVALID_PARAMS, f"Invalid Params: {what}")
