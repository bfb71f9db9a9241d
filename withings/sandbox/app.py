"""``SandboxApp``: the fake Withings as a plain WSGI application.

Serves, relative to wherever it is mounted (``SCRIPT_NAME``):
``/oauth2_user/authorize2`` (consent page, GET; the Allow/Deny form posts back to it),
``/v2/oauth2``, ``/measure``, ``/notify``, ``/v2/user``, ``/v2/signature`` (form-encoded, HTTP 200
envelopes) and the JSON control API under ``/_sandbox/``.
"""

from __future__ import annotations

import hmac
import html
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from . import api, control
from ._oauth import AuthorizeError
from .state import SandboxState

StartResponse = Callable[..., Any]
AUTHORIZE_PATH = "/oauth2_user/authorize2"
CONTROL_PREFIX = "/_sandbox"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY = 10 * 1024 * 1024
AUTHORIZE_FIELDS = ("response_type", "client_id", "state", "scope", "redirect_uri", "mode")

_STATUS_TEXT = {
    200: "OK",
    302: "Found",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
}


def _status_line(code: int) -> str:
    return f"{code} {_STATUS_TEXT.get(code, 'Server Error' if code >= 500 else 'Error')}"


def with_query(url: str, params: dict[str, str]) -> str:
    """Append query parameters to a redirect URI that may already carry some."""
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)


