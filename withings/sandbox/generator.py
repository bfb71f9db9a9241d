"""Deterministic synthetic blood-pressure readings, shaped exactly like real getmeas groups.

One participant = one seeded ``random.Random``: the same seed (and the same grpid sequence and
device) gives the same groups, byte for byte. The numbers aim at "looks like a real home BP
diary": a per-person baseline, slow day-to-day drift, a morning surge, the first reading of a
session a little higher, missed days and sessions, a rare hypertensive crisis, mostly BPM Connect
encoding (``14300`` with unit ``-2``) with some manual entries (attrib 2, unit 0, no device), the
odd ambiguous-user reading (attrib 1), and late syncs (``created`` hours or days after ``date``).
``upload_delay_hours=(16, 18)`` makes every cuff reading reach the cloud that long after it was
taken, as most BPM Connect readings of the recorded real sample did (655 of 741: ``created`` =
``date`` + 16–18 h).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

BPM_CONNECT_MODEL = "BPM Connect"
BPM_CONNECT_MODELID = 45
TYPE_DIASTOLIC = 9
TYPE_SYSTOLIC = 10
TYPE_PULSE = 11

#: (systolic range, diastolic range) of the baseline per profile, mmHg.
PROFILES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "normotensive": ((108, 126), (66, 80)),
    "elevated": ((122, 132), (72, 82)),
    "hypertensive": ((135, 158), (85, 98)),
}
PROFILE_WEIGHTS = {"normotensive": 0.45, "elevated": 0.2, "hypertensive": 0.35}

MORNING = (6, 9)  # local hours: a session starts within [06:00, 09:00)
EVENING = (18, 22)


def _measure(value: int, mtype: int, *, unit: int, fm: int) -> dict[str, int]:
    """Encode an integer reading: unit -2 sends hundredths (14300), unit 0 sends 143."""
    return {"value": value * 10**-unit, "type": mtype, "unit": unit, "algo": 0, "fm": fm}


def generate_groups(
    *,
    start: float,
    days: int,
    seed: int,
    next_grpid: Callable[[], int],
    deviceid: str | None,
    timezone: str = "Europe/Paris",
    profile: str | None = None,
    missed_day_rate: float = 0.08,
    missed_session_rate: float = 0.15,
    manual_rate: float = 0.03,
    ambiguous_rate: float = 0.01,
    crisis_rate: float = 0.005,
    late_sync_rate: float = 0.05,
    upload_delay_hours: tuple[float, float] | None = None,
) -> list[dict[str, Any]]:
    """Readings for ``days`` local calendar days starting with the local day containing ``start``.

    Returned groups are sorted by ``date``; ``next_grpid`` is called once per group in that order.
    ``deviceid`` is the cuff's 40-hex id (``None`` makes every reading a manual entry).
    ``upload_delay_hours``: ``(low, high)`` — each cuff reading's ``created`` is its ``date`` plus
    a uniform draw in that range of hours (instead of the ``late_sync_rate`` model); the readings
    themselves are those of the same seed without it.
    """
    delay = _upload_delay(upload_delay_hours)
    rng = random.Random(seed)  # noqa: S311 - synthetic data, must be reproducible
    delays = random.Random(f"upload-delay:{seed}")  # noqa: S311 - its own stream: same readings
    if profile is None:
        profile = rng.choices(list(PROFILE_WEIGHTS), weights=list(PROFILE_WEIGHTS.values()))[0]
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
    (s_lo, s_hi), (d_lo, d_hi) = PROFILES[profile]
    base_sys = rng.uniform(s_lo, s_hi)
    base_dia = rng.uniform(d_lo, d_hi)
    base_pulse = rng.uniform(60, 80)
    fm = rng.choice((128, 131))  # both occur on real BPM Connect groups
    tz = ZoneInfo(timezone)
    first_day = datetime.fromtimestamp(start, tz).date()

    readings: list[dict[str, Any]] = []
    drift = 0.0
    for d in range(days):
        day = first_day + timedelta(days=d)
        drift = 0.7 * drift + rng.gauss(0, 3.0)
        if rng.random() < missed_day_rate:
            continue
        for hours, surge in ((MORNING, 4.0), (EVENING, -2.0)):
            if rng.random() < missed_session_rate:
                continue
            readings.extend(
                _session(
                    rng,
                    day,
                    hours,
                    tz,
                    sys=base_sys + drift + surge,
                    dia=base_dia + 0.5 * drift + surge / 2,
                    pulse=base_pulse + (3.0 if surge > 0 else 0.0),
                    manual=deviceid is None or rng.random() < manual_rate,
                    ambiguous_rate=ambiguous_rate,
                    crisis_rate=crisis_rate,
                    late_sync_rate=late_sync_rate,
                )
            )
    readings.sort(key=lambda r: r["date"])
    if delay is not None:
        for r in readings:
            if r["attrib"] != 2:
                r["created"] = r["date"] + delays.randint(*delay)
    return [_group(r, next_grpid(), deviceid=deviceid, fm=fm) for r in readings]


def _session(
    rng: random.Random,
    day: date,
    hours: tuple[int, int],
    tz: ZoneInfo,
    *,
    sys: float,
    dia: float,
    pulse: float,
    manual: bool,
    ambiguous_rate: float,
    crisis_rate: float,
    late_sync_rate: float,
) -> list[dict[str, Any]]:
    minute = rng.randrange((hours[1] - hours[0]) * 60)
    local = datetime.combine(day, time(hours[0] + minute // 60, minute % 60), tzinfo=tz)
    t = int(local.timestamp()) + rng.randrange(60)
    n = rng.choices((1, 2, 3), weights=(0.25, 0.35, 0.4))[0]
    out: list[dict[str, Any]] = []
    for i in range(n):
        if i:
            t += rng.randint(60, 300)
        s = sys + rng.gauss(0, 5.0) + (3.0 if i == 0 else 0.0)
        di = dia + rng.gauss(0, 3.5) + (1.5 if i == 0 else 0.0)
        p = pulse + rng.gauss(0, 5.0) - 1.0 * i
        if rng.random() < crisis_rate:
            s = rng.uniform(181, 210)
            di = rng.uniform(121, 128) if rng.random() < 0.5 else rng.uniform(100, 120)
            p += 8
        s_i = min(230, max(85, round(s)))
        d_i = min(135, max(45, round(di)), s_i - 15)
        p_i = min(100, max(50, round(p)))
        attrib = 2 if manual else (1 if rng.random() < ambiguous_rate else 0)
        out.append({"date": t, "sys": s_i, "dia": d_i, "pulse": p_i, "attrib": attrib})
    # The whole session reaches Withings in one sync (manual entries: when typed in).
    if manual:
        created = t + rng.randint(30, 900)
    elif rng.random() < late_sync_rate:
        late = rng.randint(2, 36) * 3600 if rng.random() < 0.6 else rng.randint(2, 6) * 86400
        created = t + late + rng.randrange(3600)
    else:
        created = t + rng.randint(20, 240)
    for r in out:
        r["created"] = created
        r["manual_unit"] = 0 if rng.random() < 0.8 else -2
    return out


def _upload_delay(hours: tuple[float, float] | list[float] | None) -> tuple[int, int] | None:
    """``(low, high)`` hours → seconds, checked (the control API passes JSON lists)."""
    if hours is None:
        return None
    try:
        low, high = (float(h) for h in hours)
    except (TypeError, ValueError):
        raise ValueError("upload_delay_hours must be two numbers of hours, e.g. [16, 18]") from None
    if not 0 <= low <= high:
        raise ValueError("upload_delay_hours must satisfy 0 <= low <= high")
    return round(low * 3600), round(high * 3600)


def _group(r: dict[str, Any], grpid: int, *, deviceid: str | None, fm: int) -> dict[str, Any]:
    manual = r["attrib"] == 2
    unit = r["manual_unit"] if manual else -2
    meas_fm = 128 if manual else fm
    return {
        "grpid": grpid,
        "attrib": r["attrib"],
        "date": r["date"],
        "created": r["created"],
        "modified": r["created"],
        "category": 1,
        "deviceid": None if manual else deviceid,
        "hash_deviceid": None if manual else deviceid,
        "measures": [
            _measure(r["dia"], TYPE_DIASTOLIC, unit=unit, fm=meas_fm),
            _measure(r["sys"], TYPE_SYSTOLIC, unit=unit, fm=meas_fm),
            _measure(r["pulse"], TYPE_PULSE, unit=unit, fm=meas_fm),
        ],
        "modelid": None if manual else BPM_CONNECT_MODELID,
        "model": None if manual else BPM_CONNECT_MODEL,
        "comment": None,
    }


def bp_group(
    systolic: int,
    diastolic: int,
    pulse: int | None = None,
    *,
    date: int,
    unit: int = -2,
    attrib: int = 0,
    grpid: int | None = None,
) -> dict[str, Any]:
    """One blood-pressure group for tests (``add_groups``/``cuff_sync`` fill grpid, created,
    modified and the user's deviceid). ``attrib=2`` makes a manual entry (no model, no device)."""
    manual = attrib == 2
    fm = 128 if manual else 131
    measures = [
        _measure(diastolic, TYPE_DIASTOLIC, unit=unit, fm=fm),
        _measure(systolic, TYPE_SYSTOLIC, unit=unit, fm=fm),
    ]
    if pulse is not None:
        measures.append(_measure(pulse, TYPE_PULSE, unit=unit, fm=fm))
    group: dict[str, Any] = {
        "grpid": grpid,
        "attrib": attrib,
        "date": date,
        "category": 1,
        "measures": measures,
        "modelid": None if manual else BPM_CONNECT_MODELID,
        "model": None if manual else BPM_CONNECT_MODEL,
        "comment": None,
    }
    if manual:
        group["deviceid"] = group["hash_deviceid"] = None
    return group


def decode_value(measure: dict[str, Any]) -> float:
    """``value × 10^unit`` — the only correct way to read a Withings measure."""
    return float(measure["value"]) * 10.0 ** int(measure["unit"])
