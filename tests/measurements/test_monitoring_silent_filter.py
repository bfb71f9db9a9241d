"""The monitoring list's "no reading for N days" filter takes any value without an error page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils.timezone import now

from cohorts.models import Role
from measurements.monitoring.filters import NoReadingForFilter
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:measurements_monitoredparticipant_changelist"


@pytest.fixture
def listed(client):
    coordinator = MembershipFactory(role=Role.COORDINATOR)
    study = coordinator.study
    ParticipantFactory(study=study, code="NEVER")
    ReadingFactory(
        participant=ParticipantFactory(study=study, code="LONG-AGO"),
        measured_at=now() - dt.timedelta(days=40),
    )
    ReadingFactory(participant=ParticipantFactory(study=study, code="TODAY"), measured_at=now())
    client.force_login(coordinator.user)

    def codes(silent: str) -> set[str]:
        response = client.get(reverse(CHANGELIST), {"silent": silent})
        assert response.status_code == 200
        html = response.content.decode()
        return {code for code in ("NEVER", "LONG-AGO", "TODAY") if f">{code}<" in html}

    return codes


@pytest.mark.parametrize("silent", ["99999999999999999999", "9" * 5000, "3651", "1000000"])
def test_a_huge_number_of_days_means_longer_than_any_study(listed, silent):
    assert listed(silent) == {"NEVER"}


def test_ordinary_values_still_filter(listed):
    assert listed("14") == {"NEVER", "LONG-AGO"}
    assert listed(str(NoReadingForFilter.MAX_DAYS)) == {"NEVER"}


@pytest.mark.parametrize("silent", ["²", "-3", "3.5", "x"])
def test_a_value_that_is_not_a_number_of_days_filters_nothing(listed, silent):
    assert listed(silent) == {"NEVER", "LONG-AGO", "TODAY"}
