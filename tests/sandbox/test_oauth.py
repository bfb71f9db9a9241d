"""Authorize page, code exchange, refresh-token rotation, bad secrets, token lifetimes."""

from __future__ import annotations

import re
import threading
from wsgiref.simple_server import make_server

import requests

from withings.sandbox import FakeClock, SandboxApp, SandboxState, mount
from withings.sandbox.server import ThreadingWSGIServer

from .conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Api, query_of


def _code(api: Api, state: SandboxState, **overrides: str) -> str:
    state.auto_approve = True
    r = api.authorize(**overrides)
    assert r.status_code == 302
    return query_of(r.headers["Location"])["code"]


def test_auto_approve_redirects_with_code_and_state(api: Api, state: SandboxState) -> None:
    state.auto_approve = True
    r = api.authorize()
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    q = query_of(location)
    assert q["state"] == "st-123"
    assert re.fullmatch(r"[0-9a-f]{40}", q["code"])

    token = api.exchange(q["code"])
    assert token["status"] == 0
    body = token["body"]
    assert set(body) == {
        "userid",
        "access_token",
        "refresh_token",
        "expires_in",
        "scope",
        "csrf_token",
        "token_type",
    }
    assert isinstance(body["userid"], int)
    assert body["expires_in"] == 10800
    assert body["scope"] == "user.info,user.metrics"
    assert body["token_type"] == "Bearer"
    assert state.has_user(str(body["userid"]))


