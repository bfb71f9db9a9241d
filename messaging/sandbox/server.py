"""Serve the SMS sandbox on its own port in a background thread (tests, ``python -m``); the dev
server mounts ``SmsSandboxApp`` instead (config/wsgi_dev.py)."""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .app import SmsSandboxApp
from .state import SmsSandboxState


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


@dataclass
class RunningSmsSandbox:
    """``url`` has no trailing slash: TWILIO_API_URL for the portal."""

    url: str
    state: SmsSandboxState
    server: _ThreadingServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_sms_sandbox(state: SmsSandboxState, host: str = "127.0.0.1", port: int = 0) -> RunningSmsSandbox:
    server = make_server(host, port, SmsSandboxApp(state), server_class=_ThreadingServer,
                         handler_class=_QuietHandler)  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                              name="sms-sandbox")  # fmt: skip
    thread.start()
    return RunningSmsSandbox(f"http://{host}:{server.server_address[1]}", state, server, thread)
