"""Fixtures for the Withings sandbox tests: a real HTTP sandbox on a free port, a fake clock,
a registered client, and a tiny callback server standing in for the portal's webhook."""

from __future__ import annotations

import http.server
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from withings.sandbox import FakeClock, RunningSandbox, SandboxState, start_sandbox

CLIENT_ID = "portal-client"
CLIENT_SECRET = "portal-secret"
REDIRECT_URI = "http://portal.test/withings/callback"
T0 = 1_700_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def state(clock: FakeClock) -> SandboxState:
    """Limits off by default; the rate-limit tests switch them on."""
    st = SandboxState(now=clock, rate_limit_per_minute=None, identical_call_window=0)
    st.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
    return st


@pytest.fixture
def sandbox(state: SandboxState) -> Iterator[RunningSandbox]:
    running = start_sandbox(state)
    yield running
    running.stop()


class Api:
    """Speaks to the sandbox like a Withings client: form POSTs, Bearer tokens."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def post(self, path: str, token: str | None = None, timeout: float = 5, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = self.http.post(self.url + path, data=params, headers=headers, timeout=timeout)
        assert r.status_code == 200, r.text
        return r.json()

    def getmeas(self, token: str, **params: Any) -> Any:
        return self.post("/measure", token, action="getmeas", **params)

    def authorize(self, **overrides: str) -> requests.Response:
        params = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "state": "st-123",
            "scope": "user.info,user.metrics",
            "redirect_uri": REDIRECT_URI,
            **overrides,
        }
        return self.http.get(self.url + "/oauth2_user/authorize2", params=params, allow_redirects=False)

    def exchange(self, code: str, **overrides: str) -> Any:
        params = {
            "action": "requesttoken",
            "grant_type": "authorization_code",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "code": code,
            "redirect_uri": REDIRECT_URI,
            **overrides,
        }
        return self.post("/v2/oauth2", **params)

    def refresh(self, refresh_token: str, **overrides: str) -> Any:
        params = {
            "action": "requesttoken",
            "grant_type": "refresh_token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": refresh_token,
            **overrides,
        }
        return self.post("/v2/oauth2", **params)


@pytest.fixture
def api(sandbox: RunningSandbox) -> Api:
    return Api(sandbox.url)


def query_of(location: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


@pytest.fixture
def user_token(state: SandboxState) -> tuple[str, str]:
    """(userid, access_token) of a fresh user with a BPM Connect."""
    userid = state.create_user()
    return userid, state.issue_tokens_for_test(userid, CLIENT_ID)["access_token"]


@dataclass
class Callback:
    """A fake portal webhook: answers HEAD with ``head_status``, records POSTed forms."""

    url: str
    head_status: int = 200
    post_status: int = 200
    heads: int = 0
    posts: list[dict[str, str]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def callback() -> Iterator[Callback]:
    cb = Callback(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            cb.heads += 1
            self.send_response(cb.head_status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            cb.content_types.append(self.headers.get("Content-Type", ""))
            cb.posts.append(dict(urllib.parse.parse_qsl(body)))
            self.send_response(cb.post_status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            cb.received.set()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    cb.url = f"http://127.0.0.1:{server.server_address[1]}/withings/notify/s3cret"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield cb
    server.shutdown()
    server.server_close()
