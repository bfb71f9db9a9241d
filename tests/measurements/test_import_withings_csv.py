"""Withings "Download my data" import: real file, local time → UTC, DST flags, dedupe, all or nothing."""

from __future__ import annotations

import datetime as dt
import io
import random
import zipfile
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from cohorts.models import AuditEvent
from measurements.imports.archive import MAX_CSV_BYTES, ImportFileError
from measurements.imports.services import csv_duplicates_link, withings_csv_import, withings_csv_plan
from measurements.models import BloodPressureReading
from tests.factories import ParticipantFactory, ReadingFactory, UserFactory
from tests.fixtures.shared_data import SHARED_FIXTURES

HEADER = 'Date,"Heart rate",Systolic,Diastolic,Comments\n'
pytestmark = pytest.mark.django_db


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return (header + "".join(r + "\n" for r in rows)).encode()


def zipped(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def do_import(participant, data, **kwargs):
    return withings_csv_import(actor=None, participant=participant, data=data, **kwargs)


@pytest.mark.shared_fixture("bp.csv")
def test_real_bp_csv_imports_in_perth_time():
    participant = ParticipantFactory(timezone="Australia/Perth")
    data = (SHARED_FIXTURES / "bp.csv").read_bytes()
    plan = do_import(participant, data)
    assert plan.counts() == {
        "rows": 35,
        "added": 29,
        "before_participation": 0,
        "already_present": 0,
        "duplicate_in_file": 0,
        "pulse_only": 6,
        "empty": 0,
        "flagged_local_time": 0,
    }
    readings = BloodPressureReading.objects.filter(participant=participant)
    assert readings.count() == 29
    first = readings.get(measured_at=utc(2023, 12, 18, 22, 7, 5))  # "2023-12-19 06:07:05" at UTC+8
    assert (first.systolic, first.diastolic, first.pulse) == (Decimal(117), Decimal(80), Decimal(57))
    assert first.source == "csv"
    assert first.source_timezone == "Australia/Perth"
    assert first.irregular_heartbeat is None
    assert first.grpid is None
    newest = readings.order_by("-measured_at").first()
    assert newest.measured_at == utc(2026, 7, 26, 1, 11, 39)
    assert not readings.filter(local_time_ambiguous=True).exists()
    # Importing the same file again adds nothing.
    again = do_import(participant, zipped({"Withings/bp.csv": data, "Withings/devices.csv": b"geo"}))
    assert again.counts()["added"] == 0
    assert again.counts()["already_present"] == 29
    assert readings.count() == 29


def test_local_time_uses_participant_zone_or_override():
    participant = ParticipantFactory(timezone="Europe/Paris")
    data = csv_bytes('"2024-01-15 08:00:00",60,120,80,', '"2024-07-15 08:00:00",61,121,81,')
    do_import(participant, data)
    instants = sorted(BloodPressureReading.objects.values_list("measured_at", flat=True))
    assert instants == [utc(2024, 1, 15, 7, 0), utc(2024, 7, 15, 6, 0)]
    other = ParticipantFactory(timezone="Europe/Paris")
    plan = do_import(other, data, timezone="America/New_York")
    assert plan.timezone == "America/New_York"
    assert sorted(r.measured_at for r in plan.to_add) == [utc(2024, 1, 15, 13, 0), utc(2024, 7, 15, 12, 0)]


def test_dst_gap_and_repeat_are_flagged_not_silently_guessed():
    participant = ParticipantFactory(timezone="Europe/Paris")
    data = csv_bytes(
        '"2024-03-31 02:30:00",60,120,80,',  # does not exist in Paris (clocks jump 02:00 → 03:00)
        '"2024-10-27 02:30:00",61,121,81,',  # happens twice (03:00 → 02:00)
        '"2024-10-27 04:30:00",62,122,82,',  # unambiguous
    )
    plan = do_import(participant, data)
    assert plan.counts()["flagged_local_time"] == 2
    rows = {r.systolic: r for r in BloodPressureReading.objects.filter(participant=participant)}
    assert rows[Decimal(120)].local_time_ambiguous is True
    assert rows[Decimal(120)].measured_at == utc(2024, 3, 31, 1, 30)  # read with the pre-jump offset (fold=0)
    assert rows[Decimal(120)].raw["dst"] == "nonexistent"
    assert rows[Decimal(121)].local_time_ambiguous is True
    assert rows[Decimal(121)].measured_at == utc(2024, 10, 27, 0, 30)  # first occurrence (summer time)
    assert rows[Decimal(121)].raw["dst"] == "repeated"
    assert rows[Decimal(122)].local_time_ambiguous is False
    assert rows[Decimal(122)].measured_at == utc(2024, 10, 27, 3, 30)


def test_api_readings_are_not_duplicated_and_api_sync_later_links_csv_rows():
    participant = ParticipantFactory(timezone="UTC")
    ReadingFactory(
        participant=participant,
        measured_at=utc(2024, 5, 1, 7, 0, 0),
        systolic=Decimal("130.00"),
        diastolic=Decimal("85.00"),
        pulse=Decimal("70.00"),
    )
    data = csv_bytes(
        '"2024-05-01 07:00:00",70,130,85,',  # same reading as the API one
        '"2024-05-02 07:00:00",71,131,86,',
        '"2024-05-02 07:00:00",71,131,86,',  # twice in the file
        '"2024-05-03 07:00:00",72,,,',  # pulse only
    )
    plan = do_import(participant, data)
    assert plan.counts() == {
        "rows": 4,
        "added": 1,
        "before_participation": 0,
        "already_present": 1,
        "duplicate_in_file": 1,
        "pulse_only": 1,
        "empty": 0,
        "flagged_local_time": 0,
    }
    assert BloodPressureReading.objects.filter(participant=participant).count() == 2
    # The API later delivers the CSV-only reading: it is linked, not counted twice.
    csv_row = BloodPressureReading.objects.get(participant=participant, source="csv")
    api_row = ReadingFactory(
        participant=participant,
        measured_at=csv_row.measured_at,
        systolic=Decimal("131.00"),
        diastolic=Decimal("86.00"),
        pulse=Decimal("71.00"),
    )
    assert csv_duplicates_link(participant_id=participant.pk) == 1
    assert csv_duplicates_link(participant_id=participant.pk) == 0
    csv_row.refresh_from_db()
    assert csv_row.duplicate_of_id == api_row.pk


def test_import_is_audited_with_counts():
    participant = ParticipantFactory(timezone="UTC")
    user = UserFactory()
    withings_csv_import(
        actor=user,
        participant=participant,
        data=csv_bytes('"2024-05-01 07:00:00",70,130,85,'),
        filename="bp.csv",
    )
    event = AuditEvent.objects.get(action="import.withings_csv")
    assert event.actor == user
    assert event.participant == participant
    assert event.detail["added"] == 1
    assert event.detail["timezone"] == "UTC"


def big_csv() -> bytes:
    row = '"2024-05-01 07:00:00",70,130,85,' + "x" * 200 + "\n"
    return (HEADER + row * (MAX_CSV_BYTES // len(row) + 2)).encode()


BAD_FILES = {
    "wrong columns": (csv_bytes('"2024-05-01 07:00:00",70,', header="Date,Weight,Fat\n"), "Wrong columns"),
    "another file type": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV"),
    "a PDF": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not valid UTF-8"),
    "broken encoding": (csv_bytes('"2024-05-01 07:00:00",70,130,85,') + "é".encode("latin-1"), "UTF-8"),
    "zip without bp.csv": (zipped({"weight.csv": b"Date,Weight\n"}), "no bp.csv"),
    "an xlsx": (zipped({"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>"}), "no bp.csv"),
    "zip bomb": (zipped({"bp.csv": HEADER.encode() + b"0" * (20 * 1024 * 1024)}), "ZIP bomb"),
    "zip over the total": (
        # each entry compresses ~50:1 (under the ratio limit), together they unpack past 50 MB
        zipped({f"f{i}.csv": random.Random(i).randbytes(20_000) + b"\0" * (1 << 20) for i in range(50)}),
        "unpacks to",
    ),
    "damaged zip": (b"PK\x03\x04" + b"\x00" * 100, "cannot be read"),
    "huge file": (big_csv(), "too large"),
    "systolic out of range": (csv_bytes('"2024-05-01 07:00:00",70,400,85,'), "outside the plausible range"),
    "pulse out of range": (csv_bytes('"2024-05-01 07:00:00",7,120,80,'), "outside the plausible range"),
    "diastolic above systolic": (csv_bytes('"2024-05-01 07:00:00",70,80,120,'), "not above"),
    "half a reading": (csv_bytes('"2024-05-01 07:00:00",70,120,,'), "both Systolic and Diastolic"),
    "not a number": (csv_bytes('"2024-05-01 07:00:00",70,=1+1,80,'), "not a number"),
    "bad date": (csv_bytes('"01/05/2024 07:00",70,120,80,'), "not YYYY-MM-DD"),
    "future date": (csv_bytes('"2999-05-01 07:00:00",70,120,80,'), "implausible"),
    "empty file": (b"", "empty"),
    "header only": (HEADER.encode(), "no rows"),
    "too many cells": (csv_bytes('"2024-05-01 07:00:00",70,120,80,,extra,more'), "cells"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_are_refused_with_a_clear_message_and_nothing_imported(case):
    data, message = BAD_FILES[case]
    participant = ParticipantFactory(timezone="UTC")
    good_then_bad = data
    with pytest.raises(ImportFileError) as caught:
        do_import(participant, good_then_bad)
    assert message in str(caught.value), str(caught.value)
    assert not BloodPressureReading.objects.exists()
    assert not AuditEvent.objects.filter(action="import.withings_csv").exists()


def test_one_bad_row_late_in_the_file_imports_nothing():
    participant = ParticipantFactory(timezone="UTC")
    rows = [f'"2024-05-01 07:{m:02d}:00",70,120,80,' for m in range(50)] + [
        '"2024-05-02 07:00:00",70,999,80,'
    ]
    with pytest.raises(ImportFileError, match="Line 52"):
        do_import(participant, csv_bytes(*rows))
    assert not BloodPressureReading.objects.exists()


def test_a_failure_while_writing_rolls_back_every_row(monkeypatch):
    participant = ParticipantFactory(timezone="UTC")

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("measurements.imports.services.audit_record", broken)
    rows = [f'"2024-05-01 07:{m:02d}:00",70,120,80,' for m in range(30)]
    with pytest.raises(RuntimeError):
        do_import(participant, csv_bytes(*rows))
    assert not BloodPressureReading.objects.exists()


def test_only_bp_csv_is_read_from_the_archive(monkeypatch):
    archive = zipped(
        {"devices.csv": b"lat,lon\n1,2\n", "bp.csv": csv_bytes('"2024-05-01 07:00:00",70,120,80,')}
    )
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    plan = withings_csv_plan(participant=ParticipantFactory(timezone="UTC"), data=archive)
    assert opened == ["bp.csv"]
    assert len(plan.to_add) == 1


def test_command_imports_and_reports(tmp_path, capsys):
    participant = ParticipantFactory(timezone="Asia/Tokyo")
    path = tmp_path / "export.zip"
    path.write_bytes(
        zipped({"data/bp.csv": csv_bytes('"2024-05-01 09:00:00",70,120,80,', '"2024-05-02 09:00:00",70,,,')})
    )
    call_command("import_withings_export", participant.study.slug, participant.code, str(path))
    out = capsys.readouterr().out
    assert "1 added" in out
    assert "1 pulse-only" in out
    reading = BloodPressureReading.objects.get(participant=participant)
    assert reading.measured_at == utc(2024, 5, 1, 0, 0)
    event = AuditEvent.objects.get(action="import.withings_csv")
    assert event.actor is None
    assert event.detail["via"] == "command"


def test_command_refuses_bad_file_and_unknown_participant(tmp_path):
    participant = ParticipantFactory(timezone="UTC")
    path = tmp_path / "bp.csv"
    path.write_bytes(b"Date,Weight\n")
    with pytest.raises(CommandError, match="Wrong columns"):
        call_command("import_withings_export", participant.study.slug, participant.code, str(path))
    with pytest.raises(CommandError, match="No participant"):
        call_command("import_withings_export", participant.study.slug, "NOPE-1", str(path))
    with pytest.raises(CommandError, match="time zone"):
        call_command(
            "import_withings_export",
            participant.study.slug,
            participant.code,
            str(path),
            timezone="Mars/Base",
        )
    assert not BloodPressureReading.objects.exists()
