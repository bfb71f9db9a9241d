"""Plausibility of a reading: flags, never deletion.

The rules (each one bit of `BloodPressureReading.quality_flags`; 0 = plausible):
- HCSRN: systolic > 300 or < 50, diastolic > 160 or < 20, systolic ≤ diastolic, pulse pressure < 20
  or > 100 (NHS CVDPREVENT's "diastolic < 20 or systolic < 50" are the same two lower bounds);
- pulse outside `settings.PLAUSIBLE_PULSE_RANGE` (default 30–220 /min), only when a pulse is known.

Two kinds of rule. *Hard* rules (systolic > 300 or < 50, diastolic > 160 or < 20, systolic ≤
diastolic) catch values no body produces — a garbled or swapped entry (161/1). *Soft* rules (pulse
pressure < 20 or > 100, pulse out of range) catch unusual but possible readings: 220/110 or 195/90
(isolated systolic hypertension) break "pulse pressure > 100" and are exactly what a safety plan is for.

One definition, two forms: `flags_of` (Python: the ORM path, the CSV import) and `flags_sql` (the SQL
expression the COPY upsert and the backfill run), which tests compare. An implausible reading is kept
and exported with its flags; it is left out of averages and categories. Alerts skip only hard-flagged
readings: a soft-flagged reading still goes through the safety plan's severe/low check, and its alert
says it was flagged (`flagged_note`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

Number = Decimal | int | float


class Values(NamedTuple):
    sys: Number
    dia: Number
    pulse: Number | None
    low: int
    high: int


@dataclass(frozen=True)
class Rule:
    bit: int
    code: str
    label: str | Promise
    #: SQL over {sys}, {dia}, {pulse} (numeric expressions) and the %(pulse_min)s/%(pulse_max)s params.
    sql: str
    test: Callable[[Values], bool]
    #: Impossible values (a garbled or swapped entry): never alerts. Soft rules (unusual but
    #: possible) do not hold back the safety plan's check.
    hard: bool = False


RULES: tuple[Rule, ...] = (
    Rule(1, "systolic_above_300", _("systolic above 300"), "{sys} > 300", lambda v: v.sys > 300, hard=True),
    Rule(2, "systolic_below_50", _("systolic below 50"), "{sys} < 50", lambda v: v.sys < 50, hard=True),
    Rule(4, "diastolic_above_160", _("diastolic above 160"), "{dia} > 160", lambda v: v.dia > 160, hard=True),
    Rule(8, "diastolic_below_20", _("diastolic below 20"), "{dia} < 20", lambda v: v.dia < 20, hard=True),
    Rule(
        16,
        "systolic_not_above_diastolic",
        _("systolic not above diastolic"),
        "{sys} <= {dia}",
        lambda v: v.sys <= v.dia,
        hard=True,
    ),
    Rule(
        32,
        "pulse_pressure_below_20",
        _("pulse pressure below 20"),
        "{sys} - {dia} < 20",
        lambda v: v.sys - v.dia < 20,
    ),
    Rule(
        64,
        "pulse_pressure_above_100",
        _("pulse pressure above 100"),
        "{sys} - {dia} > 100",
        lambda v: v.sys - v.dia > 100,
    ),
    Rule(
        128,
        "pulse_out_of_range",
        _("pulse out of range"),
        "{pulse} IS NOT NULL AND ({pulse} < %(pulse_min)s OR {pulse} > %(pulse_max)s)",
        lambda v: v.pulse is not None and not v.low <= v.pulse <= v.high,
    ),
)
CODES = tuple(rule.code for rule in RULES)
#: The bits of the hard rules (impossible values) and of the soft ones (unusual but possible).
HARD_FLAGS = sum(rule.bit for rule in RULES if rule.hard)
SOFT_FLAGS = sum(rule.bit for rule in RULES if not rule.hard)
#: Readings that pass every rule (what averages, categories and alerts use).
PLAUSIBLE = Q(quality_flags=0)


def pulse_range() -> tuple[int, int]:
    low, high = settings.PLAUSIBLE_PULSE_RANGE
    return int(low), int(high)


def flags_of(systolic: Number, diastolic: Number, pulse: Number | None) -> int:
    """The bitmask of the rules a reading breaks (0: plausible)."""
    values = Values(systolic, diastolic, pulse, *pulse_range())
    return sum(rule.bit for rule in RULES if rule.test(values))


def flags_sql(sys: str, dia: str, pulse: str) -> str:
    """The same bitmask as an SQL expression over three numeric expressions; needs `sql_params()`."""
    parts = [
        f"CASE WHEN {rule.sql.format(sys=sys, dia=dia, pulse=pulse)} THEN {rule.bit} ELSE 0 END"
        for rule in RULES
    ]
    return "(" + " + ".join(parts) + ")"


def sql_params() -> dict[str, Any]:
    low, high = pulse_range()
    return {"pulse_min": low, "pulse_max": high}


def codes_sql(flags: str) -> str:
    """An SQL expression of the ';'-joined codes of a bitmask expression (NULL when 0)."""
    parts = ", ".join(f"CASE WHEN {flags} & {rule.bit} <> 0 THEN '{rule.code}' END" for rule in RULES)
    return f"CASE WHEN {flags} <> 0 THEN concat_ws(';', {parts}) END"


def codes(flags: int) -> list[str]:
    return [rule.code for rule in RULES if flags & rule.bit]


def labels(flags: int) -> list[str]:
    return [str(rule.label) for rule in RULES if flags & rule.bit]


def alertable(flags: int) -> bool:
    """Whether the safety plan checks a reading with these flags: every reading but a hard-flagged one."""
    return not flags & HARD_FLAGS


def alertable_sql(flags: str) -> str:
    """`alertable` as an SQL condition over a bitmask expression."""
    return f"({flags} & {HARD_FLAGS}) = 0"


def flagged_note(flags: int) -> str | None:
    """What an alert on a soft-flagged reading says (staff pages, e-mails, the participant's safety
    message): "flagged: pulse pressure above 100 — confirm with a repeat measurement"; None when the
    reading broke no rule."""
    if not flags:
        return None
    return f"flagged: {', '.join(labels(flags))} — confirm with a repeat measurement"


def codes_text(flags: int) -> str | None:
    """The export cell: ';'-joined codes, None when plausible."""
    return ";".join(codes(flags)) or None


def plausibility_described() -> dict[str, Any]:
    """What an export manifest says of the rules that produced `quality_flags`."""
    low, high = pulse_range()
    return {
        "rules": "HCSRN (NHS CVDPREVENT lower bounds) + pulse range",
        "flags": {
            rule.code: rule.sql.format(sys="systolic", dia="diastolic", pulse="pulse")
            .replace("%(pulse_min)s", str(low))
            .replace("%(pulse_max)s", str(high))
            for rule in RULES
        },
        "plausible_pulse_range": [low, high],
        "hard_flags": [rule.code for rule in RULES if rule.hard],
        "implausible_readings": "exported with their flags; left out of averages and categories; "
        "hard-flagged ones raise no alert, soft-flagged ones still go through the safety plan's check",
    }
