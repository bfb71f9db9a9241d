"""Fault injection (every kind) and Withings' rate limits."""

from __future__ import annotations

import time

import pytest
import requests

from withings.sandbox import FakeClock, SandboxState, start_sandbox

from .conftest import CLIENT_ID, Api


def test_fault_601_with_wait_seconds(api: Api, state: SandboxState, user_token) -> None:
    _, token = user_token
    state.set_fault("601", endpoint="measure", count=1, wait_seconds=42)
    assert api.getmeas(token) == {"status": 601, "body": {"wait_seconds": 42}, "error": "Too many requests"}
    assert api.getmeas(token)["status"] == 0  # count exhausted
    assert state.faults() == []
    assert state.stats["sent_601"] == 1
    assert state.stats["fault.601"] == 1


def test_fault_522_scoped_to_one_endpoint(api: Api, state: SandboxState, user_token) -> None:
    _, token = user_token
    state.set_fault("522", endpoint="user")
    assert api.getmeas(token)["status"] == 0
    assert api.post("/v2/user", token, action="getdevice")["status"] == 522
    state.clear_faults()
    assert api.post("/v2/user", token, action="getdevice")["status"] == 0


def test_fault_http5xx(api: Api, state: SandboxState, user_token) -> None:
    _, token = user_token
    state.set_fault("http5xx", http_status=502, count=1)
    r = api.http.post(
        api.url + "/measure", data={"action": "getmeas"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 502
    assert "text/html" in r.headers["Content-Type"]
    with pytest.raises(ValueError, match="5xx"):
        state.set_fault("http5xx", http_status=404)


def test_fault_401_hits_only_bearer_calls(api: Api, state: SandboxState, user_token) -> None:
    userid, token = user_token
    refresh = state.valid_refresh_tokens(userid)[0]
    state.set_fault("401")
    assert api.getmeas(token)["status"] == 401
    assert api.refresh(refresh)["status"] == 0  # the token endpoint is unaffected
    state.clear_faults()
    assert api.getmeas(token)["status"] == 0  # the token itself was fine


def test_fault_slow_answers_after_delay(api: Api, state: SandboxState, user_token) -> None:
    _, token = user_token
    state.set_fault("slow", delay=0.3, count=1)
    started = time.monotonic()
    assert api.getmeas(token)["status"] == 0
    assert time.monotonic() - started >= 0.3


def test_fault_timeout_makes_a_short_timeout_client_give_up(
    api: Api, state: SandboxState, user_token
) -> None:
    _, token = user_token
    state.set_fault("timeout", delay=1.0, count=1)
    with pytest.raises(requests.Timeout):
        api.getmeas(token, timeout=0.2)
    assert api.getmeas(token)["status"] == 0
    assert state.stats["fault.timeout"] == 1


def test_fault_probability_is_reproducible_under_a_seed(clock: FakeClock) -> None:
    def pattern(seed: int) -> list[int | None]:
        st = SandboxState(now=clock, rate_limit_per_minute=None, identical_call_window=0, fault_seed=seed)
        st.register_client(CLIENT_ID, "s", ["http://x.test/cb"])
        uid = st.create_user()
        token = st.issue_tokens_for_test(uid, CLIENT_ID)["access_token"]
        st.set_fault("522", probability=0.3)
        return [st.call("/measure", {"action": "getmeas"}, token).status for _ in range(40)]

    first = pattern(7)
    assert first == pattern(7)
    assert 0 < first.count(522) < 40


def test_unknown_fault_kind() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        SandboxState().set_fault("teapot")


def test_rate_limit_120_per_minute_per_app(clock: FakeClock) -> None:
    st = SandboxState(now=clock)  # default limits: 120/min, identical calls within 10 s
    st.register_client(CLIENT_ID, "s", ["http://x.test/cb"])
    st.register_client("other-app", "s", ["http://x.test/cb"])
    tokens = [st.issue_tokens_for_test(st.create_user(), CLIENT_ID)["access_token"] for _ in range(3)]
    other = st.issue_tokens_for_test(st.create_user(), "other-app")["access_token"]
    with start_sandbox(st) as running:
        api = Api(running.url)
        for i in range(120):
            r = api.getmeas(tokens[i % 3], offset=i)
            assert r["status"] == 0, (i, r)
        limited = api.getmeas(tokens[0], offset=999)
        assert limited["status"] == 601
        assert limited["body"]["wait_seconds"] == 60
        assert api.getmeas(other)["status"] == 0  # another application has its own budget
        clock.advance(30)
        assert api.getmeas(tokens[1], offset=1000)["status"] == 601
        assert api.getmeas(tokens[1], offset=1000)["body"]["wait_seconds"] == 30
        clock.advance(30)
        assert api.getmeas(tokens[1], offset=1000)["status"] == 0
    assert st.stats["rate_limited"] == st.stats["rate_limited.per_minute"] == 3


def test_identical_calls_within_10_seconds(
    api: Api, state: SandboxState, clock: FakeClock, user_token
) -> None:
    _, token = user_token
    state.identical_call_window = 10.0
    assert api.getmeas(token, meastypes="9,10,11")["status"] == 0
    clock.advance(4)
    again = api.getmeas(token, meastypes="9,10,11")
    assert again["status"] == 601
    assert again["body"]["wait_seconds"] == 6
    assert api.getmeas(token, meastypes="9,10")["status"] == 0  # different arguments
    clock.advance(6)
    assert api.getmeas(token, meastypes="9,10,11")["status"] == 0
    assert state.stats["rate_limited.identical"] == 1
    assert "rate_limited.per_minute" not in state.stats
