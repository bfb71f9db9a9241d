"""Measurement sessions (`measurements.sessions`): a triple-mode burst is one session with its mean,
in the readings file (session_id) and the package's sessions.csv; adherence counts sessions when the
protocol says so; a CSV copy of an API reading stays one reading."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from decimal import Decimal

import pytest
from django.conf import settings as django_settings

from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_job_create
from measurements.models import DailyAdherence, ExportJob, StudyProtocol
from measurements.monitoring.adherence import adherence_rebuild_participant
from measurements.sessions import SessionTracker
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, StudyFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2024, 3, 5, 7, 0, tzinfo=dt.UTC)  # 07:00 UTC = 08:00 in Paris: the morning window


def test_tracker_chains_readings_within_the_gap():
    tracker = SessionTracker(gap=dt.timedelta(minutes=10), keep=True)
    ids = [
        tracker.feed(participant="P", measured_at=T0 + dt.timedelta(minutes=m), systolic=120, diastolic=80)
        for m in (0, 1, 11, 22)  # 11 is 10 min after 1 (the gap: same session); 22 is 11 min after 11
    ]
    ids.append(tracker.feed(participant="Q", measured_at=T0 + dt.timedelta(minutes=23)))  # another person
    assert ids == ["P-20240305T070000Z"] * 3 + ["P-20240305T072200Z", "Q-20240305T072300Z"]
    assert tracker.feed(participant="Q", measured_at=T0, eligible=False) is None
    sessions = tracker.finish()
    assert [(s.id, s.readings) for s in sessions] == [
        ("P-20240305T070000Z", 3),
        ("P-20240305T072200Z", 1),
        ("Q-20240305T072300Z", 1),
    ]


@pytest.fixture
def burst():
    """A BPM Connect triple-mode burst 40 s apart (the last one implausible), a reading 2 h later, and
    a CSV copy of the first reading."""
    study = StudyFactory(slug="burst")
    participant = ParticipantFactory(
        study=study, code="B-1", timezone="Europe/Paris", start_date=dt.date(2024, 3, 1)
    )
    values = [
        (Decimal(131), Decimal(85), Decimal(70)),
        (Decimal(127), Decimal(83), None),
        (Decimal(126), Decimal(80), Decimal(66)),
        (Decimal(161), Decimal(1), Decimal(82)),
    ]
    readings = [
        ReadingFactory(
            participant=participant,
            measured_at=T0 + dt.timedelta(seconds=40 * i),
            systolic=s,
            diastolic=d,
            pulse=p,
        )
        for i, (s, d, p) in enumerate(values)
    ]
    ReadingFactory(
        participant=participant, measured_at=T0 + dt.timedelta(hours=2), systolic=140, diastolic=90
    )
    ReadingFactory(
        participant=participant, measured_at=T0, source="csv", grpid=None, duplicate_of=readings[0]
    )
    return study, participant


def test_export_gives_the_burst_one_session_with_its_mean(
    burst, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    study, _participant = burst
    user = MembershipFactory(study=study, role="data_manager").user
    with django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(actor=user, study=study, fmt="csv", filters=ExportFilters())
    job.refresh_from_db()
    assert job.status == ExportJob.Status.DONE
    with zipfile.ZipFile(django_settings.MEDIA_ROOT / job.file) as archive:
        readings = list(csv.DictReader(io.StringIO(archive.read("readings.csv").decode())))
        sessions = list(csv.DictReader(io.StringIO(archive.read("sessions.csv").decode())))
        manifest = json.loads(archive.read("manifest.json"))
        dictionary = [
            r["name"] for r in csv.DictReader(io.StringIO(archive.read("data_dictionary.csv").decode()))
        ]
    assert [r["session_id"] for r in readings] == ["B-1-20240305T070000Z"] * 4 + ["B-1-20240305T090000Z"]
    assert len(readings) == 5  # the CSV copy stays out: one reading
    # Means over the three plausible readings: (131+127+126)/3 = 128, (85+83+80)/3 = 82.67 → 82.7,
    # pulse over the two that have one: (70+66)/2 = 68 (written exactly, as every export number).
    # The 161/1 counts as a reading, not in the mean.
    assert sessions == [
        {
            "study": "burst", "participant": "B-1", "session_id": "B-1-20240305T070000Z",
            "started_at": "2024-03-05T07:00:00Z", "ended_at": "2024-03-05T07:02:00Z",
            "reading_count": "4", "averaged_count": "3",
            "systolic_mean_mmhg": "128", "diastolic_mean_mmhg": "82.7", "pulse_mean_bpm": "68",
        },
        {
            "study": "burst", "participant": "B-1", "session_id": "B-1-20240305T090000Z",
            "started_at": "2024-03-05T09:00:00Z", "ended_at": "2024-03-05T09:00:00Z",
            "reading_count": "1", "averaged_count": "1",
            "systolic_mean_mmhg": "140", "diastolic_mean_mmhg": "90", "pulse_mean_bpm": "64",
        },
    ]  # fmt: skip
    assert manifest["sessions"] == {"gap_minutes": 10, "file": "sessions.csv"}
    assert next(f for f in manifest["files"] if f["name"] == "sessions.csv")["rows"] == 2
    assert "sessions.csv/systolic_mean_mmhg" in dictionary
    assert {"session_id", "quality_flags"} <= set(dictionary)


@pytest.mark.parametrize(("count_by", "morning"), [("readings", 4), ("sessions", 1)])
def test_adherence_counts_sessions_or_readings_as_the_protocol_says(burst, count_by, morning, settings):
    study, participant = burst
    StudyProtocol.objects.create(study=study, duration_days=None, readings_per_window=2, count_by=count_by)
    adherence_rebuild_participant(participant_id=participant.pk, today=dt.date(2024, 3, 6))
    day = DailyAdherence.objects.get(participant=participant, day=dt.date(2024, 3, 5))
    # 08:00–08:02 local (the burst) and 10:00 local: all in the morning window (04:00–12:00).
    assert day.morning == morning + 1
    assert day.counted == min(morning + 1, 2)
    settings.READING_SESSION_GAP_MINUTES = 0  # a gap of 0: every reading its own session
    adherence_rebuild_participant(participant_id=participant.pk, today=dt.date(2024, 3, 6))
    assert DailyAdherence.objects.get(participant=participant, day=dt.date(2024, 3, 5)).morning == 5
