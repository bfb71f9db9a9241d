"""No consent, no data: a participant without a consent record, or who withdrew (whatever they chose
for their readings), gets no reading stored by any path — the CSV import (service, admin page,
command) and the API page store here, the sync and the back-fill in
tests/withings/test_sync_needs_consent.py. Each says why and stores nothing."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse

from cohorts import enrollment
from cohorts.enrollment import CollectionRefused, participant_collection_refusal
from cohorts.models import AuditEvent, Participant, Role
from measurements.imports.archive import ImportFileError
from measurements.imports.services import withings_csv_import, withings_csv_plan
from measurements.models import BloodPressureReading
from measurements.readings.store import readings_store_api_page
from tests.factories import MembershipFactory, ParticipantFactory, record_consent
from withings.sandbox import bp_group

pytestmark = pytest.mark.django_db
CSV = b'Date,"Heart rate",Systolic,Diastolic,Comments\n"2024-05-01 07:00:00",70,130,85,\n'
NO_CONSENT = "has not given consent: no readings are stored."
WITHDRAWN = "has withdrawn from the study: no readings are stored."


def never_consented() -> Participant:
    return ParticipantFactory(status=Participant.Status.INVITED, code="NO-CONSENT")


def status_set_by_hand() -> Participant:
    """A coordinator set the status in the admin; the participant never signed anything."""
    return ParticipantFactory(status=Participant.Status.ACTIVE, consented=False, code="BY-HAND")


def withdrew_asking_deletion() -> Participant:
    participant = ParticipantFactory(status=Participant.Status.WITHDRAWN, consented=False, code="GONE-DEL")
    record_consent(participant, keep_data_on_withdrawal=False)
    return participant


def withdrew_keeping_data() -> Participant:
    return ParticipantFactory(status=Participant.Status.WITHDRAWN, code="GONE-KEEP")


REFUSED = {
    "never consented": (never_consented, NO_CONSENT),
    "status set by hand": (status_set_by_hand, NO_CONSENT),
    "withdrew, delete": (withdrew_asking_deletion, WITHDRAWN),
    "withdrew, keep": (withdrew_keeping_data, WITHDRAWN),
}
CASES = pytest.mark.parametrize(("make", "reason"), REFUSED.values(), ids=REFUSED.keys())


def nothing_stored() -> None:
    assert not BloodPressureReading.objects.exists()
    assert not AuditEvent.objects.filter(action="import.withings_csv").exists()


def test_a_consented_participant_is_accepted():
    assert participant_collection_refusal(ParticipantFactory()) is None
    assert withings_csv_import(actor=None, participant=ParticipantFactory(), data=CSV).imported == 1


@CASES
def test_csv_import_service_refuses(make, reason):
    participant = make()
    for attempt in (
        lambda: withings_csv_plan(participant=participant, data=CSV),
        lambda: withings_csv_import(actor=None, participant=participant, data=CSV),
    ):
        with pytest.raises(ImportFileError) as refused:
            attempt()
        assert refused.value.messages == [f"Participant {participant.code} {reason}"]
    nothing_stored()


@CASES
def test_csv_import_command_refuses(make, reason, tmp_path):
    participant = make()
    path = tmp_path / "bp.csv"
    path.write_bytes(CSV)
    with pytest.raises(CommandError) as refused:
        call_command("import_withings_export", participant.study.slug, participant.code, str(path))
    assert str(refused.value) == f"Nothing imported. Participant {participant.code} {reason}"
    nothing_stored()


@CASES
def test_csv_import_admin_page_refuses(make, reason, client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    participant = make()
    client.force_login(MembershipFactory(study=participant.study, role=Role.COORDINATOR).user)
    url = reverse("admin:measurements_withingscsvimport_import", args=[participant.pk])
    response = client.post(url, {"file": SimpleUploadedFile("bp.csv", CSV), "timezone": ""})
    assert response.status_code == 200
    assert f"Participant {participant.code} {reason}" in response.content.decode()
    assert 'name="staged"' not in response.content.decode()  # no preview to confirm
    assert not list((tmp_path / "media").rglob("*.upload"))
    nothing_stored()


@CASES
def test_api_page_store_refuses(make, reason):
    participant = make()
    group = bp_group(131, 84, 66, date=int(time.time()) - 600, grpid=5001)
    group.update(created=group["date"], modified=group["date"], category=1)
    with pytest.raises(CollectionRefused, match=reason), transaction.atomic():  # the caller's page
        readings_store_api_page(participant_id=participant.pk, groups=[group], source_timezone="UTC")
    nothing_stored()


def test_no_link_without_consent_even_with_a_status_link(client):
    """A coordinator can issue a status link to anyone; it does not lead to linking without consent."""
    participant = never_consented()
    token = enrollment.participant_reissue_status_link(actor=None, participant=participant)
    response = client.post(reverse("participant_relink", args=[token]))
    assert response.status_code == 302
    assert response["Location"] == reverse("participant_status", args=[token])
    assert "enrollment_participant_id" not in client.session
    assert client.get(reverse("withings_connect")).status_code == 400
