"""Average home BP per participant and protocol period (ESH: 7 days, day 1 discarded, ≥ 12 readings):
on the participant page, in the package's home_bp_averages.csv, and in a FHIR package as the CardX
Average SMBP Observation (LOINC 96607-7, the number of readings averaged), which validates."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from fhir.resources.R4B.observation import Observation

from cohorts.models import Role
from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_job_create
from measurements.models import StudyProtocol
from measurements.monitoring.adherence import adherence_rebuild_participant
from measurements.monitoring.services import protocol_save
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, StudyFactory

pytestmark = pytest.mark.django_db
START = dt.date(2024, 3, 1)


def at(day: int, hour: int) -> dt.datetime:
    """Protocol day `day` (1 = START) at `hour`, UTC (the participant's zone)."""
    return dt.datetime.combine(START + dt.timedelta(days=day - 1), dt.time(hour), tzinfo=dt.UTC)


@pytest.fixture
def esh(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    study = StudyFactory(slug="esh", start_date=START)
    protocol_save(
        actor=None,
        protocol=StudyProtocol(
            study=study, guideline="esh_2023", duration_days=7, discard_first_day=True, min_valid_readings=12
        ),
    )
    participant = ParticipantFactory(study=study, code="E-1", timezone="UTC", start_date=START)
    ReadingFactory(participant=participant, measured_at=at(1, 8), systolic=180, diastolic=100)  # day 1
    ReadingFactory(participant=participant, measured_at=at(1, 19), systolic=180, diastolic=100)  # day 1
    systolic = iter(range(130, 142))  # 130 … 141: twelve readings, mean 135.5
    for day in range(2, 8):
        for hour in (8, 19):  # morning and evening windows
            ReadingFactory(
                participant=participant, measured_at=at(day, hour), systolic=next(systolic), diastolic=80
            )
    ReadingFactory(participant=participant, measured_at=at(3, 9), systolic=161, diastolic=1)  # implausible
    ReadingFactory(participant=participant, measured_at=at(8, 8), systolic=200, diastolic=100)  # after day 7
    adherence_rebuild_participant(participant_id=participant.pk, today=dt.date(2024, 3, 10))
    return study, participant


def _package(study, fmt, django_capture_on_commit_callbacks) -> zipfile.ZipFile:
    user = MembershipFactory(study=study, role="data_manager").user
    with django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(actor=user, study=study, fmt=fmt, filters=ExportFilters())
    job.refresh_from_db()
    return zipfile.ZipFile(django_settings.MEDIA_ROOT / job.file)


def test_average_in_the_csv_package_and_on_the_page(client, esh, django_capture_on_commit_callbacks):
    study, participant = esh
    with _package(study, "csv", django_capture_on_commit_callbacks) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("home_bp_averages.csv").decode())))
        assert "average_home_bp.ndjson" not in archive.namelist()
    # Days 2–7 only, plausible only: (130 + … + 141) / 12 = 1626 / 12 = 135.5; diastolic 80.
    assert rows == [
        {
            "study": "esh", "participant": "E-1", "period_start": "2024-03-01", "period_end": "2024-03-07",
            "reading_count": "12", "systolic_mean_mmhg": "135.5", "diastolic_mean_mmhg": "80",
            "valid": "true", "above_home_threshold": "true",  # ESH home threshold 135/85: 135.5 ≥ 135
        }
    ]  # fmt: skip
    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR).user)
    page = client.get(reverse("admin:measurements_monitoredparticipant_change", args=[participant.pk]))
    html = page.content.decode()
    assert "Average home BP of the protocol period 2024-03-01 to 2024-03-07" in html
    assert "12 readings, day 1 discarded" in html
    assert "ESH 2023 home threshold 135/85 mmHg" in html


def test_fhir_package_has_the_cardx_average_observation(esh, django_capture_on_commit_callbacks):
    study, _participant = esh
    with _package(study, "fhir", django_capture_on_commit_callbacks) as archive:
        lines = archive.read("average_home_bp.ndjson").decode().splitlines()
        manifest = json.loads(archive.read("manifest.json"))
    assert len(lines) == 1
    resource = json.loads(lines[0])
    observation = Observation.model_validate(resource)  # raises on any invalid element
    assert observation.code.coding[0].code == "96607-7"
    assert resource["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/cardx-htn-mng/StructureDefinition/average-smbp"
    ]
    assert resource["extension"] == [
        {
            "url": "http://hl7.org/fhir/uv/cardx-htn-mng/StructureDefinition/NumberOfMeasurementsExt",
            "valueInteger": 12,
        }
    ]
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in resource["component"]}
    assert components["96608-5"]["value"] == 135.5
    assert components["96609-3"]["value"] == 80
    assert components["96608-5"]["code"] == "mm[Hg]"
    assert resource["effectivePeriod"] == {"start": "2024-03-01", "end": "2024-03-07"}
    assert resource["subject"]["reference"] == "Patient/esh-E-1"
    assert next(f for f in manifest["files"] if f["name"] == "average_home_bp.ndjson")["rows"] == 1


def test_too_few_readings_is_not_a_valid_average(esh, django_capture_on_commit_callbacks):
    study, _participant = esh
    protocol = StudyProtocol.objects.get(study=study)
    protocol.min_valid_readings = 13
    protocol_save(actor=None, protocol=protocol, changed=["min_valid_readings"])
    with _package(study, "fhir", django_capture_on_commit_callbacks) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("home_bp_averages.csv").decode())))
        assert archive.read("average_home_bp.ndjson") == b""
    assert (rows[0]["reading_count"], rows[0]["valid"], rows[0]["above_home_threshold"]) == (
        "12",
        "false",
        "",
    )
    assert Decimal(rows[0]["systolic_mean_mmhg"]) == Decimal("135.5")
