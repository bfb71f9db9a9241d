"""One `ReadOnlyTenantAdmin` for the rows services write: nobody adds, changes or deletes them in the
admin, superusers included; the study's staff still read them."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from cohorts.admin_base import ReadOnlyTenantAdmin
from cohorts.models import AuditEvent, ConsentRecord, Participant, Role
from measurements.models import Alert, MonitoredParticipant, WithingsCsvImport
from tests.factories import MembershipFactory, ParticipantFactory, UserFactory
from withings.models import WithingsConnection

pytestmark = pytest.mark.django_db
READ_ONLY = [AuditEvent, ConsentRecord, WithingsConnection, MonitoredParticipant, Alert, WithingsCsvImport]


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m._meta.model_name)
def test_nobody_adds_changes_or_deletes_what_services_write(model):
    model_admin = admin.site._registry[model]
    assert isinstance(model_admin, ReadOnlyTenantAdmin)
    participant = ParticipantFactory()
    coordinator = MembershipFactory(study=participant.study, role=Role.COORDINATOR).user
    for user in (UserFactory(is_superuser=True), coordinator):
        request = RequestFactory().get("/admin/")
        request.user = user
        assert model_admin.has_view_permission(request)
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request, participant)
        assert not model_admin.has_delete_permission(request, participant)


def test_a_superuser_cannot_delete_a_participant_from_the_csv_import_list(client):
    participant = ParticipantFactory()
    client.force_login(UserFactory(is_superuser=True))
    url = reverse("admin:measurements_withingscsvimport_delete", args=[participant.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    changelist = client.get(reverse("admin:measurements_withingscsvimport_changelist"))
    assert changelist.status_code == 200
    assert "delete_selected" not in changelist.content.decode()
    assert Participant.objects.filter(pk=participant.pk).exists()
