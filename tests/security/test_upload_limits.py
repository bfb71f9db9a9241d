"""Oversized requests are refused cleanly (400, nothing written), never a 500 or a partial import."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from measurements.imports.archive import MAX_ARCHIVE_BYTES
from measurements.models import BloodPressureReading
from tests.factories import MembershipFactory, ParticipantFactory
from withings.models import Notification
from withings.services.notifications import notify_secret

pytestmark = pytest.mark.django_db


def test_an_oversized_form_post_is_refused_with_400(client):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 5 * 1024 * 1024
    body = "userid=123&junk=" + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = client.generic(
        "POST",
        reverse("withings_notify", args=[notify_secret()]),
        body,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert Notification.objects.count() == 0


def test_too_many_form_fields_are_refused_with_400(client):
    body = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = client.generic(
        "POST", reverse("enroll_consent"), body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400


def test_an_oversized_import_upload_is_refused_and_imports_nothing(client):
    participant = ParticipantFactory()
    client.force_login(MembershipFactory(study=participant.study).user)
    url = reverse("admin:measurements_withingscsvimport_import", args=[participant.pk])
    big = SimpleUploadedFile("bp.zip", b"\0" * (MAX_ARCHIVE_BYTES + 1), content_type="application/zip")
    response = client.post(url, {"file": big, "timezone": ""})
    assert response.status_code == 200
    assert "too large" in response.content.decode()
    assert not BloodPressureReading.objects.exists()