class SandboxApp:
    """WSGI callable wrapping a ``SandboxState``.

    Args:
        state: the state to serve (a fresh default one if omitted).
        control_token: if set, the control API requires header ``X-Sandbox-Token: <token>``.
        enable_control: serve the ``/_sandbox/`` control API at all.
    """

    def __init__(
        self,
        state: SandboxState | None = None,
        *,
        control_token: str | None = None,
        enable_control: bool = True,
    ) -> None:
        self.state = state if state is not None else SandboxState()
        self.control_token = control_token
        self.enable_control = enable_control
        self._closing = threading.Event()

    def close(self) -> None:
        """Wake requests sleeping in a "slow"/"timeout" fault (used when the server stops)."""
        self._closing.set()

    def _sleep(self, seconds: float) -> None:
        self._closing.wait(seconds)

    # -- WSGI ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path == AUTHORIZE_PATH:
            status, headers, body = self._authorize(environ, method)
        elif path in api.PATHS:
            status, headers, body = self._api(environ, method, path)
        elif self.enable_control and (path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")):
            status, headers, body = self._control(environ, method, path[len(CONTROL_PREFIX) :])
        else:
            status, headers, body = self._json(404, {"error": f"not found: {path}"})
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [b"" if method == "HEAD" else body]

    @staticmethod
    def _json(code: int, obj: Any) -> tuple[str, list[tuple[str, str]], bytes]:
        body = json.dumps(obj).encode()
        return _status_line(code), [("Content-Type", "application/json")], body

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length <= 0:
            return b""
        return environ["wsgi.input"].read(min(length, MAX_BODY))

    def _form(self, environ: dict[str, Any]) -> tuple[dict[str, str], bool]:
        """Query-string plus form-body parameters (the body wins); False if the body is not
        form-encoded (a JSON body, for instance, is not what Withings accepts)."""
        params = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        raw = self._read_body(environ)
        if not raw:
            return params, True
        ctype = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
        if ctype != FORM_TYPE:
            return params, False
        params.update(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        return params, True

    # -- Withings API --------------------------------------------------------------------

    def _api(
        self, environ: dict[str, Any], method: str, path: str
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        if method not in ("GET", "POST"):
            return self._json(405, {"error": "use POST"})
        params, form_ok = self._form(environ)
        if not form_ok:
            envelope = {"status": 503, "body": {}, "error": f"Invalid Params: the body must be {FORM_TYPE}"}
            return self._json(200, envelope)
        auth = environ.get("HTTP_AUTHORIZATION") or ""
        scheme, _, token = auth.partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
        result = self.state.call(path, params, bearer, sleep=self._sleep)
        if result.payload is None:
            headers = result.headers or [("Content-Type", "text/plain")]
            return _status_line(result.http_status), list(headers), result.text.encode()
        return self._json(result.http_status, result.payload)

    # -- authorize -----------------------------------------------------------------------

    def _authorize(self, environ: dict[str, Any], method: str) -> tuple[str, list[tuple[str, str]], bytes]:
        if method == "POST":
            params, _ = self._form(environ)
        elif method in ("GET", "HEAD"):
            params = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
        else:
            return self._html(405, "Method not allowed", "")
        try:
            scope = self.state.check_authorize(
                client_id=params.get("client_id"),
                redirect_uri=params.get("redirect_uri"),
                response_type=params.get("response_type"),
                state=params.get("state"),
                scope=params.get("scope"),
            )
        except AuthorizeError as exc:
            if exc.redirect:
                target = params["redirect_uri"]
                return self._redirect(
                    with_query(target, {"error": exc.code, "state": params.get("state", "")})
                )
            return self._html(400, "Authorization error", html.escape(str(exc)))
        redirect_uri = params["redirect_uri"]
        client_id = params["client_id"]
        wanted_user = (params.get("sandbox_userid") or "").strip() or None

        decision = params.get("decision") if method == "POST" else None
        if decision is None and method != "POST":
            if params.get("mode") == "demo":
                decision, wanted_user = "allow", self.state.demo_user()
            elif self.state.auto_approve:
                decision = "allow"
            else:
                return self._consent_page(environ, params, scope)
        if decision != "allow":
            return self._redirect(
                with_query(redirect_uri, {"error": "access_denied", "state": params["state"]})
            )
        if wanted_user is not None and not self.state.has_user(wanted_user):
            self.state.create_user(wanted_user)
        _userid, code = self.state.approve(
            client_id=client_id, redirect_uri=redirect_uri, scope=scope, userid=wanted_user
        )
        return self._redirect(with_query(redirect_uri, {"code": code, "state": params["state"]}))

    @staticmethod
    def _redirect(location: str) -> tuple[str, list[tuple[str, str]], bytes]:
        return _status_line(302), [("Location", location), ("Content-Type", "text/plain")], b""

    @staticmethod
    def _html(code: int, title: str, body_html: str) -> tuple[str, list[tuple[str, str]], bytes]:
        page = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)} · Withings sandbox</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{body_html}</body></html>"
        )
        return _status_line(code), [("Content-Type", "text/html; charset=utf-8")], page.encode()

    def _consent_page(
        self, environ: dict[str, Any], params: dict[str, str], scope: str
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        action = (environ.get("SCRIPT_NAME") or "").rstrip("/") + AUTHORIZE_PATH
        hidden = "".join(
            f"<input type='hidden' name='{name}' value='{html.escape(params[name], quote=True)}'>"
            for name in AUTHORIZE_FIELDS
            if name in params
        )
        user = html.escape(params.get("sandbox_userid", ""), quote=True)
        body = (
            "<p>Withings <strong>sandbox</strong>: the application "
            f"<code>{html.escape(params['client_id'])}</code> asks for "
            f"<code>{html.escape(scope)}</code>.</p>"
            f"<form method='post' action='{html.escape(action, quote=True)}'>{hidden}"
            "<p><label>Sandbox user id (empty: create a new user) "
            f"<input name='sandbox_userid' value='{user}'></label></p>"
            "<button type='submit' name='decision' value='allow' id='allow'>Allow this app</button> "
            "<button type='submit' name='decision' value='deny' id='deny'>Deny</button>"
            "</form>"
        )
        return self._html(200, "Authorize access to your data", body)

    # -- control API ---------------------------------------------------------------------

    def _control(
        self, environ: dict[str, Any], method: str, subpath: str
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        if self.control_token is not None:
            given = environ.get("HTTP_X_SANDBOX_TOKEN") or ""
            if not hmac.compare_digest(given.encode(), self.control_token.encode()):
                return self._json(403, {"error": "X-Sandbox-Token required"})
        raw = self._read_body(environ)
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return self._json(400, {"error": "body must be JSON"})
        if not isinstance(body, dict):
            return self._json(400, {"error": "body must be a JSON object"})
        code, obj = control.handle(self.state, method, subpath or "/", body)
        return self._json(code, obj)
