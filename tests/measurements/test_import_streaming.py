"""The CSV import streams: written in batches while the file is read, yet still all or nothing, with
the same dedupe, counts and monitoring as when the whole file was held in memory."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.timezone import now

from cohorts.models import AuditEvent, Role
from measurements.imports.archive import ImportFileError
from measurements.imports.plan import reading_key
from measurements.imports.services import withings_csv_import, withings_csv_plan
from measurements.imports.writer import BATCH
from measurements.models import Alert, BloodPressureReading, DailyAdherence
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory

pytestmark = pytest.mark.django_db
HEADER = 'Date,"Heart rate",Systolic,Diastolic,Comments\n'
START = dt.datetime(2024, 1, 1, 7, 0)  # wall-clock time, as bp.csv writes it


def row(at: dt.datetime, systolic=120, diastolic=80, pulse: int | str = 70) -> str:
    return f'"{at:%Y-%m-%d %H:%M:%S}",{pulse},{systolic},{diastolic},'


def csv_bytes(rows: list[str]) -> bytes:
    return (HEADER + "\n".join(rows) + "\n").encode()


def minutes(n: int) -> list[dt.datetime]:
    return [START + dt.timedelta(minutes=i) for i in range(n)]


def test_a_bad_row_after_whole_batches_were_written_imports_nothing():
    participant = ParticipantFactory(timezone="UTC")
    rows = [row(at) for at in minutes(2 * BATCH + 5)] + [row(START - dt.timedelta(days=1), 400, 80)]
    with pytest.raises(ImportFileError) as caught:
        withings_csv_import(actor=None, participant=participant, data=csv_bytes(rows))
    assert caught.value.messages == [
        f"Line {2 * BATCH + 7}: Systolic 400 is outside the plausible range 50–300."
    ]
    assert not BloodPressureReading.objects.exists()
    assert not DailyAdherence.objects.exists()
    assert not AuditEvent.objects.filter(action="import.withings_csv").exists()


def test_repeats_and_stored_readings_are_found_across_batches():
    participant = ParticipantFactory(timezone="UTC")
    times = minutes(BATCH + 10)
    # Stored from the API with hundredths and a fraction of a second: the same reading to the second.
    ReadingFactory(
        participant=participant,
        measured_at=times[-1].replace(tzinfo=dt.UTC, microsecond=5),
        systolic=Decimal("120.00"), diastolic=Decimal("80.00"), pulse=Decimal("70.00"),
    )  # fmt: skip
    rows = [row(at) for at in times]
    rows += [rows[0], rows[3], row(times[5], pulse=""), rows[-1], row(times[6], 121), row(times[7], pulse=71)]
    plan = withings_csv_import(actor=None, participant=participant, data=csv_bytes(rows))
    total = BATCH + 16
    assert plan.counts() == {
        "rows": total,
        "added": BATCH + 9 + 3,
        "before_participation": 0,
        "already_present": 2,
        "duplicate_in_file": 2,
        "pulse_only": 0,
        "empty": 0,
        "flagged_local_time": 0,
    }
    assert list(plan.present_lines) == [BATCH + 11, BATCH + 15]
    assert list(plan.repeated_lines) == [BATCH + 12, BATCH + 13]
    assert [r.line for r in plan.duplicate_in_file] == [BATCH + 12, BATCH + 13]
    stored = BloodPressureReading.objects.filter(participant=participant, source="csv")
    assert stored.count() == plan.imported == BATCH + 12
    assert stored.filter(pulse__isnull=True).count() == 1
    assert stored.get(raw__line=BATCH + 16).systolic == Decimal(121)


def test_the_plan_reads_its_rows_again_from_the_file():
    participant = ParticipantFactory(timezone="Europe/Paris")
    rows = [row(at, 110 + i) for i, at in enumerate(minutes(5))] + [row(dt.datetime(2024, 3, 31, 2, 30))]
    with io.BytesIO(csv_bytes(rows)) as upload:
        plan = withings_csv_plan(participant=participant, data=upload)
    assert not BloodPressureReading.objects.exists()
    assert len(plan.to_add) == 6
    assert [r.systolic for r in plan.to_add[1:3]] == [Decimal(111), Decimal(112)]
    assert plan.to_add[0].line == 2
    assert plan.to_add[-1].dst == "nonexistent"
    assert [r.line for r in plan.flagged] == [7]
    assert plan.to_add[:200] == list(plan.to_add)
    with pytest.raises(IndexError):
        plan.to_add[6]
    assert not plan.already_present
    assert list(plan.already_present) == []


def test_monitoring_sees_every_imported_day_and_a_recent_crisis():
    participant = ParticipantFactory(timezone="America/New_York", start_date=dt.date(2020, 1, 1))
    zone = ZoneInfo("America/New_York")
    recent = now().astimezone(zone).replace(tzinfo=None, microsecond=0) - dt.timedelta(hours=2)
    old_crisis = dt.datetime(2024, 2, 1, 23, 30)
    first = dt.datetime(2020, 1, 1, 7, 0)
    days = [first + dt.timedelta(days=d, hours=h) for d in range(3 * BATCH // 4) for h in (0, 12)]
    rows = [row(at) for at in days] + [row(recent, 190, 100), row(old_crisis, 200, 125)]
    withings_csv_import(actor=None, participant=participant, data=csv_bytes(rows))
    local_days = {at.date() for at in [*days, recent, old_crisis]}
    rollup = DailyAdherence.objects.filter(participant=participant)
    assert local_days <= set(rollup.values_list("day", flat=True))
    assert rollup.get(day=first.date()).morning + rollup.get(day=first.date()).evening == 2
    crisis = Alert.objects.get(participant=participant, kind=Alert.Kind.CRISIS)
    assert crisis.detail["systolic"] == "190"
    assert crisis.detail["count"] == 1


def test_the_preview_lists_the_skipped_lines(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    participant = ParticipantFactory(timezone="UTC")
    client.force_login(MembershipFactory(study=participant.study, role=Role.COORDINATOR).user)
    ReadingFactory(
        participant=participant, measured_at=dt.datetime(2024, 1, 1, 7, 1, tzinfo=dt.UTC),
        systolic=Decimal(120), diastolic=Decimal(80), pulse=Decimal(70),
    )  # fmt: skip
    rows = [row(at) for at in minutes(4)]
    url = reverse("admin:measurements_withingscsvimport_import", args=[participant.pk])
    upload = SimpleUploadedFile("bp.csv", csv_bytes([*rows, rows[2], rows[3]]))
    html = client.post(url, {"file": upload, "timezone": ""}).content.decode()
    assert "<strong>3</strong> readings will be added" in html
    assert "<p>Lines 3; 6 (repeat), 7 (repeat).</p>" in html
    assert not BloodPressureReading.objects.filter(source="csv").exists()
    staged = re.search(r'name="staged" value="([^"]+)"', html).group(1)
    assert client.post(url, {"staged": staged}).status_code == 302
    assert BloodPressureReading.objects.filter(source="csv").count() == 3
    assert not list((tmp_path / "media" / "import-staging").glob("*.upload"))


@pytest.mark.parametrize(
    ("stored", "matches"),
    [
        ((Decimal("120.00"), Decimal("80.00"), Decimal("70.00")), True),
        ((Decimal("120.00"), Decimal("80.00"), None), False),
        ((Decimal("120.01"), Decimal("80.00"), Decimal("70.00")), False),
        ((Decimal("80.00"), Decimal("120.00"), Decimal("70.00")), False),
    ],
)
def test_reading_key_is_equal_exactly_when_the_readings_are(stored, matches):
    at = dt.datetime(2024, 5, 1, 7, 0, tzinfo=dt.UTC)
    csv_key = reading_key(at, Decimal(120), Decimal(80), Decimal(70))
    assert (reading_key(at + dt.timedelta(microseconds=999_999), *stored) == csv_key) is matches
    assert reading_key(at + dt.timedelta(seconds=1), Decimal(120), Decimal(80), Decimal(70)) != csv_key
    assert reading_key(at, Decimal("120.005"), Decimal(80), None) is None  # no CSV row can match it
    assert reading_key(at, Decimal(350), Decimal(80), None) is None
