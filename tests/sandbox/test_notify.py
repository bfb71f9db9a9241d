"""Notification subscriptions, HEAD check, deliveries after a cuff sync, getdevice, signed calls."""

from __future__ import annotations

import hashlib
import hmac
import re

from withings.sandbox import FakeClock, SandboxState

from .conftest import CLIENT_ID, CLIENT_SECRET, Api, Callback


def _subscribe(api: Api, token: str, url: str, appli: int = 4) -> dict:
    return api.post("/notify", token, action="subscribe", callbackurl=url, appli=appli, comment="portal")


def test_subscribe_checks_the_callback_with_head(
    api: Api, state: SandboxState, callback: Callback, user_token: tuple[str, str]
) -> None:
    userid, token = user_token
    assert _subscribe(api, token, callback.url) == {"status": 0, "body": {}}
    assert callback.heads == 1
    listed = api.post("/notify", token, action="list")["body"]
    assert listed == {
        "profiles": [{"appli": 4, "callbackurl": callback.url, "expires": 2147483647, "comment": "portal"}]
    }
    got = api.post("/notify", token, action="get", callbackurl=callback.url, appli=4)
    assert got["status"] == 0
    assert got["body"]["callbackurl"] == callback.url

    callback.head_status = 404
    other = callback.url + "/other"
    refused = _subscribe(api, token, other)
    assert refused["status"] == 293
    assert refused["error"]
    assert callback.heads == 2
    assert [s["callbackurl"] for s in state.subscriptions(userid)] == [callback.url]
    assert state.subscriptions(userid)[0]["restricted"] is True  # http + IP: restricted mode

    unreachable = _subscribe(api, token, "http://127.0.0.1:9/nothing")
    assert unreachable["status"] == 293

    revoked = api.post("/notify", token, action="revoke", callbackurl=callback.url, appli=4)
    assert revoked["status"] == 0
    assert api.post("/notify", token, action="list")["body"] == {"profiles": []}
    assert api.post("/notify", token, action="get", callbackurl=callback.url, appli=4)["status"] == 286
    assert api.post("/notify", token, action="revoke", callbackurl=callback.url, appli=4)["status"] == 294
    assert (
        api.post("/notify", token, action="subscribe", callbackurl=callback.url, appli=999)["status"] == 503
    )


def test_delivery_after_cuff_sync(
    api: Api,
    state: SandboxState,
    clock: FakeClock,
    callback: Callback,
    user_token: tuple[str, str],
) -> None:
    userid, token = user_token
    assert _subscribe(api, token, callback.url)["status"] == 0
    _subscribe(api, token, callback.url + "/ecg", appli=54)  # not notified for BP
    t = int(clock())
    clock.advance(300)
    results = state.cuff_sync(
        userid,
        [
            {"date": t, "measures": [{"value": 13100, "type": 10, "unit": -2, "algo": 0, "fm": 131}]},
            {"date": t + 120, "measures": [{"value": 8300, "type": 9, "unit": -2, "algo": 0, "fm": 131}]},
        ],
        wait=True,
    )
    assert len(results) == 1
    assert results[0]["ok"]
    assert results[0]["status_code"] == 200
    assert callback.posts == [{"userid": userid, "appli": "4", "startdate": str(t), "enddate": str(t + 121)}]
    assert callback.content_types == ["application/x-www-form-urlencoded"]
    assert state.stats["deliveries"] == 1

    groups = api.getmeas(token)["body"]["measuregrps"]
    assert {g["created"] for g in groups} == {t + 300}
    assert all(g["deviceid"] == g["hash_deviceid"] and g["modelid"] is None for g in groups)
    device = api.post("/v2/user", token, action="getdevice")["body"]["devices"][0]
    assert device["last_session_date"] == t + 300

    # background delivery (the default)
    callback.received.clear()
    assert state.cuff_sync(userid) == []
    assert callback.received.wait(5)
    assert len(callback.posts) == 2


