"""The real sandbox over HTTP, with the portal's settings pointed at it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pytest

from withings.sandbox import FakeClock, SandboxState, start_sandbox
from withings.sandbox.server import RunningSandbox

PORTAL = "http://testserver"
CALLBACK = f"{PORTAL}/withings/callback/"
CLIENT_SECRET = "sandbox-client-secret-do-not-log"


@dataclass
class Sandbox:
    running: RunningSandbox
    clock: FakeClock
    client_id: str
    client_secret: str

    @property
    def state(self) -> SandboxState:
        return self.running.state

    @property
    def url(self) -> str:
        return self.running.url

    def linked_tokens(self, userid: str | None = None) -> dict:
        """A new sandbox user (unless given) and the token body a code exchange would return."""
        userid = userid or self.state.create_user()
        return self.state.issue_tokens_for_test(userid, self.client_id, scope="user.metrics")


LIMITER_DB = 15


@pytest.fixture
def limiter_redis_url(redis_url) -> str:
    """Redis for the rate limiter in tests: a database nobody flushes. The suite-wide fixture
    (and any other test session sharing this Redis) flushes the cache database, which would wipe
    limiter state in the middle of a test. Keys here are unique per test and expire."""
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{LIMITER_DB}"))


@pytest.fixture
def sandbox(settings, limiter_redis_url):
    clock = FakeClock()
    state = SandboxState(auto_approve=True, rate_limit_per_minute=None, identical_call_window=0, now=clock)
    client_id = f"portal-{secrets.token_hex(4)}"
    state.register_client(client_id, CLIENT_SECRET, [CALLBACK])
    running = start_sandbox(state)
    settings.WITHINGS_API_URL = running.url
    settings.WITHINGS_AUTH_URL = running.url
    settings.WITHINGS_CLIENT_ID = client_id
    settings.WITHINGS_CLIENT_SECRET = CLIENT_SECRET
    settings.PORTAL_BASE_URL = PORTAL
    settings.WITHINGS_HTTP_TIMEOUT = 5
    settings.WITHINGS_RATE_LIMIT_PER_MINUTE = 100_000
    settings.REDIS_URL = limiter_redis_url  # only the limiter reads it after start-up
    try:
        yield Sandbox(running, clock, client_id, CLIENT_SECRET)
    finally:
        running.stop()


def linked_connection(sandbox: Sandbox, **kwargs):
    """A connection holding real sandbox tokens for a new sandbox user."""
    from tests.factories import WithingsConnectionFactory

    body = sandbox.linked_tokens()
    return WithingsConnectionFactory(
        app_client_id=sandbox.client_id,
        withings_userid=str(body["userid"]),
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        scope=body["scope"],
        **kwargs,
    )


def spy_countdowns(monkeypatch, task) -> list:
    """The `countdown` of every retry the task asks for (the retry itself still happens)."""
    countdowns: list = []
    original = task.retry

    def spy(*args, **kwargs):
        countdowns.append(kwargs.get("countdown"))
        return original(*args, **kwargs)

    monkeypatch.setattr(task, "retry", spy)
    return countdowns


def after_identical_call_window() -> None:
    """What waiting out Withings' 10 s identical-call window does: the guard against repeating a call
    (and a notification sync's coalescing window) forget what was sent. Both live in the cache."""
    from django.core.cache import cache

    cache.clear()


def bp_groups_visible(sandbox: Sandbox, uid: str) -> set[int]:
    """Grpids of the blood-pressure groups the sandbox would serve now (created by now, types 9/10)."""
    now = sandbox.clock()
    return {
        g["grpid"]
        for g in sandbox.state.groups(uid)
        if g["created"] <= now and {m["type"] for m in g["measures"]} >= {9, 10}
    }
