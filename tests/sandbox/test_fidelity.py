"""The sandbox answers as real Withings does where third-party clients and recorded answers showed a
difference: access_token as a parameter, getmeas order, model of added cuff groups, null comments,
realistic upload delays."""

from __future__ import annotations

import json

import pytest
import requests

from tests.fixtures.shared_data import SHARED_FIXTURES
from withings.sandbox import FakeClock, RunningSandbox, SandboxState, bp_group

from .conftest import Api
from .test_control import control

HOUR = 3600


def _bp_raw(date: int, **extra: object) -> dict:
    """A cuff reading as a third-party tool posts it: no model, no device, no comment."""
    measures = [
        {"value": 8100, "type": 9, "unit": -2, "algo": 0, "fm": 131},
        {"value": 12900, "type": 10, "unit": -2, "algo": 0, "fm": 131},
    ]
    return {"date": date, "measures": measures, **extra}


# -- access_token as a request parameter --------------------------------------------------------


def test_access_token_as_form_field_or_query_parameter(
    sandbox: RunningSandbox, state: SandboxState, clock: FakeClock, user_token: tuple[str, str]
) -> None:
    userid, token = user_token
    state.add_groups(userid, [bp_group(131, 84, 66, date=int(clock()) - 60)])
    url = sandbox.url + "/measure"
    as_field = requests.post(url, data={"action": "getmeas", "access_token": token}, timeout=5).json()
    as_query = requests.post(
        url, params={"access_token": token}, data={"action": "getmeas"}, timeout=5
    ).json()
    with_header = Api(sandbox.url).getmeas(token)
    assert as_field["status"] == as_query["status"] == 0
    assert (
        as_field["body"]["measuregrps"]
        == as_query["body"]["measuregrps"]
        == with_header["body"]["measuregrps"]
    )
    assert len(as_field["body"]["measuregrps"]) == 1
    device = requests.post(
        sandbox.url + "/v2/user", data={"action": "getdevice", "access_token": token}, timeout=5
    ).json()
    assert device["body"]["devices"][0]["model_id"] == 45

    wrong = requests.post(url, data={"action": "getmeas", "access_token": "nope"}, timeout=5).json()
    assert wrong["status"] == 401
    # The header wins when both are given; the parameter never reaches the request log.
    bearer = {"Authorization": f"Bearer {token}"}
    both = requests.post(url, data={"action": "getmeas", "access_token": "nope"}, headers=bearer, timeout=5)
    both = both.json()
    assert both["status"] == 0
    log = json.dumps(state.request_log())
    assert token not in log
    assert "nope" not in log
    assert all("access_token" not in entry["params"] for entry in state.request_log())


def test_access_token_parameter_counts_as_the_same_call_for_the_identical_call_rule(
    sandbox: RunningSandbox, state: SandboxState, user_token: tuple[str, str]
) -> None:
    _userid, token = user_token
    state.identical_call_window = 10
    assert Api(sandbox.url).getmeas(token, lastupdate=5)["status"] == 0
    again = requests.post(
        sandbox.url + "/measure",
        data={"action": "getmeas", "lastupdate": 5, "access_token": token},
        timeout=5,
    ).json()
    assert again["status"] == 601


# -- getmeas order ------------------------------------------------------------------------------


def _pages(api: Api, token: str, **params: object) -> list[int]:
    grpids, offset = [], 0
    while True:
        body = api.getmeas(token, offset=offset, **params)["body"]
        grpids += [g["grpid"] for g in body["measuregrps"]]
        if not body["more"]:
            return grpids
        offset = body["offset"]


def test_getmeas_serves_oldest_created_first_and_edits_keep_their_place(
    api: Api, state: SandboxState, clock: FakeClock, user_token: tuple[str, str]
) -> None:
    userid, token = user_token
    state.page_size = 2
    t = int(clock())
    # Measured newest first, stored oldest first: the order follows `created`, not `date`.
    stored = [state.add_groups(userid, [_bp_raw(t - i * HOUR, created=t - 100 + i)])[0] for i in range(5)]
    assert _pages(api, token) == [g["grpid"] for g in stored]
    clock.advance(60)
    state.modify_group(userid, stored[1]["grpid"], comment="edited")
    assert _pages(api, token) == [g["grpid"] for g in stored]
    state.order = "modified"
    assert _pages(api, token) == [g["grpid"] for g in stored if g is not stored[1]] + [stored[1]["grpid"]]
    state.order = "date_desc"
    assert _pages(api, token) == [g["grpid"] for g in stored]  # newest `date` first
    state.order = "shuffled"
    shuffled = _pages(api, token)
    assert sorted(shuffled) == sorted(g["grpid"] for g in stored)
    assert _pages(api, token) == shuffled  # a fixed order: paging by offset works
    state.shuffle_seed = 1
    assert _pages(api, token) != shuffled


@pytest.mark.shared_fixture("measurement_list.json")
def test_recorded_answer_order_is_reproduced(
    api: Api, state: SandboxState, user_token: tuple[str, str]
) -> None:
    userid, token = user_token
    raw = json.loads((SHARED_FIXTURES / "measurement_list.json").read_text())
    state.add_groups(userid, list(reversed(raw)))
    assert _pages(api, token, category=1) == [g["grpid"] for g in raw if g["category"] == 1]


