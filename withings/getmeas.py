"""The getmeas envelope body, read defensively: a malformed page is an upstream fault, never a crash."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

from .errors import WithingsTransientError

MEASTYPES = "9,10,11"  # diastolic, systolic, pulse
CATEGORY_REAL = 1


@dataclass(frozen=True)
class GetmeasPage:
    groups: list[Any]
    more: bool
    offset: int | None
    updatetime: int | None
    timezone: str


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _more(value: Any) -> bool:
    """`more` arrives as 0/1, true/false, and (observed in clients) as "0"/"1" strings."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true"}
    return bool(value)


def read_page(body: Any) -> GetmeasPage:
    if not isinstance(body, dict):
        raise WithingsTransientError("getmeas: body is not an object", endpoint="measure getmeas")
    groups = body.get("measuregrps", [])
    if not isinstance(groups, list):
        raise WithingsTransientError("getmeas: measuregrps is not a list", endpoint="measure getmeas")
    more = _more(body.get("more", 0))
    offset = _int(body.get("offset"))
    if more and (offset is None or offset < 0):
        raise WithingsTransientError("getmeas: more without a usable offset", endpoint="measure getmeas")
    tz = body.get("timezone")
    if not isinstance(tz, str) or tz not in zoneinfo.available_timezones():
        tz = ""
    updatetime = _int(body.get("updatetime"))
    if updatetime is not None and not 0 < updatetime < 32503680000:
        updatetime = None
    return GetmeasPage(groups=groups, more=more, offset=offset, updatetime=updatetime, timezone=tz)
