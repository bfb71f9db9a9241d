"""The Withings error hierarchy. Messages carry Withings' ``error`` text, never a token or secret.

- ``WithingsAuthError``: status 100–102, 200, 401 (invalid/expired access token, or a token call
  rejected as unauthorised). On a data call: refresh once, retry once, then needs re-authorization.
- ``WithingsRefreshTokenInvalid``: status 503 on a refresh (the refresh token is dead). A subclass of
  ``WithingsAuthError``: the participant must authorize again.
- ``WithingsTransientError``: 522, HTTP 5xx, timeouts, network errors, unknown statuses: retry with
  bounded backoff.
- ``WithingsRateLimited``: 601 (a transient error that carries ``wait_seconds``).
- ``WithingsTerminalError``: any other non-zero status (invalid parameters, not allowed, not
  implemented…): never retried blindly.
"""

from __future__ import annotations


class WithingsError(Exception):
    """Base class. ``status`` is Withings' in-body status (None for HTTP/network failures)."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint

    @property
    def short(self) -> str:
        """A short description fit for ``WithingsConnection.last_error``."""
        prefix = f"{self.endpoint}: " if self.endpoint else ""
        return f"{prefix}{self}"[:255]


class WithingsAuthError(WithingsError):
    pass


class WithingsRefreshTokenInvalid(WithingsAuthError):
    pass


class WithingsTransientError(WithingsError):
    pass


class WithingsRateLimited(WithingsTransientError):
    def __init__(self, message: str, *, wait_seconds: float, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.wait_seconds = wait_seconds


class WithingsTerminalError(WithingsError):
    pass


class WithingsAccountAlreadyLinked(WithingsError):
    """The Withings account is already linked to another participant (for the same app)."""


class ConnectionNotUsable(WithingsAuthError):
    """The connection needs re-authorization or was revoked: no call is attempted."""


AUTH_STATUSES = frozenset({100, 101, 102, 200, 401})
TERMINAL_STATUSES = frozenset(
    {214, 277, 2553, 2554, 2555, *range(201, 300), *range(300, 354), *range(501, 512)}
)
TIMEOUT_STATUS = 522
TOO_MANY_REQUESTS = 601
INVALID_PARAMS = 503
DEFAULT_WAIT_SECONDS = 60.0


def error_for_status(
    status: int, error: str, body: dict | None, *, endpoint: str, refresh: bool = False
) -> WithingsError:
    """Map a non-zero in-body ``status`` to an exception (docs/withings-api.md §5)."""
    text = f"status {status}: {error or 'no error text'}"[:300]
    if status in AUTH_STATUSES:
        cls = WithingsRefreshTokenInvalid if refresh else WithingsAuthError
        return cls(text, status=status, endpoint=endpoint)
    if status == INVALID_PARAMS and refresh:
        return WithingsRefreshTokenInvalid(text, status=status, endpoint=endpoint)
    if status == TOO_MANY_REQUESTS:
        wait = DEFAULT_WAIT_SECONDS
        if isinstance(body, dict):
            try:
                wait = max(1.0, float(body.get("wait_seconds", wait)))
            except (TypeError, ValueError):
                wait = DEFAULT_WAIT_SECONDS
        return WithingsRateLimited(text, wait_seconds=wait, status=status, endpoint=endpoint)
    if status == TIMEOUT_STATUS:
        return WithingsTransientError(text, status=status, endpoint=endpoint)
    if status == INVALID_PARAMS or status in TERMINAL_STATUSES:
        return WithingsTerminalError(text, status=status, endpoint=endpoint)
    return WithingsTransientError(text, status=status, endpoint=endpoint)
