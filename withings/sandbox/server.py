"""Run the sandbox on its own port (tests, Celery soak runs, ``python -m withings.sandbox``) or
mount it inside another WSGI application (the Django dev server) with ``mount``."""

from __future__ import annotations

import socketserver
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .app import SandboxApp
from .state import SandboxState

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """One daemon thread per request, so a "slow" fault never blocks other calls."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client gave up first (the "timeout" fault does that on purpose)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


@dataclass
class RunningSandbox:
    """A sandbox serving in a background thread. ``url`` has no trailing slash."""

    url: str
    state: SandboxState
    app: SandboxApp
    server: ThreadingWSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        self.app.close()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(
    state: SandboxState | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    control_token: str | None = None,
) -> RunningSandbox:
    """Serve a sandbox on ``host:port`` (0: a free port) in a daemon thread."""
    state = state if state is not None else SandboxState()
    app = SandboxApp(state, control_token=control_token)
    server = make_server(host, port, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler)
    real_host, real_port = server.server_address[:2]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="withings-sandbox", daemon=True
    )
    thread.start()
    url_host = real_host if ":" not in str(real_host) else f"[{real_host}]"
    return RunningSandbox(f"http://{url_host}:{real_port}", state, app, server, thread)


def mount(main_app: WSGIApp, sandbox_app: WSGIApp, prefix: str = "/sandbox") -> WSGIApp:
    """A WSGI dispatcher sending ``prefix/...`` to the sandbox (with ``SCRIPT_NAME`` extended
    and ``PATH_INFO`` stripped as WSGI requires) and everything else to ``main_app``."""
    prefix = "/" + prefix.strip("/")

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == prefix or path.startswith(prefix + "/"):
            environ = dict(environ)
            environ["SCRIPT_NAME"] = (environ.get("SCRIPT_NAME") or "").rstrip("/") + prefix
            environ["PATH_INFO"] = path[len(prefix) :] or "/"
            return sandbox_app(environ, start_response)
        return main_app(environ, start_response)

    return dispatch
