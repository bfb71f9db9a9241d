"""Per-reading classification shared by exports and monitoring.

- `acc_aha_category`: the 2017 ACC/AHA blood-pressure categories of one reading (the higher category
  of systolic and diastolic wins): normal <120 and <80; elevated 120–129 and <80; stage 1 130–139 or
  80–89; stage 2 ≥140 or ≥90; hypertensive crisis >180 and/or >120.
- `protocol_window`: the measuring window of a reading from the participant-local hour: morning
  04:00–11:59, evening 17:00–23:59, anything else "other".
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

NORMAL, ELEVATED, STAGE_1, STAGE_2, CRISIS = "normal", "elevated", "stage_1", "stage_2", "crisis"
ACC_AHA_CATEGORIES = (NORMAL, ELEVATED, STAGE_1, STAGE_2, CRISIS)
ACC_AHA_LABELS = {
    NORMAL: "Normal",
    ELEVATED: "Elevated",
    STAGE_1: "Stage 1",
    STAGE_2: "Stage 2",
    CRISIS: "Crisis",
}

MORNING, EVENING, OTHER = "morning", "evening", "other"
PROTOCOL_WINDOWS = (MORNING, EVENING, OTHER)
MORNING_HOURS = range(4, 12)
EVENING_HOURS = range(17, 24)


def acc_aha_category(systolic: Decimal | int | None, diastolic: Decimal | int | None) -> str | None:
    """The category of one reading, or None when a value is missing."""
    if systolic is None or diastolic is None:
        return None
    if systolic > 180 or diastolic > 120:
        return CRISIS
    if systolic >= 140 or diastolic >= 90:
        return STAGE_2
    if systolic >= 130 or diastolic >= 80:
        return STAGE_1
    if systolic >= 120:
        return ELEVATED
    return NORMAL


def protocol_window(local_time: dt.datetime | dt.time) -> str:
    """morning/evening/other from a participant-local (aware or wall-clock) time."""
    hour = local_time.hour
    if hour in MORNING_HOURS:
        return MORNING
    if hour in EVENING_HOURS:
        return EVENING
    return OTHER
