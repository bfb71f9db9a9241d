"""Parse and validate a Withings `bp.csv` completely, before anything is written.

Format (withings-api.md §7): header `Date,"Heart rate",Systolic,Diastolic,Comments`; `Date` is the
participant's local wall-clock time without offset; rows with a heart rate only are pulse-only
(not BP readings). Local times that DST makes nonexistent or repeated are converted with `fold=0`
and flagged `local_time_ambiguous` — never resolved silently.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from .archive import ImportFileError

HEADER = ("Date", "Heart rate", "Systolic", "Diastolic", "Comments")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
NUMBER = re.compile(r"^\d{1,3}(\.\d{1,2})?$")
# Plausible values for a home cuff (inclusive); anything else is a broken or foreign file.
RANGES = {
    "Systolic": (Decimal(50), Decimal(300)),
    "Diastolic": (Decimal(20), Decimal(200)),
    "Heart rate": (Decimal(20), Decimal(250)),
}
EARLIEST = dt.datetime(2000, 1, 1)  # noqa: DTZ001 — a wall-clock bound
MAX_ERRORS = 20

NONEXISTENT, REPEATED = "nonexistent", "repeated"


@dataclass(frozen=True)
class CsvReading:
    line: int
    local: dt.datetime  # naive wall-clock time as written
    measured_at: dt.datetime  # UTC
    systolic: Decimal
    diastolic: Decimal
    pulse: Decimal | None
    dst: str | None  # NONEXISTENT / REPEATED / None
    raw: dict[str, str]

    @property
    def key(self) -> tuple:
        return (self.measured_at, self.systolic, self.diastolic, self.pulse)


@dataclass
class ParsedCsv:
    readings: list[CsvReading] = field(default_factory=list)
    pulse_only: list[int] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)
    rows: int = 0


def localize(naive: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, str | None]:
    """Wall-clock time → aware time in `zone`, plus whether DST made it nonexistent or repeated."""
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first, None
    back = first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
    return first, (NONEXISTENT if back != naive else REPEATED)


def decode(data: bytes) -> str:
    if b"\x00" in data:
        raise ImportFileError("This is not a CSV file (it contains binary data).")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"bp.csv is not valid UTF-8 (broken encoding at byte {exc.start}); export it again from Withings."
        ) from exc


def _number(value: str, column: str, line: int, errors: list[str]) -> Decimal | None:
    value = value.strip()
    if not value:
        return None
    if not NUMBER.match(value):
        errors.append(f"Line {line}: {column} {value[:20]!r} is not a number.")
        return None
    number = Decimal(value)
    low, high = RANGES[column]
    if not low <= number <= high:
        errors.append(f"Line {line}: {column} {value} is outside the plausible range {low}–{high}.")
        return None
    return number


def _check_header(header: list[str]) -> None:
    found = tuple(cell.strip() for cell in header)
    if found not in (HEADER, HEADER[:4]):
        shown = ", ".join(repr(c[:30]) for c in found[:8]) or "nothing"
        raise ImportFileError(
            f"Wrong columns: expected {', '.join(HEADER)} (a Withings bp.csv); found {shown}."
        )


def parse_bp_csv(data: bytes, *, timezone: str, now: dt.datetime | None = None) -> ParsedCsv:
    """Every row checked; raises ImportFileError listing the problems (first MAX_ERRORS) if any."""
    zone = ZoneInfo(timezone)
    latest = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(days=1)
    text = decode(data)
    result = ParsedCsv()
    errors: list[str] = []
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        header = next(reader, None)
        if header is None:
            raise ImportFileError("bp.csv is empty.")
        _check_header(header)
        for record in reader:
            line = reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            result.rows += 1
            if len(record) not in (4, 5):
                errors.append(f"Line {line}: expected {len(HEADER)} cells, found {len(record)}.")
            else:
                _parse_row(record, line, zone, latest, result, errors)
            if len(errors) >= MAX_ERRORS:
                errors.append("… stopped after the first problems.")
                break
    except csv.Error as exc:
        raise ImportFileError(
            f"bp.csv is not a well-formed CSV file (line {reader.line_num}: {exc})."
        ) from exc
    if errors:
        raise ImportFileError(*errors)
    if result.rows == 0:
        raise ImportFileError("bp.csv has a header but no rows.")
    return result


def _parse_row(record, line, zone, latest, result: ParsedCsv, errors: list[str]) -> None:
    date_text, pulse_text, sys_text, dia_text = (cell.strip() for cell in record[:4])
    try:
        local = dt.datetime.strptime(date_text, DATE_FORMAT)  # noqa: DTZ007 — wall-clock, localised below
    except ValueError:
        errors.append(f"Line {line}: Date {date_text[:30]!r} is not YYYY-MM-DD HH:MM:SS.")
        return
    n_errors = len(errors)
    pulse = _number(pulse_text, "Heart rate", line, errors)
    systolic = _number(sys_text, "Systolic", line, errors)
    diastolic = _number(dia_text, "Diastolic", line, errors)
    if len(errors) > n_errors:
        return
    aware, dst = localize(local, zone)
    measured_at = aware.astimezone(dt.UTC)
    if local < EARLIEST or measured_at > latest:
        errors.append(f"Line {line}: Date {date_text} is implausible (before 2000 or in the future).")
        return
    if systolic is None and diastolic is None:
        (result.pulse_only if pulse is not None else result.empty).append(line)
        return
    if systolic is None or diastolic is None:
        errors.append(f"Line {line}: a blood pressure needs both Systolic and Diastolic.")
        return
    if systolic <= diastolic:
        errors.append(f"Line {line}: Systolic {systolic} is not above Diastolic {diastolic}.")
        return
    result.readings.append(
        CsvReading(
            line=line,
            local=local,
            measured_at=measured_at,
            systolic=systolic,
            diastolic=diastolic,
            pulse=pulse,
            dst=dst,
            raw={"Date": date_text, "Heart rate": pulse_text, "Systolic": sys_text, "Diastolic": dia_text},
        )
    )
