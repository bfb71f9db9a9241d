"""The synthetic readings generator: determinism and realism."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from withings.sandbox import FakeClock, SandboxState
from withings.sandbox.generator import decode_value, generate_groups

START = 1_700_000_000.0  # 2023-11-14


def _values(group: dict) -> dict[int, float]:
    return {m["type"]: decode_value(m) for m in group["measures"]}


def _fresh(seed: int, days: int = 60, **options: object) -> list[dict]:
    st = SandboxState(now=FakeClock(START + 400 * 86_400))
    uid = st.create_user()
    return st.generate_readings(uid, start=START, days=days, seed=seed, **options)


def test_same_seed_same_groups() -> None:
    assert _fresh(11) == _fresh(11)
    assert _fresh(11) != _fresh(12)
    strip = lambda gs: [{k: v for k, v in g.items() if k != "grpid"} for g in gs]  # noqa: E731
    st = SandboxState(now=FakeClock(START + 400 * 86_400))
    uid = st.create_user()
    a = st.generate_readings(uid, start=START, days=20, seed=3)
    b = st.generate_readings(uid, start=START, days=20, seed=3)
    assert strip(a) == strip(b)
    assert not {g["grpid"] for g in a} & {g["grpid"] for g in b}  # unique across the sandbox


def test_realistic_readings() -> None:
    groups = [g for seed in range(12) for g in _fresh(seed, days=90)]
    assert len(groups) > 12 * 90  # ~2 sessions a day, 1-3 readings each, minus missed ones
    tz = ZoneInfo("Europe/Paris")
    for g in groups:
        assert list(g)[:12] == [
            "grpid",
            "attrib",
            "date",
            "created",
            "modified",
            "category",
            "deviceid",
            "hash_deviceid",
            "measures",
            "modelid",
            "model",
            "comment",
        ]
        v = _values(g)
        assert set(v) == {9, 10, 11}
        assert 85 <= v[10] <= 230
        assert 45 <= v[9] <= 135
        assert v[9] < v[10]
        assert 50 <= v[11] <= 100
        hour = datetime.fromtimestamp(g["date"], tz).hour
        assert 6 <= hour < 9 or 18 <= hour < 22 or hour in (9, 22)  # last readings may spill
        assert g["created"] >= g["date"]
        assert g["modified"] == g["created"]
        if g["attrib"] == 2:
            assert g["deviceid"] is None
            assert g["model"] is None
            assert g["modelid"] is None
            assert {m["unit"] for m in g["measures"]} <= {0, -2}
        else:
            assert (g["model"], g["modelid"]) == ("BPM Connect", 45)
            assert {m["unit"] for m in g["measures"]} == {-2}
            assert all(m["value"] % 100 == 0 for m in g["measures"])
    attribs = Counter(g["attrib"] for g in groups)
    assert attribs[0] > 0.9 * len(groups)
    assert attribs[2] > 0
    assert attribs[1] > 0
    crisis = [g for g in groups if _values(g)[10] > 180 or _values(g)[9] > 120]
    assert 0 < len(crisis) < 0.02 * len(groups)
    late = [g for g in groups if g["created"] - g["date"] > 3600]
    assert 0 < len(late) < 0.15 * len(groups)
    assert any(g["created"] - g["date"] > 2 * 86_400 for g in late)
    days_with_data = {datetime.fromtimestamp(g["date"], tz).date() for g in _fresh(1, days=90)}
    assert 60 < len(days_with_data) < 90  # missed days


def test_profiles_separate_normotensive_from_hypertensive() -> None:
    def mean_sys(profile: str) -> float:
        gs = [g for s in range(5) for g in _fresh(s, days=30, profile=profile, crisis_rate=0)]
        return sum(_values(g)[10] for g in gs) / len(gs)

    assert mean_sys("normotensive") < 130 < mean_sys("hypertensive")
    with pytest.raises(ValueError, match="profile"):
        _fresh(1, profile="athlete")


def test_future_syncs_stay_pending(clock: FakeClock) -> None:
    st = SandboxState(now=clock)
    uid = st.create_user()
    groups = st.generate_readings(uid, start=clock() - 5 * 86_400, days=10, seed=5)
    pending = [g for g in groups if g["created"] > clock()]
    assert pending
    assert st.user_info(uid)["pending_groups"] == len(pending)


def test_generator_without_device_makes_manual_entries() -> None:
    counter = iter(range(1, 10_000))
    groups = generate_groups(start=START, days=5, seed=1, next_grpid=lambda: next(counter), deviceid=None)
    assert groups
    assert all(g["attrib"] == 2 for g in groups)
