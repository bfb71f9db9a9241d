"""A coordinator changes the protocol's readings per window in a real browser: the impact is shown
and nothing changes until they tick Apply; then the past keeps its expected readings."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils.timezone import now

from cohorts.models import Role
from measurements.models import DailyAdherence, StudyProtocol, StudyProtocolVersion
from measurements.monitoring.adherence import adherence_rebuild_participant
from tests.browser.conftest import staff_sign_in
from tests.factories import MembershipFactory, ParticipantFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_protocol_change_shows_its_impact_and_needs_confirmation(live_server, page, shot):
    membership = MembershipFactory(role=Role.COORDINATOR, study__default_timezone="UTC")
    study = membership.study
    protocol = StudyProtocol.objects.create(study=study, duration_days=None)
    today = now().date()
    participant = ParticipantFactory(study=study, timezone="UTC", start_date=today - dt.timedelta(days=10))
    adherence_rebuild_participant(participant_id=participant.pk)
    staff_sign_in(page, live_server.url, membership.user.email)

    page.goto(f"{live_server.url}/admin/measurements/studyprotocol/{protocol.pk}/change/")
    page.fill("input[name=readings_per_window]", "3")
    page.fill("input[name=effective_from]", (today - dt.timedelta(days=1)).isoformat())
    page.click("input[name=_save]")
    impact = page.locator("#protocol-impact")
    impact.wait_for()
    shot(page, "impact")
    assert impact.locator("[data-impact=days]").inner_text() == "2"  # yesterday and today
    assert impact.locator("[data-impact=before]").inner_text() == "8"
    assert impact.locator("[data-impact=after]").inner_text() == "12"
    assert StudyProtocol.objects.get(pk=protocol.pk).readings_per_window == 2

    page.check("input[name=confirm]")
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/measurements/studyprotocol/")
    shot(page, "saved")
    assert StudyProtocolVersion.objects.filter(study=study).count() == 2
    expected = dict(DailyAdherence.objects.filter(participant=participant).values_list("day", "expected"))
    assert expected[today - dt.timedelta(days=2)] == 4
    assert expected[today - dt.timedelta(days=1)] == 6