def test_consent_form_allow_and_deny(api: Api, state: SandboxState) -> None:
    page = api.authorize(sandbox_userid="777")
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    assert "Allow" in page.text
    assert "Deny" in page.text
    action = re.search(r"<form method='post' action='([^']+)'", page.text)[1]
    assert action == "/oauth2_user/authorize2"
    fields = dict(re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'", page.text))
    assert fields["redirect_uri"] == REDIRECT_URI
    assert fields["state"] == "st-123"

    deny = api.http.post(api.url + action, data={**fields, "decision": "deny"}, allow_redirects=False)
    assert deny.status_code == 302
    assert deny.headers["Location"] == f"{REDIRECT_URI}?error=access_denied&state=st-123"

    allow = api.http.post(
        api.url + action,
        data={**fields, "sandbox_userid": "777", "decision": "allow"},
        allow_redirects=False,
    )
    q = query_of(allow.headers["Location"])
    assert q["state"] == "st-123"
    assert api.exchange(q["code"])["body"]["userid"] == 777


def test_wrong_redirect_uri_is_refused_without_redirect(api: Api, state: SandboxState) -> None:
    state.auto_approve = True
    for bad in (REDIRECT_URI + "/evil", REDIRECT_URI + "x", "http://evil.test/withings/callback"):
        r = api.authorize(redirect_uri=bad)
        assert r.status_code == 400
        assert "Location" not in r.headers
    r = api.authorize(client_id="nobody")
    assert r.status_code == 400


def test_missing_state_and_space_joined_scope(api: Api, state: SandboxState) -> None:
    state.auto_approve = True
    assert api.authorize(state="").status_code == 400
    r = api.authorize(scope="user.info user.metrics")
    assert r.status_code == 302
    assert query_of(r.headers["Location"]) == {"error": "invalid_scope", "state": "st-123"}


def test_code_is_single_use(api: Api, state: SandboxState) -> None:
    code = _code(api, state)
    assert api.exchange(code)["status"] == 0
    again = api.exchange(code)
    assert again["status"] == 503
    assert again["body"] == {}
    assert "invalid code" in again["error"]


def test_code_expires_after_30_seconds(api: Api, state: SandboxState, clock: FakeClock) -> None:
    fresh = _code(api, state)
    clock.advance(30)
    assert api.exchange(fresh)["status"] == 0
    stale = _code(api, state)
    clock.advance(30.5)
    assert api.exchange(stale)["status"] == 503


def test_code_exchange_needs_the_same_redirect_uri(api: Api, state: SandboxState) -> None:
    code = _code(api, state)
    assert api.exchange(code, redirect_uri="http://portal.test/other")["status"] == 503


def test_bad_client_secret(api: Api, state: SandboxState) -> None:
    code = _code(api, state)
    r = api.exchange(code, client_secret="wrong")
    assert r["status"] == 503
    assert r["error"] == "Invalid Params: invalid client_secret"
    token = api.exchange(code)["body"]  # a bad secret does not burn the code
    assert api.refresh(token["refresh_token"], client_secret="wrong")["status"] == 503
    assert api.refresh(token["refresh_token"])["status"] == 0


def test_access_token_lasts_3_hours(api: Api, state: SandboxState, clock: FakeClock) -> None:
    token = api.exchange(_code(api, state))["body"]
    clock.advance(10_799)
    assert api.post("/v2/user", token["access_token"], action="getdevice")["status"] == 0
    clock.advance(1)
    r = api.post("/v2/user", token["access_token"], action="getdevice")
    assert r == {"status": 401, "body": {}, "error": "invalid_token: The access token provided is invalid"}


def test_old_refresh_token_dies_when_new_access_token_is_used(
    api: Api, state: SandboxState, clock: FakeClock
) -> None:
    first = api.exchange(_code(api, state))["body"]
    second = api.refresh(first["refresh_token"])["body"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    userid = str(first["userid"])
    assert set(state.valid_refresh_tokens(userid)) == {first["refresh_token"], second["refresh_token"]}

    clock.advance(60)
    assert api.post("/v2/user", second["access_token"], action="getdevice")["status"] == 0
    dead = api.refresh(first["refresh_token"])
    assert dead == {"status": 503, "body": {}, "error": "Invalid Params: invalid refresh_token"}
    assert state.valid_refresh_tokens(userid) == [second["refresh_token"]]
    assert api.refresh(second["refresh_token"])["status"] == 0


def test_old_refresh_token_grace_is_8_hours(api: Api, state: SandboxState, clock: FakeClock) -> None:
    first = api.exchange(_code(api, state))["body"]
    second = api.refresh(first["refresh_token"])["body"]
    clock.advance(8 * 3600 - 1)
    # still usable (new access token never used): yields another independent pair
    third = api.refresh(first["refresh_token"])["body"]
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    clock.advance(1)
    assert api.refresh(first["refresh_token"])["status"] == 503
    assert api.refresh(second["refresh_token"])["status"] == 0
    assert state.stats["refreshes"] == 3


def test_refresh_token_of_another_client_is_refused(api: Api, state: SandboxState) -> None:
    state.register_client("other", "other-secret", [REDIRECT_URI])
    token = api.exchange(_code(api, state))["body"]
    r = api.refresh(token["refresh_token"], client_id="other", client_secret="other-secret")
    assert r["status"] == 503


def test_unknown_action_and_grant(api: Api) -> None:
    r = api.post("/v2/oauth2", action="nope")
    assert r["status"] == 2554
    assert r["body"] == {}
    assert r["error"]
    r = api.post(
        "/v2/oauth2",
        action="requesttoken",
        grant_type="password",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    assert r["status"] == 503


def test_issue_tokens_for_test_is_a_usable_grant(api: Api, state: SandboxState) -> None:
    userid = state.create_user()
    body = state.issue_tokens_for_test(userid, CLIENT_ID)
    assert body["userid"] == int(userid)
    assert api.post("/v2/user", body["access_token"], action="getdevice")["status"] == 0
    assert api.refresh(body["refresh_token"])["status"] == 0


def test_mounted_under_a_prefix(state: SandboxState) -> None:
    """Inside the Django dev server the sandbox lives under /sandbox/: the consent form must
    post back under the prefix and the API paths must resolve."""

    def portal(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"portal"]

    server = make_server(
        "127.0.0.1", 0, mount(portal, SandboxApp(state), "/sandbox"), server_class=ThreadingWSGIServer
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert requests.get(base + "/anything", timeout=5).text == "portal"
        api = Api(base + "/sandbox")
        page = api.authorize()
        assert "action='/sandbox/oauth2_user/authorize2'" in page.text
        fields = dict(re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'", page.text))
        allow = api.http.post(
            base + "/sandbox/oauth2_user/authorize2",
            data={**fields, "decision": "allow"},
            allow_redirects=False,
        )
        token = api.exchange(query_of(allow.headers["Location"])["code"])
        assert token["status"] == 0
        assert api.post("/v2/user", token["body"]["access_token"], action="getdevice")["status"] == 0
        assert requests.get(base + "/sandbox/_sandbox/health", timeout=5).json()["ok"] is True
    finally:
        server.shutdown()
        server.server_close()
