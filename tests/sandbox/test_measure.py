"""getmeas: filters, pagination over the real fixture, encodings, lastupdate, visibility."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.shared_data import SHARED_FIXTURES
from withings.sandbox import FakeClock, SandboxState
from withings.sandbox.generator import decode_value

from .conftest import CLIENT_ID, Api

FIXTURE = SHARED_FIXTURES / "measurement_list.json"
needs_fixture = pytest.mark.shared_fixture("measurement_list.json")


def _all_pages(api: Api, token: str, **params: object) -> tuple[list[dict], list[object]]:
    groups: list[dict] = []
    mores: list[object] = []
    offset = 0
    for _ in range(1000):
        r = api.getmeas(token, offset=offset, **params)
        assert r["status"] == 0, r
        body = r["body"]
        assert list(body) == ["updatetime", "timezone", "measuregrps", "more", "offset"]
        groups += body["measuregrps"]
        mores.append(body["more"])
        if not body["more"]:
            assert body["offset"] == 0
            return groups, mores
        offset = body["offset"]
    raise AssertionError("pagination never ended")


@needs_fixture
@pytest.mark.parametrize("more_as_bool", [False, True])
def test_fixture_pagination_page_size_37(
    api: Api, state: SandboxState, user_token: tuple[str, str], more_as_bool: bool
) -> None:
    userid, token = user_token
    state.page_size = 37
    state.more_as_bool = more_as_bool
    raw = json.loads(FIXTURE.read_text())
    assert state.load_fixture_groups(userid, FIXTURE) == len(raw) == 2062

    groups, mores = _all_pages(api, token, category=1)
    assert len(groups) == 2062
    assert len({g["grpid"] for g in groups}) == 2062
    assert len(mores) == -(-2062 // 37)
    expected_types = (bool,) if more_as_bool else (int,)
    assert all(type(m) in expected_types for m in mores)
    assert mores[-1] in (0, False)
    assert mores[0] in (1, True)
    # groups are served as stored, field for field (unknown attribs such as 17 included)
    by_id = {g["grpid"]: g for g in raw}
    assert all(g == by_id[g["grpid"]] for g in groups)
    assert {g["attrib"] for g in groups} >= {0, 1, 2, 8, 17}
    # in the recorded answer's own order: oldest `created` first
    assert [g["grpid"] for g in groups] == [g["grpid"] for g in raw]
    assert [g["created"] for g in groups] == sorted(g["created"] for g in groups)


@needs_fixture
def test_fixture_meastypes_filter(api: Api, state: SandboxState, user_token: tuple[str, str]) -> None:
    userid, token = user_token
    state.page_size = 37
    state.load_fixture_groups(userid, FIXTURE)
    bp, _ = _all_pages(api, token, meastypes="9,10,11", category=1)
    raw = json.loads(FIXTURE.read_text())
    with_types = [g for g in raw if {m["type"] for m in g["measures"]} & {9, 10, 11}]
    assert len(bp) == len(with_types) > 794  # BP groups plus scale groups carrying pulse
    assert all({m["type"] for m in g["measures"]} <= {9, 10, 11} for g in bp)
    scale_pulse = [g for g in bp if g["model"] == "Body Cardio"]
    assert scale_pulse
    assert all([m["type"] for m in g["measures"]] == [11] for g in scale_pulse)
    # both encodings as real devices send them
    units = {(m["type"], m["unit"]) for g in bp for m in g["measures"]}
    assert {(10, -2), (10, 0)} <= units
    connect = next(g for g in bp if g["modelid"] == 45)
    systolic = next(m for m in connect["measures"] if m["type"] == 10)
    assert 80 <= decode_value(systolic) <= 250
    assert systolic["value"] > 1000

    only_sys, _ = _all_pages(api, token, meastype="10")
    assert len(only_sys) == 794
    assert all([m["type"] for m in g["measures"]] == [10] for g in only_sys)


@needs_fixture
def test_fixture_date_window(api: Api, state: SandboxState, user_token: tuple[str, str]) -> None:
    userid, token = user_token
    state.load_fixture_groups(userid, FIXTURE)
    raw = json.loads(FIXTURE.read_text())
    start, end = 1_640_995_200, 1_648_771_200  # 2022-01-01 .. 2022-04-01
    expected = {g["grpid"] for g in raw if start <= g["date"] <= end}
    got, _ = _all_pages(api, token, startdate=start, enddate=end)
    assert {g["grpid"] for g in got} == expected
    assert expected


def _bp(date: int, sys: int, dia: int, pulse: int, unit: int = -2, **extra: object) -> dict:
    scale = 10**-unit
    return {
        "date": date,
        "measures": [
            {"value": dia * scale, "type": 9, "unit": unit, "algo": 0, "fm": 131},
            {"value": sys * scale, "type": 10, "unit": unit, "algo": 0, "fm": 131},
            {"value": pulse * scale, "type": 11, "unit": unit, "algo": 0, "fm": 131},
        ],
        "modelid": 45,
        "model": "BPM Connect",
        **extra,
    }


def test_lastupdate_after_modify_group(
    api: Api, state: SandboxState, clock: FakeClock, user_token: tuple[str, str]
) -> None:
    userid, token = user_token
    t = int(clock())
    stored = state.add_groups(userid, [_bp(t - 3600 * i, 120 + i, 80, 70) for i in range(5)])
    assert all(g["modified"] == t for g in stored)
    clock.advance(100)
    assert api.getmeas(token, lastupdate=t + 50)["body"]["measuregrps"] == []

    target = stored[2]["grpid"]
    clock.advance(100)
    changed = state.modify_group(userid, target, measures=stored[2]["measures"][:2])
    assert changed["modified"] == t + 200
    body = api.getmeas(token, lastupdate=t + 50, meastypes="9,10,11")["body"]
    assert [g["grpid"] for g in body["measuregrps"]] == [target]
    assert [m["type"] for m in body["measuregrps"][0]["measures"]] == [9, 10]
    assert body["updatetime"] == t + 200
    assert body["timezone"] == "Europe/Paris"
    assert len(api.getmeas(token, lastupdate=t)["body"]["measuregrps"]) == 5

    state.delete_group(userid, target)
    assert len(api.getmeas(token, lastupdate=t)["body"]["measuregrps"]) == 4


def test_category_and_manual_entries(
    api: Api, state: SandboxState, clock: FakeClock, user_token: tuple[str, str]
) -> None:
    userid, token = user_token
    t = int(clock())
    manual = state.add_groups(userid, [_bp(t - 10, 143, 91, 77, unit=0, attrib=2)])[0]
    assert manual["deviceid"] is None
    assert manual["attrib"] == 2
    state.add_groups(userid, [{**_bp(t - 20, 130, 80, 60), "category": 2}])
    real = api.getmeas(token, category=1)["body"]["measuregrps"]
    assert [g["grpid"] for g in real] == [manual["grpid"]]
    assert real[0]["measures"][1] == {"value": 143, "type": 10, "unit": 0, "algo": 0, "fm": 131}
    assert len(api.getmeas(token, category=2)["body"]["measuregrps"]) == 1


def test_group_modified_between_pages_does_not_crash(
    api: Api, state: SandboxState, clock: FakeClock, user_token: tuple[str, str]
) -> None:
    userid, token = user_token
    state.page_size = 3
    state.order = "date_desc"  # a newer reading then lands on the first page and shifts the rest
    t = int(clock())
    state.add_groups(userid, [_bp(t - 60 * i, 120, 80, 70) for i in range(7)])
    first = api.getmeas(token, lastupdate=t - 1)["body"]
    clock.advance(5)
    state.add_groups(userid, [_bp(t + 1, 150, 95, 80)])  # a newer reading lands mid-sync
    second = api.getmeas(token, lastupdate=t - 1, offset=first["offset"])["body"]
    seen = [g["grpid"] for g in first["measuregrps"] + second["measuregrps"]]
    assert len(seen) == 6
    assert len(set(seen)) == 5


def test_unsynced_groups_hidden_until_cuff_sync(
    api: Api, state: SandboxState, clock: FakeClock, user_token: tuple[str, str]
) -> None:
    userid, token = user_token
    t = int(clock())
    state.add_groups(userid, [{**_bp(t - 7200, 125, 82, 66), "created": t + 86_400}])
    assert api.getmeas(token)["body"]["measuregrps"] == []
    assert state.user_info(userid)["pending_groups"] == 1
    state.cuff_sync(userid, deliver=False)
    (g,) = api.getmeas(token)["body"]["measuregrps"]
    assert g["created"] == g["modified"] == t
    assert g["date"] == t - 7200


def test_errors_of_the_measure_service(api: Api, state: SandboxState, user_token: tuple[str, str]) -> None:
    userid, token = user_token
    assert api.getmeas("not-a-token")["status"] == 401
    assert api.post("/measure", action="getmeas")["status"] == 401
    assert api.post("/measure", token, action="getactivity")["status"] == 2554
    assert api.post("/v2/measure", token, action="getmeas")["status"] == 2554
    assert api.getmeas(token, startdate="yesterday")["status"] == 503
    as_json = api.http.post(
        api.url + "/measure", json={"action": "getmeas"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert as_json.status_code == 200
    assert as_json.json()["status"] == 503
    info_only = state.issue_tokens_for_test(userid, CLIENT_ID, scope="user.info")
    assert api.getmeas(info_only["access_token"])["status"] == 277


def test_bp_group_helper(api: Api, state: SandboxState, clock: FakeClock, user_token) -> None:
    from withings.sandbox import bp_group

    userid, token = user_token
    t = int(clock())
    state.add_groups(
        userid, [bp_group(143, 91, 70, date=t - 60), bp_group(120, 80, date=t - 30, unit=0, attrib=2)]
    )
    manual, device = api.getmeas(token)["body"]["measuregrps"]  # same `created`: newest grpid first
    assert device["measures"][1] == {"value": 14300, "type": 10, "unit": -2, "algo": 0, "fm": 131}
    assert device["deviceid"] == state.getdevice(userid)["devices"][0]["deviceid"]
    assert device["modelid"] == 45
    assert manual["deviceid"] is None
    assert [m["value"] for m in manual["measures"]] == [80, 120]
