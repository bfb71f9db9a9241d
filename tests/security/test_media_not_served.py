"""Export packages (and staged CSV uploads) live under MEDIA_ROOT; nothing serves them as media, not
even the dev server of `make run` (DEBUG on). They leave only through the audited download view."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from django.contrib import admin
from django.urls import reverse

import config.urls
from cohorts.models import AuditEvent, Role
from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_job_create, export_job_run
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory

pytestmark = pytest.mark.django_db
DEV_URLCONF = "tests_security_dev_urls"


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def dev_urls(settings, media_root):
    """The project's URL conf as the dev server loads it (config.settings.local: DEBUG on)."""
    settings.DEBUG = True
    login = admin.site.login
    spec = importlib.util.spec_from_file_location(DEV_URLCONF, Path(config.urls.__file__))
    module = importlib.util.module_from_spec(spec)
    sys.modules[DEV_URLCONF] = module
    try:
        spec.loader.exec_module(module)
        settings.ROOT_URLCONF = DEV_URLCONF
        yield
    finally:
        admin.site.login = login
        sys.modules.pop(DEV_URLCONF, None)


@pytest.fixture
def package(media_root):
    data_manager = MembershipFactory(role=Role.DATA_MANAGER).user
    ReadingFactory(participant=ParticipantFactory(study=data_manager.memberships.get().study))
    job = export_job_create(
        actor=data_manager,
        study=data_manager.memberships.get().study,
        fmt="csv",
        filters=ExportFilters(),
        run=False,
    )
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    path = media_root / job.file
    assert job.file == f"exports/{job.study.slug}/{job.uuid}.zip"
    assert path.is_file()
    return job, data_manager, path


def test_export_packages_are_not_served_as_media_in_the_dev_server(dev_urls, media_root, package, client):
    job, data_manager, path = package
    staged = media_root / "import-staging" / "0123abcd.upload"
    staged.parent.mkdir(parents=True)
    staged.write_text("Date,SYS,DIA\n")
    for url in (f"/media/{job.file}", "/media/import-staging/0123abcd.upload"):
        assert client.get(url).status_code == 404
    client.force_login(data_manager)
    assert client.get(f"/media/{job.file}").status_code == 404
    assert not AuditEvent.objects.filter(action="export.downloaded").exists()

    response = client.get(reverse("admin:measurements_exportjob_download", args=[job.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == path.read_bytes()
    event = AuditEvent.objects.get(action="export.downloaded")
    assert (event.actor, event.detail["sha256"]) == (data_manager, job.sha256)
