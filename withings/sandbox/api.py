"""The Withings web services as a transport-free function: ``call(state, endpoint, params, ...)``.

Per request: injected fault (if one fires) → rate limits (per app, identical-call rule) →
the action's handler → envelope. Everything is logged (without secrets) and counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors
from .errors import WithingsError, ok

if TYPE_CHECKING:
    from .state import SandboxState

#: URL path → endpoint name used by faults, stats and logs.
PATHS = {
    "/v2/oauth2": "oauth2",
    "/measure": "measure",
    "/notify": "notify",
    "/v2/user": "user",
    "/v2/signature": "signature",
    "/v2/measure": "measure",  # exists upstream, but getmeas is not there: answers 2554
}
#: params never written to the request log.
SECRET_PARAMS = frozenset({"client_secret", "code", "refresh_token", "signature", "nonce", "access_token"})


@dataclass
class ApiResult:
    """What to answer: ``payload`` as a JSON body with HTTP 200, or ``text`` with ``http_status``."""

    http_status: int = 200
    payload: dict[str, Any] | None = None
    text: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def status(self) -> int | None:
        return None if self.payload is None else self.payload.get("status")


def _needs_user(state: SandboxState, bearer: str | None) -> tuple[str, str, str]:
    token = state.authenticate(bearer)
    return token.userid, token.client_id, token.scope


def _getmeas(state: SandboxState, params: dict[str, str], bearer: str | None) -> dict[str, Any]:
    userid, _client, scope = _needs_user(state, bearer)
    if "user.metrics" not in scope.split(","):
        raise WithingsError(errors.NOT_ALLOWED, "Not allowed: user.metrics scope needed")
    return state.getmeas(userid, params)


def _notify(state: SandboxState, params: dict[str, str], bearer: str | None) -> dict[str, Any]:
    userid, client_id, _scope = _needs_user(state, bearer)
    return state.notify(userid, client_id, params)


def _getdevice(state: SandboxState, params: dict[str, str], bearer: str | None) -> dict[str, Any]:
    userid, _client, _scope = _needs_user(state, bearer)
    return state.getdevice(userid)


Action = Callable[["SandboxState", dict[str, str], "str | None"], dict[str, Any]]
ACTIONS: dict[tuple[str, str], Action] = {
    ("/v2/oauth2", "requesttoken"): lambda state, params, _bearer: state.requesttoken(params),
    ("/v2/oauth2", "revoke"): lambda state, params, _bearer: state.signed_revoke(params),
    ("/v2/signature", "getnonce"): lambda state, params, _bearer: state.getnonce(params),
    ("/measure", "getmeas"): _getmeas,
    ("/v2/user", "getdevice"): _getdevice,
    **{("/notify", a): _notify for a in ("subscribe", "get", "list", "revoke", "update")},
}


def _handle(
    state: SandboxState, path: str, action: str, params: dict[str, str], bearer: str | None
) -> dict[str, Any]:
    handler = ACTIONS.get((path, action))
    if handler is None:
        raise WithingsError(errors.NOT_IMPLEMENTED, "Wrong action or wrong webservice")
    return handler(state, params, bearer)


def call(
    state: SandboxState,
    path: str,
    params: dict[str, str],
    bearer: str | None = None,
    *,
    sleep: Callable[[float], Any] | None = None,
) -> ApiResult:
    """Answer one Withings API request to ``path`` (a key of ``PATHS``).

    The access token comes in the ``Authorization: Bearer`` header or, as some third-party clients
    send it and Withings accepts, as an ``access_token`` parameter (form field or query string);
    the header wins when both are given.
    """
    sleep = sleep or time.sleep
    params = dict(params)
    token_param = params.pop("access_token", "")
    bearer = bearer or token_param or None
    endpoint = PATHS[path]
    action = params.get("action") or ""
    client_id = state.client_of_token(bearer) if bearer else params.get("client_id")
    entry: dict[str, Any] = {
        "endpoint": endpoint,
        "path": path,
        "action": action,
        "client_id": client_id,
        "params": sorted(k for k in params if k not in SECRET_PARAMS),
    }

    fault = state.pick_fault(endpoint, has_bearer=bearer is not None)
    result: ApiResult | None = None
    if fault is not None:
        entry["fault"] = fault.kind
        if fault.kind == "slow":
            sleep(fault.delay)
        elif fault.kind == "timeout":
            sleep(fault.delay)
            result = ApiResult(payload=WithingsError(errors.TIMEOUT, "Timeout").envelope())
        elif fault.kind == "http5xx":
            result = ApiResult(
                http_status=fault.http_status,
                text=f"<html><body><h1>{fault.http_status} Server Error</h1></body></html>",
                headers=[("Content-Type", "text/html; charset=utf-8")],
            )
        elif fault.kind == "601":
            err = WithingsError(
                errors.TOO_MANY_REQUESTS, "Too many requests", {"wait_seconds": fault.wait_seconds}
            )
            result = ApiResult(payload=err.envelope())
        elif fault.kind == "522":
            result = ApiResult(payload=WithingsError(errors.TIMEOUT, "Timeout").envelope())
        elif fault.kind == "401":
            err = WithingsError(errors.INVALID_TOKEN, errors.INVALID_TOKEN_TEXT)
            result = ApiResult(payload=err.envelope())

    if result is None and client_id and client_id in state.client_ids():
        key = (path, tuple(sorted(params.items())), bearer)
        wait = state.rate_check(client_id, key)
        if wait is not None:
            entry["rate_limited"] = True
            err = WithingsError(errors.TOO_MANY_REQUESTS, "Too many requests", {"wait_seconds": wait})
            result = ApiResult(payload=err.envelope())

    if result is None:
        try:
            result = ApiResult(payload=ok(_handle(state, path, action, params, bearer)))
        except WithingsError as exc:
            result = ApiResult(payload=exc.envelope())

    entry["http_status"] = result.http_status
    entry["status"] = result.status
    state.record(entry)
    return result
