"""The export right of a role: set in the staff-role admin, audited, and what the export service obeys."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cohorts.models import AuditEvent, ExportRights, Role, StudyMembership
from measurements.exports.services import deidentified_only
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_coordinator_limits_a_data_manager_to_deidentified_and_it_is_audited(client):
    coordinator = MembershipFactory(role=Role.COORDINATOR)
    manager = MembershipFactory(study=coordinator.study, role=Role.DATA_MANAGER)
    assert not deidentified_only(manager.user, manager.study)
    client.force_login(coordinator.user)
    response = client.post(
        reverse("admin:cohorts_studymembership_change", args=[manager.pk]),
        {"role": Role.DATA_MANAGER, "site": "", "export_rights": ExportRights.DEIDENTIFIED},
    )
    assert response.status_code == 302
    manager.refresh_from_db()
    assert manager.export_rights == ExportRights.DEIDENTIFIED
    assert deidentified_only(manager.user, manager.study)
    event = AuditEvent.objects.get(action="membership.changed")
    assert event.detail == {"export_rights": ["full", "deidentified"]}


def test_a_role_of_another_study_cannot_be_changed(client):
    coordinator = MembershipFactory(role=Role.COORDINATOR)
    elsewhere = MembershipFactory(role=Role.DATA_MANAGER)
    client.force_login(coordinator.user)
    client.post(
        reverse("admin:cohorts_studymembership_change", args=[elsewhere.pk]),
        {"role": Role.DATA_MANAGER, "site": "", "export_rights": ExportRights.DEIDENTIFIED},
    )
    assert StudyMembership.objects.get(pk=elsewhere.pk).export_rights == ExportRights.FULL
    assert not AuditEvent.objects.filter(action="membership.changed").exists()
