"""Turn getmeas measure groups into blood-pressure readings — leniently, exactly, without trusting them.

Facts (docs/withings-api.md §2): value = value × 10^unit (never assume the unit); types 9 diastolic,
10 systolic, 11 pulse; a group is a BP reading only when it carries both 9 and 10 (scales emit a lone
11); category 2 are goals; `modelid` and `model_id` both occur; attrib values beyond the documented
ones occur and are kept as received.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

DIASTOLIC, SYSTOLIC, PULSE = 9, 10, 11
BP_TYPES = (DIASTOLIC, SYSTOLIC, PULSE)
MANUAL_ATTRIBS = frozenset({2, 4})
AMBIGUOUS_ATTRIB = 1
MAX_ABS_VALUE = Decimal("10000")  # DecimalField(6, 2): anything larger is not a BP value


@dataclass(frozen=True)
class ParsedReading:
    grpid: int
    measured_at: dt.datetime
    systolic: Decimal
    diastolic: Decimal
    pulse: Decimal | None
    attrib: int | None
    device_id: str
    device_model: str
    device_model_id: int | None
    raw: dict[str, Any]
    upstream_created: dt.datetime | None
    upstream_modified: dt.datetime | None
    manual_entry: bool
    ambiguous_user: bool


@dataclass
class PageSkips:
    """What a page's parse set aside, whatever form its readings take."""

    skipped: Counter = field(default_factory=Counter)
    # grpids of well-formed groups that carry no BP (anymore): a stored reading with one of these
    # grpids had its measures deleted upstream.
    non_bp_grpids: set[int] = field(default_factory=set)


@dataclass
class ParseResult(PageSkips):
    readings: list[ParsedReading] = field(default_factory=list)


def measure_value(value: Any, unit: Any) -> Decimal:
    """value × 10^unit, exactly (Decimal, no float rounding)."""
    if isinstance(value, bool) or isinstance(unit, bool):
        raise ValueError("boolean is not a number")
    number = Decimal(int(value)).scaleb(int(unit))
    if not number.is_finite() or abs(number) >= MAX_ABS_VALUE:
        raise ValueError("value out of range")
    return number


def int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's Infinity
        return None


def instant_from_unix(value: Any) -> dt.datetime | None:
    seconds = int_or_none(value)
    if seconds is None or not 0 < seconds < 32503680000:  # before year 3000
        return None
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def parse_group(group: Any) -> tuple[ParsedReading | None, str]:
    """One group → a reading, or None with the reason it is not a BP reading."""
    if not isinstance(group, dict):
        return None, "malformed"
    if int_or_none(group.get("category")) != 1:
        return None, "not_a_measure"
    grpid = int_or_none(group.get("grpid"))
    measured_at = instant_from_unix(group.get("date"))
    measures = group.get("measures")
    if grpid is None or measured_at is None or not isinstance(measures, list):
        return None, "malformed"
    values: dict[int, Decimal] = {}
    raw: dict[str, Any] = {}
    try:
        for measure in measures:
            mtype = int_or_none(measure.get("type")) if isinstance(measure, dict) else None
            if mtype not in BP_TYPES:
                continue
            values[mtype] = measure_value(measure.get("value"), measure.get("unit"))
            raw[str(mtype)] = {"value": measure.get("value"), "unit": measure.get("unit")}
    except (TypeError, ValueError, InvalidOperation, OverflowError, AttributeError):
        return None, "malformed"
    if SYSTOLIC not in values or DIASTOLIC not in values:
        return None, "not_blood_pressure"
    attrib = int_or_none(group.get("attrib"))
    device_id = group.get("hash_deviceid") or group.get("deviceid") or ""
    model_id = int_or_none(group.get("modelid"))
    if model_id is None:
        model_id = int_or_none(group.get("model_id"))
    model = group.get("model")
    return (
        ParsedReading(
            grpid=grpid,
            measured_at=measured_at,
            systolic=values[SYSTOLIC],
            diastolic=values[DIASTOLIC],
            pulse=values.get(PULSE),
            attrib=attrib,
            # PostgreSQL text cannot hold NUL: drop it rather than fail the page for ever.
            device_id=str(device_id).replace("\x00", "")[:64],
            device_model=model.replace("\x00", "")[:64] if isinstance(model, str) else "",
            device_model_id=model_id,
            raw=raw,
            upstream_created=instant_from_unix(group.get("created")),
            upstream_modified=instant_from_unix(group.get("modified")),
            manual_entry=attrib in MANUAL_ATTRIBS or not device_id,
            ambiguous_user=attrib == AMBIGUOUS_ATTRIB,
        ),
        "",
    )


def parse_groups(groups: Any) -> ParseResult:
    result = ParseResult()
    if not isinstance(groups, list):
        result.skipped["malformed"] += 1
        return result
    for group in groups:
        reading, reason = parse_group(group)
        if reading is None:
            result.skipped[reason] += 1
            if reason == "not_blood_pressure":
                result.non_bp_grpids.add(int(group["grpid"]))
        else:
            result.readings.append(reading)
    return result
