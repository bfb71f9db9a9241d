"""Serve the fake REDCap over HTTP on a free port in a daemon thread (tests, benchmarks)."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .state import ApiError, FakeRedcap

MAX_BODY = 50 * 1024 * 1024


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


def _json(start_response: Callable[..., Any], status: int, body: Any) -> Iterable[bytes]:
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}
    data = json.dumps(body).encode()
    start_response(
        f"{status} {reason.get(status, 'Error')}",
        [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))],
    )
    return [data]


class FakeRedcapApp:
    """WSGI: ``POST …/api/`` with REDCap's form parameters."""

    def __init__(self, state: FakeRedcap) -> None:
        self.state = state

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").endswith("/api/"):
            return _json(start_response, 404, {"error": "Not found"})
        if environ["REQUEST_METHOD"] != "POST":
            return _json(start_response, 405, {"error": "The API only answers POST requests"})
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY:
            return _json(start_response, 400, {"error": "The request is too large"})
        params = parse_qs(environ["wsgi.input"].read(length).decode(), keep_blank_values=True)
        fault = self.state.take_fault()
        if fault is not None:
            status, body = fault
            data = body.encode()
            start_response(
                f"{status} Error", [("Content-Type", "text/html"), ("Content-Length", str(len(data)))]
            )
            return [data]
        try:
            return _json(start_response, 200, self.state.handle(params))
        except ApiError as exc:
            return _json(start_response, exc.status, {"error": exc.message})


@dataclass
class RunningFakeRedcap:
    """``api_url`` ends in ``/api/`` as REDCap's does."""

    state: FakeRedcap
    server: _ThreadingServer
    thread: threading.Thread
    base_url: str

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningFakeRedcap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_fake_redcap(
    state: FakeRedcap | None = None, host: str = "127.0.0.1", port: int = 0
) -> RunningFakeRedcap:
    state = state if state is not None else FakeRedcap()
    server = make_server(
        host, port, FakeRedcapApp(state), server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    real_host, real_port = server.server_address[:2]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-redcap", daemon=True
    )
    thread.start()
    return RunningFakeRedcap(state, server, thread, f"http://{real_host}:{real_port}")
