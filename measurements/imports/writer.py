"""Write a CSV import's new readings in batches while the file is read, keeping only what the
monitoring needs afterwards: one instant per local day touched and the readings recent enough for
a crisis alert. The caller's transaction makes it all or nothing."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils.timezone import now

from measurements import quality
from measurements.models import BloodPressureReading
from measurements.monitoring.alerts import CRISIS_ALERT_MAX_AGE
from measurements.readings.changes import readings_changed

from .bp_csv import BpCsvReader, CsvReading

BATCH = 2000


def _reading(participant_id: int, tz: str, r: CsvReading) -> BloodPressureReading:
    return BloodPressureReading(
        participant_id=participant_id,
        measured_at=r.measured_at,
        source_timezone=tz,
        systolic=r.systolic,
        diastolic=r.diastolic,
        pulse=r.pulse,
        irregular_heartbeat=None,
        source=BloodPressureReading.Source.CSV,
        raw={"csv": r.raw, "line": r.line, **({"dst": r.dst} if r.dst else {})},
        local_time_ambiguous=bool(r.dst),
        quality_flags=quality.flags_of(r.systolic, r.diastolic, r.pulse),
    )


class ReadingsWriter:
    """`add` is `csv_plan_stream`'s `on_new`; `finish` writes the rest and refreshes the monitoring."""

    def __init__(self, *, participant_id: int, participant_timezone: str, source_timezone: str):
        self.participant_id, self.source_timezone = participant_id, source_timezone
        self.zone = ZoneInfo(participant_timezone)
        self.fresh_after = now() - CRISIS_ALERT_MAX_AGE
        self.batch: list[CsvReading] = []
        self.days: dict[dt.date, dt.datetime] = {}
        self.fresh: list[tuple] = []

    def add(self, reading: CsvReading, reader: BpCsvReader) -> None:
        self.batch.append(reading)
        if len(self.batch) >= BATCH:
            if reader.errors:  # the file will be refused: stop writing, keep reading for the messages
                self.batch.clear()
            else:
                self._flush()

    def _flush(self) -> None:
        added = BloodPressureReading.objects.bulk_create(
            [_reading(self.participant_id, self.source_timezone, r) for r in self.batch]
        )
        self.batch.clear()
        for r in added:
            self.days.setdefault(r.measured_at.astimezone(self.zone).date(), r.measured_at)
            if r.measured_at >= self.fresh_after:
                checked = not r.ambiguous_user and quality.alertable(r.quality_flags)
                self.fresh.append((r.measured_at, r.systolic, r.diastolic, checked, r.quality_flags))

    def finish(self) -> None:
        self._flush()
        readings_changed(
            participant_id=self.participant_id, instants=self.days.values(), new_values=self.fresh
        )
