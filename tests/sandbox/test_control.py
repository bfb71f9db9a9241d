"""The /_sandbox/ control API over plain HTTP (as a Celery worker or the demo would use it),
and the standalone ``python -m withings.sandbox`` entry point."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from withings.sandbox import RunningSandbox, SandboxState, start_sandbox

from .conftest import CLIENT_ID, Api, Callback

ROOT = Path(__file__).resolve().parents[2]


def control(base: str, method: str, path: str, body: Any = None, token: str | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + "/_sandbox" + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Sandbox-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_control_api_drives_a_whole_flow(sandbox: RunningSandbox, callback: Callback) -> None:
    base = sandbox.url
    assert control(base, "GET", "/health")[1]["ok"] is True
    status, _ = control(
        base,
        "POST",
        "/clients",
        {"client_id": "c2", "client_secret": "s2", "redirect_uris": ["http://c2.test/cb"]},
    )
    assert status == 200
    status, user = control(base, "POST", "/users", {"userid": "4242", "timezone": "Europe/Berlin"})
    assert status == 200
    assert user["userid"] == "4242"
    assert user["device"]["model_id"] == 45
    assert control(base, "POST", "/users", {"userid": "4242"})[0] == 400

    _, token = control(base, "POST", "/users/4242/tokens", {"client_id": CLIENT_ID})
    api = Api(base)
    assert (
        api.post("/notify", token["access_token"], action="subscribe", callbackurl=callback.url, appli=4)[
            "status"
        ]
        == 0
    )

    _, gen = control(base, "POST", "/users/4242/generate", {"days": 7, "seed": 9})
    assert gen["count"] == len(gen["measuregrps"]) > 0
    _, added = control(
        base,
        "POST",
        "/users/4242/groups",
        {"groups": [{"date": 1_600_000_000, "measures": [{"value": 120, "type": 10, "unit": 0}]}]},
    )
    grpid = added["measuregrps"][0]["grpid"]
    _, modified = control(base, "POST", f"/users/4242/groups/{grpid}", {"comment": "edited"})
    assert modified["comment"] == "edited"
    assert control(base, "DELETE", f"/users/4242/groups/{grpid}")[1] == {"deleted": grpid}

    _, sync = control(base, "POST", "/users/4242/sync", {"wait": True})
    assert [d["ok"] for d in sync["deliveries"]] == [True]
    assert callback.posts[0]["userid"] == "4242"
    _, subs = control(base, "GET", "/users/4242/subscriptions")
    assert subs["subscriptions"][0]["callbackurl"] == callback.url

    _, fault = control(
        base, "POST", "/faults", {"kind": "601", "endpoint": "measure", "wait_seconds": 5, "count": 1}
    )
    assert fault["kind"] == "601"
    assert api.getmeas(token["access_token"])["status"] == 601
    control(base, "POST", "/faults", {"kind": "522"})
    assert control(base, "DELETE", "/faults")[1] == {"faults": []}
    assert control(base, "POST", "/faults", {"kind": "bogus"})[0] == 400

    _, config = control(base, "POST", "/config", {"page_size": 5, "more_as_bool": True})
    assert config["page_size"] == 5
    body = api.getmeas(token["access_token"])["body"]
    assert len(body["measuregrps"]) == 5
    assert body["more"] is True

    _, stats = control(base, "GET", "/stats")
    assert stats["measure.getmeas"] == 2
    assert stats["deliveries"] == 1
    _, snap = control(base, "GET", "/snapshot")
    dumped = json.dumps(snap)
    assert token["access_token"] not in dumped
    assert token["refresh_token"] not in dumped
    assert snap["log"][-1]["endpoint"] == "measure"

    _, _clock = control(base, "POST", "/clock", {"advance": 3 * 3600})
    assert api.getmeas(token["access_token"], offset=1)["status"] == 401
    _, _revoke = control(base, "POST", "/users/4242/revoke", {"client_id": CLIENT_ID})
    assert control(base, "GET", "/users/4242/revoked")[1] == {"revoked": True}
    assert control(base, "GET", "/users/nobody")[0] == 404
    assert control(base, "GET", "/nowhere")[0] == 404
    assert control(base, "PUT", "/faults")[0] == 405
    assert control(base, "POST", "/reset", {})[1] == {"reset": True}
    assert control(base, "GET", "/users")[1] == {"users": []}


def test_control_token_protects_the_control_api() -> None:
    with start_sandbox(SandboxState(), control_token="t0k") as running:
        assert control(running.url, "GET", "/health")[0] == 403
        assert control(running.url, "GET", "/health", token="t0k")[0] == 200


def test_standalone_module_runs() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "withings.sandbox",
            "--port",
            "0",
            "--client-id",
            "cid",
            "--client-secret",
            "sec",
            "--redirect-uri",
            "http://x.test/cb",
            "--page-size",
            "7",
            "--auto-approve",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = line.split()[3]
        assert url.startswith("http://127.0.0.1:")
        _, snap = control(url, "GET", "/snapshot")
        assert snap["config"]["page_size"] == 7
        assert snap["config"]["auto_approve"] is True
        assert snap["clients"] == ["cid"]
    finally:
        proc.terminate()
        proc.wait(timeout=5)
