"""``SmsSandboxApp``: the fake gateway as a WSGI application. Relative to where it is mounted:

- ``POST /2010-04-01/Accounts/<sid>/Messages.json`` — Twilio's Messages API (basic auth SID:token,
  form-encoded To/From/Body/StatusCallback; 201 with ``sid``/``status``, errors ``code``/``message``);
- ``GET /`` — the texts sent, per number, each with a form to reply as that number;
- ``POST /reply`` — that form (posts a signed inbound webhook to the portal);
- ``GET /messages.json?number=…`` — the same list as JSON (tests, scripts).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import html
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from .state import GatewayError, SmsSandboxState, Text

StartResponse = Callable[..., Any]
MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
MAX_BODY = 64 * 1024
_REASONS = {200: "OK", 201: "Created", 303: "See Other", 400: "Bad Request", 401: "Unauthorized",
            404: "Not Found", 405: "Method Not Allowed"}  # fmt: skip


class SmsSandboxApp:
    def __init__(self, state: SmsSandboxState) -> None:
        self.state = state

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        match = MESSAGES_PATH.match(path)
        if match:
            if method != "POST":
                return self._json(start_response, 405, {"code": 20004, "message": "Method not allowed"})
            return self._create(environ, start_response, match.group("sid"))
        if path == "/" and method == "GET":
            return self._page(environ, start_response)
        if path == "/reply" and method == "POST":
            return self._reply(environ, start_response)
        if path == "/messages.json" and method == "GET":
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            number = (query.get("number") or [None])[0]
            return self._json(
                start_response, 200, {"messages": [_text_json(t) for t in self.state.texts(number)]}
            )
        return self._json(
            start_response, 404, {"code": 20404, "message": "The requested resource was not found"}
        )

    # -- API --------------------------------------------------------------------------------------

    def _authorised(self, environ: dict[str, Any], sid: str) -> bool:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (
            hmac.compare_digest(user, self.state.account_sid)
            and hmac.compare_digest(password, self.state.auth_token)
            and sid == self.state.account_sid
        )

    def _create(self, environ: dict[str, Any], start_response: StartResponse, sid: str) -> Iterable[bytes]:
        if not self._authorised(environ, sid):
            return self._json(start_response, 401, {"code": 20003, "message": "Authenticate", "status": 401})
        try:
            return self._json(start_response, 201, self.state.create_message(_form(environ)))
        except GatewayError as exc:
            return self._json(start_response, exc.http_status, exc.body())

    # -- the page ---------------------------------------------------------------------------------

    def _reply(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        form = _form(environ)
        number, body = form.get("number", "").strip(), form.get("body", "").strip()
        error = ""
        if body:
            try:
                self.state.reply(number, body)
            except ValueError as exc:
                error = str(exc)
        query = f"?{urllib.parse.urlencode({'error': error})}" if error else ""  # never the number in a URL
        start_response("303 See Other", [("Location", f"{_base(environ)}/{query}"), ("Content-Length", "0")])
        return [b""]

    def _page(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        error = (query.get("error") or [""])[0]
        base = html.escape(_base(environ))
        sections = []
        for number in self.state.numbers():
            rows = "".join(_row(text) for text in self.state.texts(number))
            stopped = (
                " <span class='stopped'>(replied STOP: texts blocked)</span>"
                if self.state.is_stopped(number)
                else ""
            )
            safe = html.escape(number)
            sections.append(
                f"<section aria-label='{safe}'><h2>{safe}{stopped}</h2><ol class='texts'>{rows}</ol>"
                f"<form method='post' action='{base}/reply'>"
                f"<input type='hidden' name='number' value='{safe}'>"
                f"<label>Reply as {safe} <input name='body' autocomplete='off' required></label> "
                f"<button type='submit'>Send reply</button></form></section>"
            )
        body = "".join(sections) or "<p>No text has been sent yet.</p>"
        alert = f"<p role='alert' class='error'>{html.escape(error)}</p>" if error else ""
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>SMS sandbox</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:46rem;margin:1rem auto;padding:0 1rem;"
            "color:#1a1a1a}"
            "ol.texts{list-style:none;padding:0}li{margin:.4rem 0;padding:.5rem .7rem;border-radius:.6rem;"
            "max-width:80%;white-space:pre-wrap}li.in{background:#dcf5dc;margin-left:auto}"
            "li.out{background:#e8eef7}small{display:block;color:#444}"
            ".stopped{color:#8a1c1c;font-size:.8em}"
            "section{border-top:1px solid #ccc;padding:.5rem 0}input[name=body]{width:14rem}"
            ".error{color:#8a1c1c}</style></head><body><main>"
            "<h1>SMS sandbox</h1>"
            f"<p>Texts sent through the fake gateway (from {html.escape(self.state.from_number)})."
            f" <a href='{base}/'>Refresh</a></p>{alert}{body}</main></body></html>"
        )
        data = page.encode()
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
        start_response("200 OK", [*headers, ("Content-Length", str(len(data)))])
        return [data]

    @staticmethod
    def _json(start_response: StartResponse, status: int, payload: dict[str, Any]) -> Iterable[bytes]:
        data = json.dumps(payload).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        return [data]


def _form(environ: dict[str, Any]) -> dict[str, str]:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length).decode("utf-8", "replace") if length else ""
    return {key: values[-1] for key, values in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}


def _base(environ: dict[str, Any]) -> str:
    return (environ.get("SCRIPT_NAME") or "").rstrip("/")


def _text_json(text: Text) -> dict[str, Any]:
    return {"sid": text.sid, "direction": text.direction, "number": text.number, "body": text.body,
            "status": text.status, "created": text.created}  # fmt: skip


def _row(text: Text) -> str:
    when = dt.datetime.fromtimestamp(text.created, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    side = "in" if text.direction == "inbound" else "out"
    label = "Reply from participant" if side == "in" else f"To participant · {text.status}"
    return f"<li class='{side}'>{html.escape(text.body)}<small>{label} · {when}</small></li>"