def test_order_is_configurable_and_checked(sandbox: RunningSandbox, state: SandboxState) -> None:
    status, config = control(sandbox.url, "POST", "/config", {"order": "date_desc", "shuffle_seed": 3})
    assert (status, config["order"], config["shuffle_seed"]) == (200, "date_desc", 3)
    status, body = control(sandbox.url, "POST", "/config", {"order": "newest"})
    assert status == 400
    assert "unknown order" in body["error"]
    assert state.order == "date_desc"
    with pytest.raises(ValueError, match="unknown order"):
        SandboxState(order="random")


# -- model/modelid, comment ---------------------------------------------------------------------


def test_added_cuff_groups_carry_the_cuff_model_and_a_null_comment(
    sandbox: RunningSandbox, api: Api, state: SandboxState, clock: FakeClock, user_token: tuple[str, str]
) -> None:
    userid, token = user_token
    t = int(clock())
    status, _ = control(
        sandbox.url,
        "POST",
        f"/users/{userid}/groups",
        {
            "groups": [
                _bp_raw(t - 50),
                _bp_raw(t - 40, comment=""),
                _bp_raw(t - 30, attrib=2),
                _bp_raw(t - 20, comment="after coffee"),
                {"date": t - 10, "measures": [{"value": 72, "type": 11, "unit": 0, "algo": 0, "fm": 131}]},
                _bp_raw(t - 5, model_id=44, model="BPM Core"),
            ]
        },
    )
    assert status == 200
    sent = {g["date"]: g for g in api.getmeas(token)["body"]["measuregrps"]}
    cuff = state.getdevice(userid)["devices"][0]
    assert (sent[t - 50]["model"], sent[t - 50]["modelid"]) == ("BPM Connect", 45)
    assert sent[t - 50]["deviceid"] == sent[t - 50]["hash_deviceid"] == cuff["deviceid"]
    assert sent[t - 50]["comment"] is None
    assert "comment" in sent[t - 50]
    assert sent[t - 40]["comment"] is None
    assert (sent[t - 30]["model"], sent[t - 30]["modelid"], sent[t - 30]["deviceid"]) == (None, None, None)
    assert sent[t - 20]["comment"] == "after coffee"
    assert (sent[t - 10]["model"], sent[t - 10]["modelid"]) == (None, None)  # not a BP reading
    assert (sent[t - 5]["model"], sent[t - 5]["modelid"]) == ("BPM Core", 44)
    assert list(sent[t - 50])[:12] == [
        "grpid", "attrib", "date", "created", "modified", "category", "deviceid", "hash_deviceid",
        "measures", "modelid", "model", "comment",
    ]  # fmt: skip


# -- realistic upload delays --------------------------------------------------------------------


def test_generator_upload_delay_as_in_the_recorded_sample(clock: FakeClock) -> None:
    st = SandboxState(now=clock)
    uid = st.create_user()
    groups = st.generate_readings(
        uid, start=clock() - 20 * 86_400, days=21, seed=8, upload_delay_hours=(16, 18), manual_rate=0.1
    )
    cuff = [g for g in groups if g["attrib"] != 2]
    manual = [g for g in groups if g["attrib"] == 2]
    assert cuff
    assert manual
    assert all(16 * HOUR <= g["created"] - g["date"] <= 18 * HOUR for g in cuff)
    assert all(g["modified"] == g["created"] for g in groups)
    assert all(g["created"] - g["date"] <= 900 for g in manual)  # typed in: at once
    assert len({g["created"] - g["date"] for g in cuff}) > len(cuff) // 2  # spread, not one value
    # What the cuff measured in the last 16 h has not reached Withings yet.
    recent = [g for g in cuff if g["date"] > clock() - 16 * HOUR]
    assert st.user_info(uid)["pending_groups"] >= len(recent) > 0
    # Without the option the generator is unchanged (same seed, same groups).
    again = SandboxState(now=clock)
    uid2 = again.create_user()
    plain = again.generate_readings(uid2, start=clock() - 20 * 86_400, days=21, seed=8, manual_rate=0.1)
    strip = lambda gs: [{k: v for k, v in g.items() if k not in ("grpid", "created", "modified")} for g in gs]  # noqa: E731
    assert strip(plain) == strip(groups)
    assert any(not 16 * HOUR <= g["created"] - g["date"] <= 18 * HOUR for g in plain if g["attrib"] != 2)


def test_upload_delay_through_the_control_api(sandbox: RunningSandbox, state: SandboxState) -> None:
    base = sandbox.url
    status, user = control(base, "POST", "/users", {})
    assert status == 200
    uid = user["userid"]
    status, gen = control(
        base, "POST", f"/users/{uid}/generate", {"days": 5, "seed": 2, "upload_delay_hours": [16, 18]}
    )
    assert status == 200
    assert gen["count"] > 0
    assert all(
        16 * HOUR <= g["created"] - g["date"] <= 18 * HOUR for g in gen["measuregrps"] if g["attrib"] != 2
    )
    before = len(state.groups(uid))
    for bad in ([18, 16], ["soon"], 17):
        status, body = control(base, "POST", f"/users/{uid}/generate", {"days": 1, "upload_delay_hours": bad})
        assert status == 400
        assert "upload_delay_hours" in body["error"]
    assert len(state.groups(uid)) == before
