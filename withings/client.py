"""All Withings HTTP. Every call: through the shared rate limiter, with a timeout, in-body ``status``
checked and mapped to ``withings.errors``. Logs and errors carry Withings' ``error`` text, never a
token, code or secret.

The OAuth parts use requests-oauthlib with Withings' compliance hooks (unwrap ``body``, non-zero
``status`` → our errors, ``action=requesttoken`` and the client id/secret in the form body, a
comma-joined scope). Sessions never auto-refresh: refreshing is ``services.tokens``' job, under a
row lock. Data calls that need a connection (refresh once on 401) live in ``services.api``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.cache import cache
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from core import metrics

from .errors import (
    WithingsError,
    WithingsRateLimited,
    WithingsTerminalError,
    WithingsTransientError,
    error_for_status,
)
from .ratelimit import get_limiter

logger = logging.getLogger(__name__)

# Transport security is enforced by `_check_transport` below (https unless loopback or DEBUG);
# oauthlib's own global check would otherwise refuse the sandbox on http://127.0.0.1.
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

SCOPE = "user.metrics"
TOKEN_PATH = "/v2/oauth2"
AUTHORIZE_PATH = "/oauth2_user/authorize2"
SIGNATURE_PATH = "/v2/signature"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Withings refuses an identical call (same endpoint, arguments and token) within 10 s with a 601,
#: which also pauses every worker of the app through the shared limiter.
IDENTICAL_CALL_WINDOW = 10


@dataclass(frozen=True)
class AppCredentials:
    """A Withings developer application: the env-configured one, or a study's own."""

    client_id: str
    client_secret: str = field(repr=False)
    app_id: int | None = None  # WithingsApp pk; None for the env-configured app

    @property
    def limiter_key(self) -> str:
        return self.client_id


@dataclass(frozen=True)
class TokenSet:
    userid: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    scope: str


