"""Readings in → each export format out: exact values and instants, dictionary, manifest, checksums."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import time
import zipfile
from decimal import Decimal

import pytest
from django.core.management import call_command
from fhir.resources.R4B.observation import Observation
from openpyxl import load_workbook

from cohorts.models import AuditEvent, Participant
from measurements.exports import home_averages, sessions_file
from measurements.exports.columns import COLUMN_NAMES, CONTRACT_COLUMNS
from measurements.exports.formatting import csv_cell, neutralise, xlsx_cell
from measurements.exports.rows import ExportFilters, readings_for_export
from measurements.exports.services import export_job_create, export_job_run
from measurements.models import BloodPressureReading, ExportJob
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, SiteFactory, StudyFactory

pytestmark = pytest.mark.django_db

EXPECTED_CONTRACT = [
    "study",
    "site",
    "participant",
    "measured_at",
    "measured_at_local",
    "systolic_mmhg",
    "diastolic_mmhg",
    "pulse_bpm",
    "irregular_heartbeat",
    "source",
    "device_model",
    "withings_grpid",
    "attrib",
    "flags",
]


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.fixture
def study_data(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    study = StudyFactory(slug="round-trip")
    site = SiteFactory(study=study, code="north")
    perth = ParticipantFactory(study=study, site=site, code="P-PERTH", timezone="Australia/Perth")
    paris = ParticipantFactory(study=study, site=site, code="P-PARIS", timezone="Europe/Paris")
    ReadingFactory(
        participant=perth,
        measured_at=utc(2023, 12, 18, 22, 7, 5),
        systolic=Decimal("143.00"),
        diastolic=Decimal("91.50"),
        pulse=Decimal("57.00"),
        grpid=5555001,
        attrib=1,
        ambiguous_user=True,
    )
    ReadingFactory(
        participant=paris,
        measured_at=utc(2024, 7, 1, 16, 30, 0),
        systolic=Decimal("118"),
        diastolic=Decimal("76"),
        pulse=None,
        source="csv",
        grpid=None,
        attrib=None,
        device_id="",
        device_model="",
        device_model_id=None,
        local_time_ambiguous=True,
        irregular_heartbeat=True,
    )
    user = MembershipFactory(study=study, role="data_manager").user
    return study, user


EXPECTED_ROWS = [
    {
        "study": "round-trip",
        "site": "north",
        "participant": "P-PARIS",
        "measured_at": "2024-07-01T16:30:00Z",
        "measured_at_local": "2024-07-01T18:30:00+02:00",
        "systolic_mmhg": "118",
        "diastolic_mmhg": "76",
        "pulse_bpm": "",
        "irregular_heartbeat": "true",
        "source": "csv",
        "device_model": "",
        "withings_grpid": "",
        "attrib": "",
        "flags": "local_time_ambiguous",
        "acc_aha_category": "normal",
        "protocol_window": "evening",
        "session_id": "P-PARIS-20240701T163000Z",
        "quality_flags": "",
        "guideline_category": "normal",  # no protocol: the default guideline, ACC/AHA 2017
    },
    {
        "study": "round-trip",
        "site": "north",
        "participant": "P-PERTH",
        "measured_at": "2023-12-18T22:07:05Z",
        "measured_at_local": "2023-12-19T06:07:05+08:00",
        "systolic_mmhg": "143",
        "diastolic_mmhg": "91.5",
        "pulse_bpm": "57",
        "irregular_heartbeat": "",
        "source": "api",
        "device_model": "BPM Connect",
        "withings_grpid": "5555001",
        "attrib": "1",
        "flags": "ambiguous_user",
        "acc_aha_category": "stage_2",
        "protocol_window": "morning",
        "session_id": "",  # maybe another person: in no session
        "quality_flags": "",
        "guideline_category": "stage_2",
    },
]


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    def _run(study, user, fmt, **filters):
        with django_capture_on_commit_callbacks(execute=True):  # queued on commit; Celery eager in tests
            job = export_job_create(actor=user, study=study, fmt=fmt, filters=ExportFilters(**filters))
        job.refresh_from_db()
        assert job.status == ExportJob.Status.DONE, job.error
        return job

    return _run


def package(job) -> zipfile.ZipFile:
    from django.conf import settings

    return zipfile.ZipFile(settings.MEDIA_ROOT / job.file)


def test_columns_follow_the_contract():
    assert list(CONTRACT_COLUMNS) == EXPECTED_CONTRACT
    assert list(COLUMN_NAMES) == [
        *EXPECTED_CONTRACT,
        "acc_aha_category",
        "protocol_window",
        "session_id",
        "quality_flags",
        "guideline_category",
    ]


def test_csv_round_trip(run, study_data):
    job = run(*study_data, "csv")
    with package(job) as archive:
        text = archive.read("readings.csv").decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == list(COLUMN_NAMES)
    assert list(reader) == EXPECTED_ROWS
    assert job.rows_done == job.rows_total == 2


def test_json_round_trip(run, study_data):
    job = run(*study_data, "json")
    with package(job) as archive:
        rows = json.loads(archive.read("readings.json"))
    assert rows[1] == {
        **EXPECTED_ROWS[1],
        "systolic_mmhg": 143,
        "diastolic_mmhg": 91.5,
        "pulse_bpm": 57,
        "irregular_heartbeat": None,
        "withings_grpid": 5555001,
        "attrib": 1,
        "session_id": None,
        "quality_flags": None,
    }
    assert rows[0]["pulse_bpm"] is None
    assert rows[0]["irregular_heartbeat"] is True
    assert rows[0]["device_model"] is None


def test_xlsx_round_trip_keeps_numbers_numeric(run, study_data):
    job = run(*study_data, "xlsx")
    with package(job) as archive:
        workbook = load_workbook(io.BytesIO(archive.read("readings.xlsx")), read_only=True)
    sheet_rows = list(workbook["readings"].iter_rows(values_only=True))
    assert list(sheet_rows[0]) == list(COLUMN_NAMES)
    # Read-only openpyxl drops a row's trailing empty cells (here session_id and quality_flags).
    sheet_rows = [(*row, *(None,) * (len(COLUMN_NAMES) - len(row))) for row in sheet_rows]
    perth = dict(zip(COLUMN_NAMES, sheet_rows[2], strict=True))
    assert perth["systolic_mmhg"] == 143
    assert isinstance(perth["systolic_mmhg"], int)
    assert perth["diastolic_mmhg"] == 91.5
    assert perth["measured_at"] == dt.datetime(2023, 12, 18, 22, 7, 5)  # UTC wall-clock (test_export_fit)
    assert perth["measured_at_local"] == dt.datetime(2023, 12, 19, 6, 7, 5)  # Perth wall-clock
    assert perth["irregular_heartbeat"] is None
    assert perth["flags"] == "ambiguous_user"
    paris = dict(zip(COLUMN_NAMES, sheet_rows[1], strict=True))
    assert paris["pulse_bpm"] is None
    assert paris["irregular_heartbeat"] == "true"


def fhir_resources(job) -> list[dict]:
    with package(job) as archive:
        return [json.loads(line) for line in archive.read("observations.ndjson").decode().splitlines()]


def test_fhir_observations_validate_and_carry_exact_values(run, study_data):
    job = run(*study_data, "fhir")
    resources = fhir_resources(job)
    assert [r["id"].split("-")[0] for r in resources] == ["bp", "bp", "hr"]
    for resource in resources:
        Observation.model_validate(resource)  # raises on any invalid element
    paris_bp, perth_bp, perth_hr = resources
    assert perth_bp["code"]["coding"][0]["code"] == "85354-9"
    assert perth_bp["effectiveDateTime"] == "2023-12-19T06:07:05+08:00"
    components = {c["code"]["coding"][0]["code"]: c for c in perth_bp["component"]}
    assert set(components) == {"8480-6", "8462-4"}  # irregular heartbeat unknown: absent
    assert components["8480-6"]["valueQuantity"] == {
        "value": 143,
        "unit": "mm[Hg]",
        "system": "http://unitsofmeasure.org",
        "code": "mm[Hg]",
    }
    assert components["8462-4"]["valueQuantity"]["value"] == 91.5
    assert perth_bp["subject"]["reference"] == "Patient/round-trip-P-PERTH"
    assert perth_bp["subject"]["identifier"]["value"] == "P-PERTH"
    assert perth_bp["identifier"][0]["value"] == "5555001"
    assert perth_bp["device"]["identifier"]["value"] == "a" * 40
    assert perth_hr["code"]["coding"][0]["code"] == "8867-4"
    assert perth_hr["valueQuantity"]["value"] == 57
    assert perth_hr["valueQuantity"]["code"] == "/min"
    paris_components = {c["code"]["coding"][0]["code"]: c for c in paris_bp["component"]}
    assert paris_components["irregular-heartbeat"]["valueBoolean"] is True
    assert "device" not in paris_bp
    assert "identifier" not in paris_bp
    dumped = json.dumps(resources)
    assert "Australia/Perth" not in dumped
    with package(job) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["row_count"] == 2
    assert manifest["resource_count"] == 3


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "fhir"])
def test_package_has_dictionary_manifest_and_valid_checksums(run, study_data, fmt):
    job = run(*study_data, fmt, since=dt.date(2023, 1, 1), statuses=("active",))
    from django.conf import settings

    path = settings.MEDIA_ROOT / job.file
    assert hashlib.sha256(path.read_bytes()).hexdigest() == job.sha256
    assert path.stat().st_size == job.file_size
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        sums = dict(line.split("  ")[::-1] for line in archive.read("SHA256SUMS").decode().splitlines())
        dictionary = list(csv.DictReader(io.StringIO(archive.read("data_dictionary.csv").decode())))
        for name, digest in sums.items():
            assert hashlib.sha256(archive.read(name)).hexdigest() == digest
    assert set(sums) == {n for n in names if n != "SHA256SUMS"}
    assert manifest["study"] == "round-trip"
    assert manifest["format"] == fmt
    assert manifest["row_count"] == 2
    assert manifest["filters"]["since"] == "2023-01-01"
    assert manifest["filters"]["statuses"] == ["active"]
    assert manifest["software"].startswith("cohort-portal ")
    assert manifest["pseudonymised"] is True
    data_file = next(f for f in manifest["files"] if f["rows"] == 2)
    assert data_file["sha256"] == sums[data_file["name"]]
    # The dictionary covers every column, each fully described.
    assert [d["name"] for d in dictionary] == [
        *COLUMN_NAMES,
        *(f"sessions.csv/{c.name}" for c in sessions_file.COLUMNS),
        *(f"home_bp_averages.csv/{c.name}" for c in home_averages.COLUMNS),
    ]
    assert "sessions.csv" in names
    for entry in dictionary:
        for key in ("meaning", "type", "unknown", "withings_source", "fhir_element"):
            assert entry[key], (entry["name"], key)
    irregular = next(d for d in dictionary if d["name"] == "irregular_heartbeat")
    assert "unknown" in irregular["meaning"]


def test_filters_dates_sites_statuses(run, study_data):
    study, user = study_data
    other_site = SiteFactory(study=study, code="south")
    withdrawn = ParticipantFactory(
        study=study, site=other_site, code="P-GONE", status=Participant.Status.WITHDRAWN
    )
    ReadingFactory(participant=withdrawn, measured_at=utc(2024, 7, 2, 8, 0))

    def participants(job):
        with package(job) as archive:
            return [r["participant"] for r in json.loads(archive.read("readings.json"))]

    assert participants(run(study, user, "json")) == ["P-GONE", "P-PARIS", "P-PERTH"]
    assert participants(run(study, user, "json", since=dt.date(2024, 7, 1), until=dt.date(2024, 7, 1))) == [
        "P-PARIS"
    ]
    assert participants(run(study, user, "json", sites=("south",))) == ["P-GONE"]
    assert participants(run(study, user, "json", statuses=("active",))) == ["P-PARIS", "P-PERTH"]


def test_duplicates_and_other_studies_are_not_exported(run, study_data):
    study, user = study_data
    original = ReadingFactory(
        participant=Participant.objects.get(code="P-PERTH"), measured_at=utc(2024, 1, 1)
    )
    ReadingFactory(
        participant=original.participant, measured_at=utc(2024, 1, 1), grpid=None, duplicate_of=original
    )
    ReadingFactory(participant=ParticipantFactory(code="OTHER-STUDY"))
    job = run(study, user, "csv")
    with package(job) as archive:
        text = archive.read("readings.csv").decode()
    assert job.rows_done == 3
    assert "OTHER-STUDY" not in text


def test_formula_cells_are_neutralised_and_numbers_stay_numeric():
    for dangerous in ['=HYPERLINK("http://x")', "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"]:
        assert csv_cell(dangerous) == "'" + dangerous
        assert xlsx_cell(dangerous).startswith("'")
    assert csv_cell("BPM Connect") == "BPM Connect"
    assert csv_cell(Decimal("-5.00")) == "-5"
    assert xlsx_cell(Decimal("-5.50")) == -5.5
    assert xlsx_cell(-3) == -3
    assert neutralise("") == ""


def test_formula_injection_in_stored_text_is_neutralised_in_csv_and_xlsx(run, study_data):
    study, user = study_data
    ReadingFactory(
        participant=Participant.objects.get(code="P-PARIS"),
        measured_at=utc(2024, 8, 1),
        device_model='=cmd|" /C calc"!A0',
    )
    csv_job, xlsx_job = run(study, user, "csv"), run(study, user, "xlsx")
    with package(csv_job) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("readings.csv").decode())))
    assert rows[1]["device_model"] == '\'=cmd|" /C calc"!A0'
    with package(xlsx_job) as archive:
        workbook = load_workbook(io.BytesIO(archive.read("readings.xlsx")))
    cell = workbook["readings"].cell(row=3, column=COLUMN_NAMES.index("device_model") + 1)
    assert cell.data_type == "s"
    assert cell.value == '\'=cmd|" /C calc"!A0'


def test_export_command_writes_the_package_and_audits(study_data, tmp_path):
    study, _ = study_data
    output = tmp_path / "out" / "demo.zip"
    call_command(
        "export_study", study.slug, "--format", "csv", "--output", str(output), "--since", "2024-01-01"
    )
    with zipfile.ZipFile(output) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("readings.csv").decode())))
    assert [r["participant"] for r in rows] == ["P-PARIS"]
    assert hashlib.sha256(output.read_bytes()).hexdigest() == ExportJob.objects.get().sha256
    actions = sorted(AuditEvent.objects.filter(study=study).values_list("action", flat=True))
    assert actions == ["export.created", "export.downloaded"]


def test_finished_job_is_not_rerun(run, study_data):
    job = run(*study_data, "csv")
    before = (job.sha256, job.finished_at)
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.sha256, job.finished_at) == before
    assert export_job_run(job_id=999999) is None


def test_import_export_resource_matches_the_streamed_csv(study_data, run):
    from measurements.exports.resources import ReadingResource
    from measurements.exports.rows import iter_rows, readings_for_export

    study, user = study_data
    job = run(study, user, "csv")
    with package(job) as archive:
        streamed = archive.read("readings.csv").decode()
    rows = iter_rows(readings_for_export(study_id=study.pk, filters=ExportFilters()))
    dataset = ReadingResource().export(rows)
    assert dataset.headers == list(COLUMN_NAMES)
    assert dataset.csv.replace("\r\n", "\n") == streamed.replace("\r\n", "\n")


def test_progress_is_saved_while_streaming_and_the_requester_is_notified(
    study_data, run, monkeypatch, mailoutbox
):
    from measurements.exports import services

    study, user = study_data
    participant = Participant.objects.get(code="P-PARIS")
    for day in range(1, 6):
        ReadingFactory(participant=participant, measured_at=utc(2025, 1, day, 8))
    seen = []
    real_save = ExportJob.save

    def spy(self, *args, **kwargs):
        if kwargs.get("update_fields") == ["rows_done"]:
            seen.append(self.rows_done)
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(services, "PROGRESS_EVERY", 2)
    monkeypatch.setattr(ExportJob, "save", spy)
    job = run(study, user, "json")  # the row-by-row writers save every PROGRESS_EVERY rows
    assert seen == [2, 4, 6]
    assert job.rows_done == job.rows_total == 7
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [user.email]
    assert f"/admin/measurements/exportjob/{job.pk}/progress/" in mailoutbox[0].body


def test_a_failing_export_leaves_no_file_and_says_so(
    study_data, monkeypatch, django_capture_on_commit_callbacks
):
    from django.conf import settings

    from measurements.exports import writers

    study, user = study_data

    def broken(rows, out):
        out.write(b"study,site,participant\r\n")  # part of the file is written, then the disk fills
        raise OSError("disk full")

    monkeypatch.setitem(writers.WRITERS, "csv", (broken, "readings.csv"))
    with pytest.raises(OSError, match="disk full"), django_capture_on_commit_callbacks(execute=True):
        export_job_create(actor=user, study=study, fmt="csv", filters=ExportFilters())
    job = ExportJob.objects.get()
    assert job.status == ExportJob.Status.FAILED
    assert job.error == "OSError: the export could not be written."
    assert not job.file
    assert [p for p in (settings.MEDIA_ROOT / "exports").rglob("*") if p.is_file()] == []


def _copy_check_readings():
    """Time zones on both sides of DST, decimals, unknowns, flags, formula-like text (one device model
    with a line break inside its cell), categories and windows, over five participants."""
    from tests.factories import ParticipantFactory, ReadingFactory, SiteFactory, StudyFactory

    study = StudyFactory(slug="copy-check")
    zones = ["Europe/Paris", "America/New_York", "Australia/Perth", "Asia/Kolkata", "UTC"]
    site = SiteFactory(study=study, code="=cmd", name="Formula site")
    values = [
        ("119", "79", "60"), ("125.5", "79", None), ("135", "85", "72.25"),
        ("150", "95", "88"), ("181", "100", "90"), ("100.00", "121", "50"),
    ]  # fmt: skip
    instants = [
        dt.datetime(2024, 3, 31, 0, 30, tzinfo=dt.UTC),  # Europe switches to summer time that night
        dt.datetime(2024, 11, 3, 6, 15, tzinfo=dt.UTC),  # New York falls back that morning
        dt.datetime(2024, 7, 1, 16, 59, 59, tzinfo=dt.UTC),
    ]
    for i, tz in enumerate(zones):
        code = f"-C{i}" if i == 1 else f"C{i}"
        p = ParticipantFactory(study=study, site=site if i % 2 else None, code=code, timezone=tz)
        for j, (sys_, dia, pulse) in enumerate(values):
            for k, when in enumerate(instants):
                ReadingFactory(
                    participant=p,
                    systolic=Decimal(sys_),
                    diastolic=Decimal(dia),
                    pulse=Decimal(pulse) if pulse else None,
                    measured_at=when + dt.timedelta(hours=j * 4),
                    irregular_heartbeat=[None, True, False][j % 3],
                    device_model=["", "BPM Connect", "@evil", "", "BPM\nConnect", "\tmodel"][j],
                    grpid=None if j == 5 else 1000 + i * 100 + j * 3 + k,
                    attrib=[0, 1, None][j % 3],
                    ambiguous_user=j == 1,
                    edited_upstream=j in (2, 4),
                    local_time_ambiguous=j == 4,
                )
        # A burst after the first reading: +1 min, +2 min (deleted upstream: in no session), +11 min
        # (10 min after +1: exactly the gap, same session), +22 min (11 min later: a new session).
        for minutes, deleted in ((1, False), (2, True), (11, False), (22, False)):
            ReadingFactory(
                participant=p,
                systolic=Decimal("161"),
                diastolic=Decimal("1") if minutes == 11 else Decimal("90"),
                measured_at=instants[0] + dt.timedelta(minutes=minutes),
                grpid=None,
                deleted_upstream=deleted,
            )
    return readings_for_export(study_id=study.pk, filters=ExportFilters())


def _python_and_copy_csv(qs, copy_rows) -> tuple[str, str]:
    from measurements.exports.rows import iter_rows
    from measurements.exports.writers import write_csv

    python_out, copy_out = io.BytesIO(), io.BytesIO()
    assert write_csv(iter_rows(qs), python_out)[0] == 110
    assert write_csv(copy_rows, copy_out)[0] == 110
    return python_out.getvalue().decode(), copy_out.getvalue().decode()


@pytest.mark.django_db
def test_postgres_copy_csv_gives_the_same_bytes_as_the_python_writer():
    """copy_csv formats in SQL what rows.to_row + formatting.csv_cell format in Python (here inside the
    test's transaction: every group on the caller's connection, in turn)."""
    from measurements.exports.copy_csv import CopyCsvRows

    qs = _copy_check_readings()
    python_csv, copy_csv = _python_and_copy_csv(qs, CopyCsvRows(qs))
    assert copy_csv == python_csv
    assert '"BPM\nConnect"' in copy_csv  # a line break inside a cell is kept, rows end with CRLF
    assert copy_csv.count("\r\n") == 111
    # Participant C0 (UTC): the first reading (00:30) and the burst after it.
    rows = [r for r in csv.DictReader(io.StringIO(copy_csv)) if r["participant"] == "C0"][:5]
    assert [(r["measured_at"], r["session_id"], r["quality_flags"]) for r in rows] == [
        ("2024-03-31T00:30:00Z", "C0-20240331T003000Z", ""),
        ("2024-03-31T00:31:00Z", "C0-20240331T003000Z", ""),
        ("2024-03-31T00:32:00Z", "", ""),  # deleted upstream
        ("2024-03-31T00:41:00Z", "C0-20240331T003000Z", "diastolic_below_20;pulse_pressure_above_100"),
        ("2024-03-31T00:52:00Z", "C0-20240331T005200Z", ""),
    ]
    assert rows[3]["acc_aha_category"] == ""  # implausible: not classified


@pytest.mark.django_db(transaction=True)
def test_copy_csv_on_two_connections_writes_the_groups_in_order(monkeypatch):
    """Outside a transaction the groups are copied on two connections at once, spooled, and appended
    in export order: the same bytes as the Python writer."""
    import threading

    from measurements.exports.copy_csv import CopyCsvRows

    qs = _copy_check_readings()
    threads = []
    real_copy = CopyCsvRows._copy

    def recording(self, group, out):
        threads.append(threading.current_thread().name)
        return real_copy(self, group, out)

    monkeypatch.setattr(CopyCsvRows, "_copy", recording)
    python_csv, copy_csv = _python_and_copy_csv(qs, CopyCsvRows(qs, participants_per_copy=1))
    assert copy_csv == python_csv
    assert len(threads) == 5
    assert {name.rsplit("_", 1)[0] for name in threads} == {"export-copy"}
    assert len(set(threads)) == 2


@pytest.mark.django_db(transaction=True)
def test_copy_csv_on_two_connections_fails_as_a_whole_and_closes_its_connections(monkeypatch):
    """A COPY failing on a worker connection fails the export; no worker thread, spool or connection
    is left behind."""
    import threading

    import psycopg
    from django.db import connection

    from measurements.exports.copy_csv import CopyCsvRows

    qs = _copy_check_readings()
    groups = CopyCsvRows(qs, participants_per_copy=1)._participant_groups()
    real_sql = CopyCsvRows.sql

    def broken_for_the_third_group(self, group_qs):
        sql, params = real_sql(self, group_qs)
        if f"{groups[2][0]}" in str(group_qs.query):
            return sql.replace("trim_scale(t.systolic)", "1/0"), params  # division by zero in PostgreSQL
        return sql, params

    monkeypatch.setattr(CopyCsvRows, "sql", broken_for_the_third_group)

    def backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]

    before = backends()
    with pytest.raises(psycopg.errors.DivisionByZero):
        CopyCsvRows(qs, participants_per_copy=1).write_csv(io.BytesIO())
    assert not [t for t in threading.enumerate() if t.name.startswith("export-copy")]
    # A closed connection leaves pg_stat_activity a moment after the client hangs up (its backend
    # exits asynchronously, later still on a loaded machine); a leaked one never does.
    deadline = time.monotonic() + 10
    while backends() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backends() == before


def test_csv_through_copy_saves_progress_between_groups_of_participants(study_data, run, monkeypatch):
    from measurements.exports import copy_csv, services

    study, user = study_data
    monkeypatch.setattr(services, "PROGRESS_EVERY", 1)
    real_init = copy_csv.CopyCsvRows.__init__
    monkeypatch.setattr(
        copy_csv.CopyCsvRows,
        "__init__",
        lambda self, qs, **kw: real_init(self, qs, **{**kw, "participants_per_copy": 1}),
    )
    seen = []
    real_save = ExportJob.save

    def spy(self, *args, **kwargs):
        if kwargs.get("update_fields") == ["rows_done"]:
            seen.append(self.rows_done)
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(ExportJob, "save", spy)
    job = run(study, user, "csv")
    per_participant = [
        BloodPressureReading.objects.filter(participant=p, duplicate_of__isnull=True).count()
        for p in Participant.objects.filter(study=study).order_by("code")
    ]
    running = [sum(per_participant[: i + 1]) for i in range(len(per_participant)) if per_participant[i]]
    assert seen == running
    assert job.rows_done == job.rows_total == running[-1]
