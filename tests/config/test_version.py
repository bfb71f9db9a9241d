"""The running release is shown in /healthz/ and written into every export manifest."""

from __future__ import annotations

import json
import tomllib
import zipfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_job_create, export_job_run
from tests.factories import MembershipFactory, ReadingFactory, StudyFactory

pytestmark = pytest.mark.django_db


def test_the_version_defaults_to_pyproject_s():
    with (Path(django_settings.BASE_DIR) / "pyproject.toml").open("rb") as fh:
        assert tomllib.load(fh)["project"]["version"] == django_settings.PORTAL_VERSION


def test_healthz_shows_the_version(client, settings):
    settings.PORTAL_VERSION = "2.3.4+git.abc1234"
    assert client.get("/healthz/").json()["version"] == "2.3.4+git.abc1234"


def test_every_export_manifest_names_the_version(settings, tmp_path):
    from cohorts.models import Role

    settings.MEDIA_ROOT = tmp_path
    settings.PORTAL_VERSION = "2.3.4+git.abc1234"
    study = StudyFactory()
    ReadingFactory(participant__study=study)
    manager = MembershipFactory(study=study, role=Role.DATA_MANAGER).user
    for fmt in ("csv", "fhir"):
        job = export_job_create(actor=manager, study=study, fmt=fmt, filters=ExportFilters(), run=False)
        export_job_run(job_id=job.pk)
        job.refresh_from_db()
        with zipfile.ZipFile(tmp_path / job.file) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        assert manifest["version"] == "2.3.4+git.abc1234", fmt
