"""Read and validate a Withings `bp.csv` row by row, keeping nothing per row but line numbers.

Format (docs/withings-api.md §7): header `Date,"Heart rate",Systolic,Diastolic,Comments`; `Date` is the
participant's local wall-clock time without offset; rows with a heart rate only are pulse-only
(not BP readings). Local times that DST makes nonexistent or repeated are converted with `fold=0`
and flagged `local_time_ambiguous` — never resolved silently.

`BpCsvReader` yields the readings as it reads them and raises `ImportFileError` with every
problem (the first MAX_ERRORS) once it has read the whole file: whoever writes while reading does
so inside a transaction that the error rolls back, so a file with any problem still imports nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
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


class BpCsvReader:
    """Iterate over the readings of a `bp.csv`, checking every row; raises ImportFileError listing
    the problems (first MAX_ERRORS) when the whole file has been read, or at once for a file that
    is not a readable CSV. Afterwards `rows`, `pulse_only` and `empty` describe the rest of it."""

    def __init__(self, data: bytes, *, timezone: str, now: dt.datetime | None = None):
        decode(data)  # the whole file is checked before any row is read, as the messages promise
        self.data, self.timezone, self.now = data, timezone, now or dt.datetime.now(dt.UTC)
        self.rows = 0
        self.pulse_only: array[int] = array("I")
        self.empty: array[int] = array("I")
        self.errors: list[str] = []

    def __iter__(self) -> Iterator[CsvReading]:
        zone = ZoneInfo(self.timezone)
        latest = self.now + dt.timedelta(days=1)
        text = io.TextIOWrapper(io.BytesIO(self.data), encoding="utf-8-sig", newline="")
        reader = csv.reader(text, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise ImportFileError("bp.csv is empty.")
            _check_header(header)
            for record in reader:
                line = reader.line_num
                if not record or all(not cell.strip() for cell in record):
                    continue
                self.rows += 1
                if len(record) not in (4, 5):
                    self.errors.append(f"Line {line}: expected {len(HEADER)} cells, found {len(record)}.")
                else:
                    reading = _parse_row(record, line, zone, latest, self, self.errors)
                    if reading is not None:
                        yield reading
                if len(self.errors) >= MAX_ERRORS:
                    self.errors.append("… stopped after the first problems.")
                    break
        except csv.Error as exc:
            raise ImportFileError(
                f"bp.csv is not a well-formed CSV file (line {reader.line_num}: {exc})."
            ) from exc
        if self.errors:
            raise ImportFileError(*self.errors)
        if self.rows == 0:
            raise ImportFileError("bp.csv has a header but no rows.")


def _parse_row(record, line, zone, latest, result: BpCsvReader, errors: list[str]) -> CsvReading | None:
    date_text, pulse_text, sys_text, dia_text = (cell.strip() for cell in record[:4])
    try:
        local = dt.datetime.strptime(date_text, DATE_FORMAT)  # noqa: DTZ007 — wall-clock, localised below
    except ValueError:
        errors.append(f"Line {line}: Date {date_text[:30]!r} is not YYYY-MM-DD HH:MM:SS.")
        return None
    n_errors = len(errors)
    pulse = _number(pulse_text, "Heart rate", line, errors)
    systolic = _number(sys_text, "Systolic", line, errors)
    diastolic = _number(dia_text, "Diastolic", line, errors)
    if len(errors) > n_errors:
        return None
    aware, dst = localize(local, zone)
    measured_at = aware.astimezone(dt.UTC)
    if local < EARLIEST or measured_at > latest:
        errors.append(f"Line {line}: Date {date_text} is implausible (before 2000 or in the future).")
        return None
    if systolic is None and diastolic is None:
        (result.pulse_only if pulse is not None else result.empty).append(line)
        return None
    if systolic is None or diastolic is None:
        errors.append(f"Line {line}: a blood pressure needs both Systolic and Diastolic.")
        return None
    if systolic <= diastolic:
        errors.append(f"Line {line}: Systolic {systolic} is not above Diastolic {diastolic}.")
        return None
    return CsvReading(
        line=line,
        local=local,
        measured_at=measured_at,
        systolic=systolic,
        diastolic=diastolic,
        pulse=pulse,
        dst=dst,
        raw={"Date": date_text, "Heart rate": pulse_text, "Systolic": sys_text, "Diastolic": dia_text},
    )
