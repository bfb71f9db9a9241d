"""De-identified packages: no real date or device/group id in any format, offsets stable per participant
across exports (whole weeks: weekday and time of day kept), and the right enforced on every path."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from openpyxl import load_workbook

from cohorts.models import AuditEvent, ExportRights, Participant, Role
from measurements.exports.columns import COLUMN_NAMES
from measurements.exports.copy_csv import CopyCsvRows
from measurements.exports.deidentify import RULES, Deidentifier
from measurements.exports.rows import ExportFilters, iter_rows, readings_for_export
from measurements.exports.services import export_download_record, export_job_create, export_job_run
from measurements.exports.writers import write_csv
from measurements.models import BloodPressureReading, ExportJob
from measurements.monitoring.protocol import participant_period, protocol_for_study
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, StudyFactory

pytestmark = pytest.mark.django_db


MODEL = "Cuff free-text 7Q"


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.fixture
def study(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    study = StudyFactory(slug="deid")
    perth = ParticipantFactory(study=study, code="P-PERTH", timezone="Australia/Perth")
    paris = ParticipantFactory(study=study, code="P-PARIS", timezone="Europe/Paris")
    # Paris: one reading in winter (+01:00) and one in summer (+02:00). No two readings of a participant
    # are a whole number of weeks apart: a shifted time could then equal another reading's real one.
    ReadingFactory(
        participant=perth,
        measured_at=utc(2024, 3, 4, 22, 7, 5),
        device_model=MODEL,
        device_id="dev-perth-0001",
        grpid=6083742111,
    )
    ReadingFactory(
        participant=perth,
        measured_at=utc(2024, 3, 5, 9, 30, 0),
        device_model=MODEL,
        device_id="dev-perth-0001",
        grpid=6083742112,
    )
    ReadingFactory(
        participant=paris,
        measured_at=utc(2024, 1, 10, 6, 15, 0),
        device_model=MODEL,
        device_id="dev-paris-0002",
        grpid=6083745221,
    )
    ReadingFactory(
        participant=paris,
        measured_at=utc(2024, 7, 12, 5, 15, 0),
        device_model=MODEL,
        device_id="dev-paris-0002",
        grpid=6083745222,
    )
    return study


def run(study, fmt: str, *, deidentified: bool = True) -> zipfile.ZipFile:
    job = export_job_create(
        actor=None, study=study, fmt=fmt, filters=ExportFilters(), run=False, deidentified=deidentified
    )
    job = export_job_run(job_id=job.pk)
    return zipfile.ZipFile(_path(job))


def _path(job: ExportJob) -> Path:
    return Path(settings.MEDIA_ROOT) / job.file


def real_secrets() -> list[str]:
    """Every real instant (as each format writes it), real date, device id and group id in the DB."""
    found = []
    for r in BloodPressureReading.objects.select_related("participant"):
        local = r.measured_at.astimezone(ZoneInfo(r.participant.timezone))
        found += [
            r.measured_at.strftime("%Y-%m-%dT%H:%M:%S"),
            r.measured_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.measured_at.strftime("%Y%m%dT%H%M%SZ"),  # as session ids name a session's first reading
            local.strftime("%Y-%m-%dT%H:%M:%S"),
            local.strftime("%Y-%m-%d %H:%M:%S"),
            r.device_id,
            str(r.grpid),
        ]
    return found


def package_text(package: zipfile.ZipFile) -> str:
    texts = []
    for name in package.namelist():
        if name.endswith(".xlsx"):
            sheet = load_workbook(io.BytesIO(package.read(name)), read_only=True)["readings"]
            texts += [str(v) for row in sheet.iter_rows(values_only=True) for v in row]
        else:
            texts.append(package.read(name).decode())
    return "\n".join(texts)


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx", "fhir"])
def test_no_real_date_or_device_id_in_any_format(study, fmt):
    text = package_text(run(study, fmt))
    for secret in real_secrets():
        assert secret not in text, secret
    assert MODEL not in text  # free text dropped
    assert "P-PERTH" in text  # the pseudonymous code stays


def csv_rows(package: zipfile.ZipFile) -> list[dict]:
    return list(csv.DictReader(io.StringIO(package.read("readings.csv").decode())))


def shifts(rows: list[dict]) -> dict[str, set[dt.timedelta]]:
    """Exported time minus real time, per participant (rows are in participant, time order)."""
    real = {
        code: sorted(
            BloodPressureReading.objects.filter(participant__code=code).values_list("measured_at", flat=True)
        )
        for code in {r["participant"] for r in rows}
    }
    seen: dict[str, list] = {}
    result: dict[str, set[dt.timedelta]] = {}
    for r in rows:
        exported = dt.datetime.fromisoformat(r["measured_at"].replace("Z", "+00:00"))
        index = len(seen.setdefault(r["participant"], []))
        seen[r["participant"]].append(exported)
        result.setdefault(r["participant"], set()).add(exported - real[r["participant"]][index])
    return result


def test_offset_stable_across_exports_and_keeps_weekday_and_time_of_day(study):
    first, second = shifts(csv_rows(run(study, "csv"))), shifts(csv_rows(run(study, "csv")))
    assert first == second
    for code, deltas in first.items():
        assert len(deltas) == 1, code  # one offset per participant
        (delta,) = deltas
        assert (delta.seconds, delta.microseconds) == (0, 0)  # time of day kept
        assert delta.days % 7 == 0  # weekday kept
        assert 7 <= abs(delta.days) <= 364
    rows = csv_rows(run(study, "csv"))
    for r in rows:
        local = dt.datetime.fromisoformat(r["measured_at_local"])
        instant = dt.datetime.fromisoformat(r["measured_at"].replace("Z", "+00:00"))
        assert local == instant  # the same instant: offset kept
    # The local wall-clock time of day is the real one (Perth 06:07:05 local, +08:00).
    perth = next(r for r in rows if r["participant"] == "P-PERTH")
    assert perth["measured_at_local"].endswith("T06:07:05+08:00")
    paris_summer = [r for r in rows if r["participant"] == "P-PARIS"][1]
    assert paris_summer["measured_at_local"].endswith("T07:15:00+02:00")
    assert (
        dt.datetime.fromisoformat(paris_summer["measured_at_local"]).weekday()
        == dt.date(2024, 7, 12).weekday()
    )


def test_hashes_are_keyed_and_equal_ids_hash_equal(study):
    rows = csv_rows(run(study, "csv"))
    key = Deidentifier.for_study(study)
    assert [r["withings_grpid"] for r in rows] == [
        key.hash_id("grpid", g) for g in (6083745221, 6083745222, 6083742111, 6083742112)
    ]
    assert {r["device_model"] for r in rows} == {""}
    other = Deidentifier(b"another study's key" * 2)
    assert other.hash_id("grpid", 6083745221) != key.hash_id("grpid", 6083745221)
    fhir = [json.loads(line) for line in run(study, "fhir").read("observations.ndjson").decode().splitlines()]
    devices = {o["device"]["identifier"]["value"] for o in fhir}
    assert devices == {key.hash_id("device", "dev-perth-0001"), key.hash_id("device", "dev-paris-0002")}
    assert all(o["device"]["identifier"]["system"].endswith("withings-device-hash") for o in fhir)
    real_pks = {f"bp-{pk}" for pk in BloodPressureReading.objects.values_list("pk", flat=True)}
    assert not real_pks & {o["id"] for o in fhir}


def test_copy_path_gives_the_same_bytes_as_python(study):
    qs = readings_for_export(study_id=study.pk, filters=ExportFilters())
    key = Deidentifier.for_study(study)
    via_python, via_copy = io.BytesIO(), io.BytesIO()
    write_csv(map(key.row, iter_rows(qs)), via_python)
    write_csv(CopyCsvRows(qs, deidentifier=key, connections=1), via_copy)
    assert via_copy.getvalue() == via_python.getvalue()
    assert via_copy.getvalue().count(b"\r\n") == 5


def test_dictionary_and_manifest_say_what_was_transformed(study):
    package = run(study, "json")
    manifest = json.loads(package.read("manifest.json"))
    assert manifest["deidentified"] is True
    assert manifest["deidentification"]["columns"] == {
        "measured_at": "shifted",
        "measured_at_local": "shifted",
        "device_model": "dropped",
        "withings_grpid": "hashed",
        "session_id": "shifted",
    }
    assert manifest["deidentification"]["files"]["sessions.csv"]["started_at"] == "shifted"
    dictionary = {c["name"]: c for c in json.loads(package.read("data_dictionary.json"))}
    assert "shifted" in dictionary["measured_at"]["meaning"]
    assert dictionary["withings_grpid"]["type"] == "text (keyed hash)"
    assert "De-identified" not in dictionary["systolic_mmhg"]["meaning"]
    full = json.loads(run(study, "json", deidentified=False).read("manifest.json"))
    assert full["deidentified"] is False
    assert "deidentification" not in full


def test_every_column_has_a_rule():
    assert set(RULES) == set(COLUMN_NAMES)


# --- the right ---------------------------------------------------------------------------------------


@pytest.fixture
def limited(study):
    return MembershipFactory(
        study=study, role=Role.DATA_MANAGER, export_rights=ExportRights.DEIDENTIFIED
    ).user


def test_service_refuses_full_export_to_limited_user(study, limited):
    with pytest.raises(PermissionDenied):
        export_job_create(actor=limited, study=study, fmt="csv", filters=ExportFilters(), run=False)
    assert not ExportJob.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="export.").exists()


def test_form_forces_deidentified_whatever_is_posted(
    study, limited, client, django_capture_on_commit_callbacks
):
    client.force_login(limited)
    url = reverse("admin:measurements_exportjob_study", args=[study.slug])
    page = client.get(url).content.decode()
    assert "de-identified exports only" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"format": "csv"})  # the box unticked: posted as absent
    assert response.status_code == 302
    job = ExportJob.objects.get()
    assert job.deidentified is True
    assert shifts(csv_rows(zipfile.ZipFile(_path(job))))  # it ran, de-identified
    assert "P-PERTH" in zipfile.ZipFile(_path(job)).read("readings.csv").decode()
    for secret in real_secrets():
        assert secret not in zipfile.ZipFile(_path(job)).read("readings.csv").decode()


def test_limited_user_cannot_download_a_full_job_by_url(study, limited, client):
    full_manager = MembershipFactory(study=study, role=Role.DATA_MANAGER).user
    job = export_job_create(actor=full_manager, study=study, fmt="csv", filters=ExportFilters(), run=False)
    job = export_job_run(job_id=job.pk)
    client.force_login(limited)
    response = client.get(reverse("admin:measurements_exportjob_download", args=[job.pk]))
    assert response.status_code == 403
    with pytest.raises(PermissionDenied):
        export_download_record(actor=limited, job=job)
    assert not AuditEvent.objects.filter(action="export.downloaded").exists()
    page = client.get(reverse("admin:measurements_exportjob_study", args=[study.slug])).content.decode()
    assert reverse("admin:measurements_exportjob_progress", args=[job.pk]) not in page
    assert client.get(reverse("admin:measurements_exportjob_progress", args=[job.pk])).status_code == 403
    # The full manager may still download it.
    assert export_download_record(actor=full_manager, job=job).exists()


def test_key_rotation_keeps_the_offsets_and_hashes(study, settings):
    from core.crypto import generate_key
    from measurements.models import StudyExportKey
    from withings.services.keys import rotate_encryption_keys

    before = Deidentifier.for_study(study)
    stored = StudyExportKey.objects.values_list("secret", flat=True).get()  # decrypted by the field
    assert before.secret == bytes.fromhex(stored)
    new = generate_key()
    settings.FIELD_ENCRYPTION_KEYS = [new, *settings.FIELD_ENCRYPTION_KEYS]
    assert rotate_encryption_keys()["export de-identification keys"] == 1
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key dropped
    after = Deidentifier.for_study(study)
    assert after.offset_days("P-PERTH") == before.offset_days("P-PERTH")
    assert after.hash_id("grpid", 6083742111) == before.hash_id("grpid", 6083742111)


def test_export_study_command_deidentified(study, tmp_path):
    from django.core.management import call_command

    out = tmp_path / "deid.zip"
    call_command("export_study", "deid", "--format", "csv", "--output", str(out), "--deidentified")
    package = zipfile.ZipFile(out)
    assert json.loads(package.read("manifest.json"))["deidentified"] is True
    text = package.read("readings.csv").decode()
    for secret in real_secrets():
        assert secret not in text


def test_sessions_and_home_averages_move_with_the_readings(study):
    study.participants.update(status=Participant.Status.ACTIVE, start_date=dt.date(2024, 1, 8))
    package = run(study, "csv")
    readings = csv_rows(package)
    sessions = list(csv.DictReader(io.StringIO(package.read("sessions.csv").decode())))
    # Each reading here is its own session (days apart): the sessions file names the shifted instants,
    # and the readings file's session ids are the sessions file's.
    assert sorted(s["started_at"] for s in sessions) == sorted(r["measured_at"] for r in readings)
    assert {s["session_id"] for s in sessions} == {r["session_id"] for r in readings}
    key = Deidentifier.for_study(study)
    averages = list(csv.DictReader(io.StringIO(package.read("home_bp_averages.csv").decode())))
    assert averages
    for row in averages:
        participant = study.participants.get(code=row["participant"])
        real = participant_period(participant, protocol_for_study(study.pk), study)
        assert real.start == dt.date(2024, 1, 8)
        assert row["period_start"] == (real.start + key.shift(row["participant"])).isoformat()
