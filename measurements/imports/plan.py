"""What an import does with each row of a `bp.csv`, decided while the file streams past.

The plan keeps a few bytes per row — line numbers in arrays, one integer per distinct reading for
the duplicate checks — instead of an object per row: a 5 MB file (~160k rows) is planned and
imported within ~30 MB of the process's start-up size (`make bench-import`). The readings behind
`to_add`, `already_present` and `duplicate_in_file` are read again from the file when asked for.

Readings measured before the participation start (`cohorts.selectors.participation_start`: the
study's start date, else the participant's, a day early) are skipped and counted, as the Withings
API paths skip them: the study's data does not depend on how a reading arrived.

Dedupe key (docs/withings-api.md §7): (participant, UTC instant to the second, systolic, diastolic,
pulse) — packed into one integer (`reading_key`); a stored reading whose values no CSV row can
carry (outside the plausible ranges, or with more than two decimals) cannot match and is ignored.
"""

from __future__ import annotations

import datetime as dt
import itertools
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from measurements.models import BloodPressureReading

from .bp_csv import RANGES, BpCsvReader, CsvReading

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
VALUE_BITS = 16  # hundredths of mmHg/bpm: the plausible ranges end at 300.00 < 2**16 / 100


def _hundredths(value: Decimal | None, column: str) -> int | None:
    """0 for no value, else 1 + the value in hundredths; None if no CSV row can carry it."""
    if value is None:
        return 0
    low, high = RANGES[column]
    hundredths = value * 100
    if not low <= value <= high or hundredths != hundredths.to_integral_value():
        return None
    return 1 + int(hundredths)


def reading_key(
    measured_at: dt.datetime, systolic: Decimal, diastolic: Decimal, pulse: Decimal | None
) -> int | None:
    """(instant to the second, systolic, diastolic, pulse) as one integer, equal exactly when the
    tuples are equal; None for values outside what a CSV row can hold."""
    parts = (
        _hundredths(systolic, "Systolic"),
        _hundredths(diastolic, "Diastolic"),
        _hundredths(pulse, "Heart rate"),
    )
    if None in parts:
        return None
    key = (measured_at - EPOCH) // dt.timedelta(seconds=1)
    for part in parts:
        key = key << VALUE_BITS | part
    return key


def stored_keys(participant_id: int) -> set[int]:
    """The keys of every reading the participant already has (API, earlier imports, manual)."""
    rows = BloodPressureReading.objects.filter(participant_id=participant_id).values_list(
        "measured_at", "systolic", "diastolic", "pulse"
    )
    keys = (reading_key(*row) for row in rows.iterator(chunk_size=2000))
    return {key for key in keys if key is not None}


class PlanLines(Sequence[CsvReading]):
    """Readings of the file picked by line number, read again from the file when iterated."""

    def __init__(self, lines: array, reread: Callable[[], Iterable[CsvReading]]):
        self.lines, self._reread = lines, reread

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self) -> Iterator[CsvReading]:
        wanted = iter(self.lines)
        line = next(wanted, None)
        if line is None:
            return
        for reading in self._reread():
            if reading.line == line:
                yield reading
                line = next(wanted, None)
                if line is None:
                    return

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(itertools.islice(self, *index.indices(len(self))))
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(index)
        return next(itertools.islice(self, position, None))


@dataclass
class ImportPlan:
    timezone: str
    not_before: dt.datetime | None = None
    added_lines: array = field(default_factory=lambda: array("I"))
    early_lines: array = field(default_factory=lambda: array("I"))
    present_lines: array = field(default_factory=lambda: array("I"))
    repeated_lines: array = field(default_factory=lambda: array("I"))
    pulse_only: array = field(default_factory=lambda: array("I"))
    empty: array = field(default_factory=lambda: array("I"))
    rows: int = 0
    flagged_count: int = 0
    imported: int = 0
    reread: Callable[[], Iterable[CsvReading]] = tuple

    @property
    def to_add(self) -> PlanLines:
        return PlanLines(self.added_lines, self.reread)

    @property
    def already_present(self) -> PlanLines:
        return PlanLines(self.present_lines, self.reread)

    @property
    def duplicate_in_file(self) -> PlanLines:
        return PlanLines(self.repeated_lines, self.reread)

    @property
    def flagged(self) -> list[CsvReading]:
        if not self.flagged_count:
            return []
        return [r for r in self.to_add if r.dst]

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "added": len(self.added_lines),
            "before_participation": len(self.early_lines),
            "already_present": len(self.present_lines),
            "duplicate_in_file": len(self.repeated_lines),
            "pulse_only": len(self.pulse_only),
            "empty": len(self.empty),
            "flagged_local_time": self.flagged_count,
        }


def csv_plan_stream(
    *,
    participant_id: int,
    csv_data: bytes,
    timezone: str,
    not_before: dt.datetime | None = None,
    on_new: Callable[[CsvReading, BpCsvReader], object] | None = None,
) -> ImportPlan:
    """Read the whole file once and decide every row; `on_new(reading, reader)` is called for each
    reading to add, as it is read. Raises ImportFileError (after the whole file) if any row is bad."""
    plan = ImportPlan(timezone=timezone, not_before=not_before)
    reader = BpCsvReader(csv_data, timezone=timezone)
    stored, seen = stored_keys(participant_id), set()
    for reading in reader:
        key = reading_key(*reading.key)
        if not_before is not None and reading.measured_at < not_before:
            plan.early_lines.append(reading.line)
        elif key in stored:
            plan.present_lines.append(reading.line)
        elif key in seen:
            plan.repeated_lines.append(reading.line)
        else:
            seen.add(key)
            plan.added_lines.append(reading.line)
            plan.flagged_count += bool(reading.dst)
            if on_new is not None:
                on_new(reading, reader)
    plan.rows, plan.pulse_only, plan.empty = reader.rows, reader.pulse_only, reader.empty
    plan.reread = lambda: BpCsvReader(csv_data, timezone=timezone, now=reader.now)
    return plan
