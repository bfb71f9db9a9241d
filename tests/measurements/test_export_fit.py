"""Exports as data managers use them: XLSX date-time cells and a frozen header, ISO dates in UTC
on the form and the command alike, and the filters shown on the job's page."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from openpyxl import load_workbook

from cohorts.models import AuditEvent, Role
from measurements.exports.columns import COLUMN_NAMES
from measurements.exports.package import dictionary_json
from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_job_create
from measurements.exports.writers import XLSX_DATETIME_FORMAT
from measurements.models import ExportJob
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, SiteFactory, StudyFactory

pytestmark = pytest.mark.django_db


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.fixture
def world(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    study = StudyFactory(slug="fit", default_timezone="Europe/Paris")
    north = SiteFactory(study=study, code="north", name="North clinic")
    paris = ParticipantFactory(study=study, site=north, code="P-PARIS", timezone="Europe/Paris")
    nyc = ParticipantFactory(study=study, site=north, code="P-NYC", timezone="America/New_York")
    # 23:30 UTC on 1 July is 01:30 on 2 July in Paris: the UTC day decides.
    ReadingFactory(participant=paris, measured_at=utc(2024, 7, 1, 23, 30, 0), systolic=Decimal("121"))
    ReadingFactory(participant=paris, measured_at=utc(2024, 7, 2, 6, 0, 0))
    ReadingFactory(participant=nyc, measured_at=utc(2024, 1, 15, 3, 4, 5))
    user = MembershipFactory(study=study, role=Role.DATA_MANAGER).user
    return study, user


def _job(study, user, fmt, django_capture_on_commit_callbacks, **filters) -> ExportJob:
    with django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(actor=user, study=study, fmt=fmt, filters=ExportFilters(**filters))
    job.refresh_from_db()
    assert job.status == ExportJob.Status.DONE, job.error
    return job


def _archive(job) -> zipfile.ZipFile:
    return zipfile.ZipFile(settings.MEDIA_ROOT / job.file)


def test_xlsx_times_are_date_time_cells_and_the_header_is_frozen(world, django_capture_on_commit_callbacks):
    job = _job(*world, "xlsx", django_capture_on_commit_callbacks)
    with _archive(job) as archive:
        data = archive.read("readings.xlsx")
    workbook = load_workbook(io.BytesIO(data))
    sheet = workbook["readings"]
    assert sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == list(COLUMN_NAMES)
    utc_col, local_col = COLUMN_NAMES.index("measured_at") + 1, COLUMN_NAMES.index("measured_at_local") + 1
    rows = {sheet.cell(row=r, column=3).value: r for r in range(2, sheet.max_row + 1)}
    nyc = rows["P-NYC"]
    measured, local = sheet.cell(row=nyc, column=utc_col), sheet.cell(row=nyc, column=local_col)
    for cell in (measured, local):
        assert cell.data_type == "d"  # openpyxl's reading of a number with a date format
        assert cell.is_date
        # In the file: an Excel serial number (t="n"), styled as a date-time — not a text cell.
        xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
        assert re.search(rf'<c r="{cell.coordinate}" s="\d+" t="n"><v>[\d.]+</v></c>', xml)
        assert cell.number_format == XLSX_DATETIME_FORMAT
    assert measured.value == dt.datetime(2024, 1, 15, 3, 4, 5)
    assert local.value == dt.datetime(2024, 1, 14, 22, 4, 5)  # New York, UTC-5 in January
    summer = [r for r in range(2, sheet.max_row + 1) if sheet.cell(row=r, column=3).value == "P-PARIS"]
    assert [sheet.cell(row=r, column=local_col).value for r in summer] == [
        dt.datetime(2024, 7, 2, 1, 30),
        dt.datetime(2024, 7, 2, 8, 0),
    ]
    assert sheet.column_dimensions["D"].width == sheet.column_dimensions["E"].width == 20
    assert sheet.cell(row=nyc, column=COLUMN_NAMES.index("systolic_mmhg") + 1).data_type == "n"


def test_the_dictionary_says_how_xlsx_carries_the_times():
    columns = {c["name"]: c for c in json.loads(dictionary_json())}
    assert "XLSX: date-time cell, UTC" in columns["measured_at"]["type"]
    assert "without the offset" in columns["measured_at_local"]["meaning"]
    assert "wall-clock" in columns["measured_at_local"]["type"]


def test_form_and_command_read_dates_as_the_same_utc_days(
    world, client, django_capture_on_commit_callbacks, tmp_path
):
    study, user = world
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:measurements_exportjob_study", args=[study.slug]),
            {"format": "json", "since": "2024-07-01", "until": "2024-07-01"},
        )
    assert response.status_code == 302
    job = ExportJob.objects.get()
    with _archive(job) as archive:
        from_form = [(r["participant"], r["measured_at"]) for r in json.loads(archive.read("readings.json"))]
    assert from_form == [("P-PARIS", "2024-07-01T23:30:00Z")]
    output = tmp_path / "cli.zip"
    out = io.StringIO()
    call_command(
        "export_study", study.slug, "--format", "json", "--output", str(output),
        "--since", "2024-07-01", "--until", "2024-07-01", stdout=out,
    )  # fmt: skip
    with zipfile.ZipFile(output) as archive:
        from_command = [
            (r["participant"], r["measured_at"]) for r in json.loads(archive.read("readings.json"))
        ]
    assert from_command == from_form
    with zipfile.ZipFile(output) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["filters"]["dates"] == (
        "whole days in UTC (00:00 to 24:00 UTC, as in measured_at), both ends included"
    )
    assert "dates: 2024-07-01 to 2024-07-01 inclusive, whole days in UTC" in out.getvalue()


def test_form_shows_iso_text_inputs_labelled_utc_and_names_the_study_zone(world, client):
    study, user = world
    client.force_login(user)
    html = client.get(reverse("admin:measurements_exportjob_study", args=[study.slug])).content.decode()
    assert 'name="since"' in html
    assert 'type="date"' not in html  # the browser's picker would show a locale format
    assert html.count('placeholder="YYYY-MM-DD"') == 2
    assert "From (YYYY-MM-DD, UTC)" in html
    assert "Until (YYYY-MM-DD, UTC, inclusive)" in html
    assert "whole days in UTC" in html
    assert "not days in the study&#x27;s zone (Europe/Paris)" in html


@pytest.mark.parametrize("typed", ["01/07/2024", "07/01/2024", "1 July 2024", "2024-13-01"])
def test_a_locale_or_impossible_date_is_refused_and_nothing_is_created(world, client, typed):
    study, user = world
    client.force_login(user)
    response = client.post(
        reverse("admin:measurements_exportjob_study", args=[study.slug]), {"format": "csv", "since": typed}
    )
    assert response.status_code == 200
    assert "Enter the date as YYYY-MM-DD, for example 2026-03-01." in response.content.decode()
    assert not ExportJob.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="export.").exists()


def test_progress_page_shows_the_filters_the_export_was_made_with(world, client):
    study, user = world
    job = ExportJob.objects.create(
        study=study,
        requested_by=user,
        format="xlsx",
        filters=ExportFilters(
            since=dt.date(2024, 7, 1), until=dt.date(2024, 7, 31), sites=("north",), statuses=("active",)
        ).as_json(),
    )
    client.force_login(user)
    html = client.get(reverse("admin:measurements_exportjob_progress", args=[job.pk])).content.decode()
    assert "<dt>Format</dt><dd>XLSX (Excel)</dd>" in html
    assert "<dt>Dates</dt><dd>2024-07-01 to 2024-07-31 inclusive, whole days in UTC" in html
    assert "<dt>Sites</dt><dd>north</dd>" in html
    assert "<dt>Participant status</dt><dd>Active</dd>" in html


def test_progress_page_of_an_unfiltered_site_limited_export(world, client):
    study, _ = world
    north = study.sites.get(code="north")
    site_user = MembershipFactory(study=study, role=Role.DATA_MANAGER, site=north).user
    job = ExportJob.objects.create(study=study, requested_by=site_user, site=north, format="csv", filters={})
    client.force_login(site_user)
    html = client.get(reverse("admin:measurements_exportjob_progress", args=[job.pk])).content.decode()
    assert "<dt>Dates</dt><dd>all dates</dd>" in html
    assert (
        "<dt>Sites</dt><dd>north only (the requester&#x27;s role is limited to site North clinic)</dd>"
        in html
    )
    assert "<dt>Participant status</dt><dd>all</dd>" in html