def test_failed_delivery_is_recorded_and_retried(
    state: SandboxState, api: Api, callback: Callback, user_token: tuple[str, str]
) -> None:
    userid, token = user_token
    _subscribe(api, token, callback.url)
    callback.post_status = 500
    (result,) = state.cuff_sync(userid, wait=True)
    assert result["ok"] is False
    assert result["status_code"] == 500
    assert state.stats["deliveries_failed"] == 1
    callback.post_status = 204
    (retried,) = state.retry_failed_deliveries()
    assert retried["ok"]
    assert retried["status_code"] == 204
    assert retried["payload"] == result["payload"]
    assert state.retry_failed_deliveries() == []


def test_getdevice_shape(api: Api, state: SandboxState, user_token: tuple[str, str]) -> None:
    userid, token = user_token
    r = api.post("/v2/user", token, action="getdevice")
    assert r["status"] == 0
    (device,) = r["body"]["devices"]
    assert set(device) == {
        "type",
        "battery",
        "model",
        "model_id",
        "timezone",
        "first_session_date",
        "last_session_date",
        "deviceid",
        "hash_deviceid",
    }
    assert device["type"] == "Blood Pressure Monitor"
    assert (device["model"], device["model_id"], device["battery"]) == ("BPM Connect", 45, "high")
    assert re.fullmatch(r"[0-9a-f]{40}", device["deviceid"])
    assert device["hash_deviceid"] == device["deviceid"]
    state.set_device(userid, battery="low", last_session_date=None)
    device = api.post("/v2/user", token, action="getdevice")["body"]["devices"][0]
    assert device["battery"] == "low"
    assert device["last_session_date"] is None


def _sig(*parts: str, secret: str = CLIENT_SECRET) -> str:
    return hmac.new(secret.encode(), ",".join(parts).encode(), hashlib.sha256).hexdigest()


def _nonce(api: Api, clock: FakeClock) -> str:
    ts = str(int(clock()))
    r = api.post(
        "/v2/signature",
        action="getnonce",
        client_id=CLIENT_ID,
        timestamp=ts,
        signature=_sig("getnonce", CLIENT_ID, ts),
    )
    assert r["status"] == 0, r
    return r["body"]["nonce"]


def test_getnonce_and_signed_revoke(
    api: Api,
    state: SandboxState,
    clock: FakeClock,
    callback: Callback,
    user_token: tuple[str, str],
) -> None:
    userid, token = user_token
    refresh = state.valid_refresh_tokens(userid)[0]
    _subscribe(api, token, callback.url)
    ts = str(int(clock()))
    bad = api.post(
        "/v2/signature",
        action="getnonce",
        client_id=CLIENT_ID,
        timestamp=ts,
        signature=_sig("getnonce", CLIENT_ID, ts, secret="wrong"),
    )
    assert bad["status"] == 342
    assert bad["body"] == {}

    nonce = _nonce(api, clock)
    wrong = api.post(
        "/v2/oauth2",
        action="revoke",
        client_id=CLIENT_ID,
        nonce=nonce,
        signature=_sig("revoke", CLIENT_ID, nonce, secret="nope"),
        userid=userid,
    )
    assert wrong["status"] == 342
    assert not state.is_revoked(userid)
    # the nonce is single use, even after a failed attempt
    reused = api.post(
        "/v2/oauth2",
        action="revoke",
        client_id=CLIENT_ID,
        nonce=nonce,
        signature=_sig("revoke", CLIENT_ID, nonce),
        userid=userid,
    )
    assert reused["status"] == 503

    nonce = _nonce(api, clock)
    ok = api.post(
        "/v2/oauth2",
        action="revoke",
        client_id=CLIENT_ID,
        nonce=nonce,
        signature=_sig("revoke", CLIENT_ID, nonce),
        userid=userid,
    )
    assert ok == {"status": 0, "body": {}}
    assert state.is_revoked(userid)
    assert state.is_revoked(userid, CLIENT_ID)
    assert state.subscriptions(userid) == []
    assert state.valid_refresh_tokens(userid) == []
    assert api.getmeas(token)["status"] == 401
    assert api.refresh(refresh)["status"] == 503

    # authorizing again lifts the revocation
    state.issue_tokens_for_test(userid, CLIENT_ID)
    assert not state.is_revoked(userid)
