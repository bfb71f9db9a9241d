"""Guideline profiles (`measurements.guidelines`): each profile's categories at its thresholds, the
SQL form equal to the Python one, and a study switched from ESH 2023 to ACC/AHA 2017 changing its
categories and home threshold on the pages and in the export, whose manifest names the profile."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.urls import reverse
from django.utils.timezone import now
from fhir.resources.R4B.observation import Observation

from cohorts.models import Role
from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_job_create
from measurements.guidelines import PROFILES
from measurements.models import StudyProtocol
from measurements.monitoring.services import protocol_save
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, StudyFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("key", "cases"),
    [
        ("acc_aha_2017", [((119, 79), "normal"), ((120, 79), "elevated"), ((129, 79), "elevated"),
                          ((119, 80), "stage_1"), ((139, 89), "stage_1"), ((140, 70), "stage_2"),
                          ((130, 90), "stage_2"), ((180, 120), "stage_2"), ((181, 80), "crisis"),
                          ((150, Decimal("120.5")), "crisis")]),
        ("acc_aha_2025", [((181, 80), "severe"), ((180, 119), "stage_2")]),
        ("esh_2023", [((119, 79), "optimal"), ((120, 60), "normal"), ((110, 84), "normal"),
                      ((110, 85), "high_normal"), ((139, 70), "high_normal"), ((140, 70), "grade_1"),
                      ((159, 99), "grade_1"), ((120, 100), "grade_2"), ((179, 60), "grade_2"),
                      ((180, 60), "grade_3"), ((120, 110), "grade_3")]),
        ("esc_2024", [((119, 69), "non_elevated"), ((119, 70), "elevated"), ((139, 89), "elevated"),
                      ((140, 60), "hypertension"), ((100, 90), "hypertension")]),
    ],
)  # fmt: skip
def test_categories_at_the_thresholds(key, cases):
    profile = PROFILES[key]
    assert [profile.category(Decimal(s), Decimal(d)) for (s, d), _ in cases] == [c for _, c in cases]


def test_home_thresholds():
    assert {k: (g.home_systolic, g.home_diastolic) for k, g in PROFILES.items()} == {
        "acc_aha_2017": (130, 80),
        "acc_aha_2025": (130, 80),
        "esh_2023": (135, 85),
        "esc_2024": (135, 85),
    }


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL form runs on PostgreSQL")
def test_the_sql_form_gives_the_python_category():
    values = [Decimal(v) for v in ("60", "69.99", "70", "79", "80", "84.5", "85", "89", "90", "99", "100",
                                   "110", "119.99", "120", "120.01", "129", "130", "135", "140", "160",
                                   "179.99", "180", "180.01", "200")]  # fmt: skip
    pairs = [(s, d) for s in values for d in values]
    rows = ", ".join(f"({s}::numeric, {d}::numeric)" for s, d in pairs)
    for profile in PROFILES.values():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {profile.category_sql('v.s', 'v.d')} FROM (VALUES {rows}) AS v(s, d)")
            got = [row[0] for row in cursor.fetchall()]
        assert got == [profile.category(s, d) for s, d in pairs], profile.key


@pytest.fixture
def esh_study(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    study = StudyFactory(slug="switch", start_date=now().date() - dt.timedelta(days=20))
    protocol = protocol_save(
        actor=None, protocol=StudyProtocol(study=study, duration_days=None, guideline="esh_2023")
    )
    participant = ParticipantFactory(study=study, code="S-1", start_date=now().date() - dt.timedelta(days=10))
    at = (now() - dt.timedelta(hours=2)).replace(microsecond=0)
    ReadingFactory(participant=participant, measured_at=at, systolic=132, diastolic=82, pulse=70)
    return study, protocol, participant


def _pages(client, study, participant) -> tuple[str, str]:
    page = client.get(reverse("admin:measurements_monitoredparticipant_change", args=[participant.pk]))
    study_page = client.get(reverse("admin:measurements_monitoring_study", args=[study.slug]))
    return page.content.decode(), study_page.content.decode()


def _export(study, fmt: str, django_capture_on_commit_callbacks) -> zipfile.ZipFile:
    user = MembershipFactory(study=study, role="data_manager").user
    with django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(actor=user, study=study, fmt=fmt, filters=ExportFilters())
    job.refresh_from_db()
    return zipfile.ZipFile(django_settings.MEDIA_ROOT / job.file)


def test_switching_esh_to_acc_aha_changes_categories_threshold_and_manifest(
    client, esh_study, django_capture_on_commit_callbacks
):
    study, protocol, participant = esh_study
    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR).user)
    # 132/82 under ESH 2023: systolic 130–139 → high normal (diastolic 80–84 is only "normal").
    page, study_page = _pages(client, study, participant)
    assert '<span class="bp-cat bp-high_normal">High normal</span>' in page
    assert "ESH 2023 home threshold 135/85 mmHg" in page
    assert "Readings by ESH 2023 category" in study_page
    assert 'bp-high_normal">High normal</span> <strong>1</strong>' in study_page
    with _export(study, "csv", django_capture_on_commit_callbacks) as archive:
        row = next(csv.DictReader(io.StringIO(archive.read("readings.csv").decode())))
        manifest = json.loads(archive.read("manifest.json"))
    assert (row["acc_aha_category"], row["guideline_category"]) == ("stage_1", "high_normal")
    assert (manifest["guideline"]["key"], manifest["guideline"]["version"]) == ("esh_2023", "2023")
    assert manifest["guideline"]["home_threshold_mmhg"] == "135/85"

    protocol.guideline = "acc_aha_2017"
    protocol_save(actor=None, protocol=protocol, changed=["guideline"])
    stored = StudyProtocol.objects.get(study=study)
    assert (stored.home_systolic_threshold, stored.home_diastolic_threshold) == (130, 80)
    page, study_page = _pages(client, study, participant)
    assert '<span class="bp-cat bp-stage_1">Stage 1</span>' in page  # 132 ≥ 130, 82 ≥ 80
    assert "high_normal" not in page
    assert "ACC/AHA 2017 home threshold 130/80 mmHg" in page
    assert 'bp-stage_1">Stage 1</span> <strong>1</strong>' in study_page
    with _export(study, "csv", django_capture_on_commit_callbacks) as archive:
        row = next(csv.DictReader(io.StringIO(archive.read("readings.csv").decode())))
        manifest = json.loads(archive.read("manifest.json"))
        dictionary = json.loads(archive.read("data_dictionary.json"))
    assert row["guideline_category"] == "stage_1"
    assert (manifest["guideline"]["key"], manifest["guideline"]["version"]) == ("acc_aha_2017", "2017")
    entry = next(d for d in dictionary if d["name"] == "guideline_category")
    assert "esh_2023 (ESH 2023)" in entry["meaning"]
    assert "high_normal" in entry["allowed_values"]


def test_fhir_interpretation_names_the_guideline_and_validates(esh_study, django_capture_on_commit_callbacks):
    study, _protocol, _participant = esh_study
    with _export(study, "fhir", django_capture_on_commit_callbacks) as archive:
        resources = [json.loads(line) for line in archive.read("observations.ndjson").decode().splitlines()]
    bp = resources[0]
    Observation.model_validate(bp)
    assert bp["interpretation"] == [{"text": "ACC/AHA 2017: stage_1"}, {"text": "ESH 2023: High normal"}]