def _check_transport(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" or parts.hostname in LOOPBACK_HOSTS or settings.DEBUG:
        return
    raise WithingsTerminalError("refusing to send credentials over plain http to a remote host")


def _timeout() -> float:
    return float(getattr(settings, "WITHINGS_HTTP_TIMEOUT", 10))


def api_url(path: str) -> str:
    return f"{settings.WITHINGS_API_URL}{path}"


def authorize_base_url() -> str:
    return f"{settings.WITHINGS_AUTH_URL}{AUTHORIZE_PATH}"


_local = threading.local()


def _http() -> requests.Session:
    """One pooled ``requests.Session`` per thread (sessions are not thread-safe)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def _unwrap(response: requests.Response, *, endpoint: str, app_key: str, refresh: bool = False) -> dict:
    """Check the HTTP status and the in-body ``status``; return ``body``. Counts the call's outcome."""
    try:
        body = _unwrap_checked(response, endpoint=endpoint, app_key=app_key, refresh=refresh)
    except WithingsRateLimited:
        _count_call(app_key, endpoint, "rate_limited")
        raise
    except WithingsTransientError:
        _count_call(app_key, endpoint, "transient")
        raise
    except WithingsError:
        _count_call(app_key, endpoint, "terminal")
        raise
    _count_call(app_key, endpoint, "ok")
    return body


def _count_call(app_key: str, endpoint: str, outcome: str) -> None:
    metrics.inc("portal_withings_calls", app=app_key, endpoint=endpoint, outcome=outcome)


def _unwrap_checked(response: requests.Response, *, endpoint: str, app_key: str, refresh: bool) -> dict:
    code = response.status_code
    if code >= 500:
        raise WithingsTransientError(f"HTTP {code}", endpoint=endpoint)
    if code == 429:
        raise WithingsRateLimited("HTTP 429", wait_seconds=60.0, endpoint=endpoint)
    if code != 200:
        raise WithingsTerminalError(f"HTTP {code}", endpoint=endpoint)
    try:
        data = response.json()
        status = int(data["status"])
    except (ValueError, KeyError, TypeError) as exc:
        raise WithingsTransientError("answer is not a Withings envelope", endpoint=endpoint) from exc
    body = data.get("body") if isinstance(data.get("body"), dict) else {}
    if status != 0:
        exc = error_for_status(status, str(data.get("error") or ""), body, endpoint=endpoint, refresh=refresh)
        logger.warning("withings %s failed: %s (%s)", endpoint, exc, type(exc).__name__)
        if isinstance(exc, WithingsRateLimited):
            get_limiter().pause(app_key, exc.wait_seconds)
        raise exc
    return body


def _endpoint(path: str, action: str) -> str:
    return f"{path.strip('/') or '-'} {action}".strip()


def _acquire(credentials: AppCredentials) -> None:
    started = time.monotonic()
    try:
        get_limiter().acquire(credentials.limiter_key, timeout=settings.WITHINGS_RATE_LIMIT_MAX_WAIT)
    finally:
        metrics.observe(
            "portal_withings_ratelimit_wait_seconds", time.monotonic() - started, app=credentials.limiter_key
        )


def _call_key(
    credentials: AppCredentials, path: str, params: dict[str, Any], access_token: str | None
) -> str:
    """A digest of everything that makes two calls identical for Withings (the token only hashed)."""
    digest = hashlib.sha256()
    for part in (
        credentials.limiter_key,
        path,
        access_token or "",
        *(f"{k}={params[k]}" for k in sorted(params)),
    ):
        digest.update(str(part).encode() + b"\0")
    return f"withings:call:{digest.hexdigest()}"


def _refuse_identical_call(key: str, endpoint: str) -> None:
    """Never send Withings an identical call within its 10 s window: it would answer 601 and pause
    every participant of the app. The caller retries after the window (a 601 of our own making,
    which does not pause the shared limiter)."""
    sent = cache.get(key)
    if sent is not None:
        wait = IDENTICAL_CALL_WINDOW - (time.time() - float(sent))
        if wait > 0:
            raise WithingsRateLimited(
                "identical call within 10 s, not sent", wait_seconds=wait, endpoint=endpoint
            )


def api_post(
    credentials: AppCredentials, path: str, params: dict[str, Any], *, access_token: str | None = None
) -> dict:
    """One form POST to ``WITHINGS_API_URL + path``; returns the unwrapped ``body``."""
    url = api_url(path)
    endpoint = _endpoint(path, str(params.get("action", "")))
    _check_transport(url)
    key = _call_key(credentials, path, params, access_token)
    _refuse_identical_call(key, endpoint)
    headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
    _acquire(credentials)
    try:
        response = _http().post(url, data=params, headers=headers, timeout=_timeout())
    except requests.RequestException as exc:
        _count_call(credentials.limiter_key, endpoint, "network")
        raise WithingsTransientError(f"network error: {type(exc).__name__}", endpoint=endpoint) from exc
    body = _unwrap(response, endpoint=endpoint, app_key=credentials.limiter_key)
    cache.set(key, time.time(), timeout=IDENTICAL_CALL_WINDOW)
    return body


# -- OAuth (requests-oauthlib) ------------------------------------------------------------


def _token_hook(*, refresh: bool, app_key: str):
    endpoint = _endpoint(TOKEN_PATH, "requesttoken refresh" if refresh else "requesttoken code")

    def hook(response: requests.Response) -> requests.Response:
        body = _unwrap(response, endpoint=endpoint, app_key=app_key, refresh=refresh)
        response._content = json.dumps(body).encode()
        return response

    return hook


def oauth_session(
    credentials: AppCredentials, *, redirect_uri: str | None = None, state: str | None = None
) -> OAuth2Session:
    """A session with Withings' compliance hooks. Scope is only sent on the authorize URL (and
    comma-joined); token calls pass no scope, so a narrower grant never trips "Scope has changed"."""
    session = OAuth2Session(client_id=credentials.client_id, redirect_uri=redirect_uri, state=state)
    session.register_compliance_hook(
        "access_token_response", _token_hook(refresh=False, app_key=credentials.limiter_key)
    )
    session.register_compliance_hook(
        "refresh_token_response", _token_hook(refresh=True, app_key=credentials.limiter_key)
    )
    return session


def authorization_url(credentials: AppCredentials, *, redirect_uri: str, state: str) -> str:
    session = OAuth2Session(
        client_id=credentials.client_id, redirect_uri=redirect_uri, scope=SCOPE, state=state
    )
    url, _state = session.authorization_url(authorize_base_url())
    return url


def _token_set(token: dict) -> TokenSet:
    try:
        return TokenSet(
            userid=str(token["userid"]),
            access_token=str(token["access_token"]),
            refresh_token=str(token["refresh_token"]),
            expires_in=int(token.get("expires_in") or 10800),
            scope=",".join(token.get("scope") or [])
            if isinstance(token.get("scope"), list)
            else str(token.get("scope") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WithingsTerminalError("token answer lacks userid or tokens", endpoint="v2/oauth2") from exc


def _oauth_call(credentials: AppCredentials, endpoint: str, call) -> dict:
    _check_transport(api_url(TOKEN_PATH))
    _acquire(credentials)
    try:
        return call()
    except WithingsError:
        raise
    except requests.RequestException as exc:
        _count_call(credentials.limiter_key, endpoint, "network")
        raise WithingsTransientError(f"network error: {type(exc).__name__}", endpoint=endpoint) from exc
    except (OAuth2Error, Warning, ValueError) as exc:
        raise WithingsTerminalError(
            f"unusable token answer: {type(exc).__name__}", endpoint=endpoint
        ) from exc


def exchange_code(credentials: AppCredentials, *, code: str, redirect_uri: str) -> TokenSet:
    """``action=requesttoken grant_type=authorization_code`` (the code lives 30 s)."""
    session = oauth_session(credentials, redirect_uri=redirect_uri)
    token = _oauth_call(
        credentials,
        "v2/oauth2 requesttoken code",
        lambda: session.fetch_token(
            api_url(TOKEN_PATH),
            code=code,
            client_secret=credentials.client_secret,
            include_client_id=True,
            timeout=_timeout(),
            action="requesttoken",
        ),
    )
    return _token_set(token)


def refresh_tokens(credentials: AppCredentials, *, refresh_token: str) -> TokenSet:
    """``action=requesttoken grant_type=refresh_token``. Call only under the connection's row lock."""
    session = oauth_session(credentials)
    token = _oauth_call(
        credentials,
        "v2/oauth2 requesttoken refresh",
        lambda: session.refresh_token(
            api_url(TOKEN_PATH),
            refresh_token=refresh_token,
            timeout=_timeout(),
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
            action="requesttoken",
        ),
    )
    return _token_set(token)


# -- signed calls (docs/withings-api.md §6) ------------------------------------------------------------------


def sign(secret: str, *parts: str) -> str:
    return hmac.new(secret.encode(), ",".join(parts).encode(), hashlib.sha256).hexdigest()


def get_nonce(credentials: AppCredentials) -> str:
    timestamp = str(int(time.time()))
    body = api_post(
        credentials,
        SIGNATURE_PATH,
        {
            "action": "getnonce",
            "client_id": credentials.client_id,
            "timestamp": timestamp,
            "signature": sign(credentials.client_secret, "getnonce", credentials.client_id, timestamp),
        },
    )
    nonce = body.get("nonce")
    if not nonce:
        raise WithingsTerminalError("getnonce answered without a nonce", endpoint="v2/signature getnonce")
    return str(nonce)


def signed_revoke(credentials: AppCredentials, *, userid: str) -> None:
    """Revoke this user's grant to the app (signed ``oauth2 action=revoke``)."""
    nonce = get_nonce(credentials)
    api_post(
        credentials,
        TOKEN_PATH,
        {
            "action": "revoke",
            "client_id": credentials.client_id,
            "nonce": nonce,
            "signature": sign(credentials.client_secret, "revoke", credentials.client_id, nonce),
            "userid": userid,
        },
    )
