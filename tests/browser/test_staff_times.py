"""A coordinator opens a Berlin participant's page in a real browser: the readings taken around
midnight on both 2026 DST changes read as the participant read them, zone named."""

from __future__ import annotations

import datetime as dt

import pytest

from cohorts.models import Role
from tests.browser.conftest import staff_sign_in
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_participant_page_shows_the_participants_wall_clock(live_server, page, shot):
    membership = MembershipFactory(role=Role.COORDINATOR)
    participant = ParticipantFactory(study=membership.study, code="BER-001", timezone="Europe/Berlin")
    ReadingFactory(participant=participant, measured_at=dt.datetime(2026, 3, 28, 23, 30, tzinfo=dt.UTC))
    ReadingFactory(participant=participant, measured_at=dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC))
    staff_sign_in(page, live_server.url, membership.user.email)
    page.goto(f"{live_server.url}/admin/measurements/monitoredparticipant/{participant.pk}/change/")
    shot(page, "participant-page")

    rows = page.locator("table:has(th:text-is('Time (Europe/Berlin)')) tbody tr")
    assert rows.nth(0).locator("td").first.inner_text() == "2026-10-25 02:30 CET"
    assert rows.nth(1).locator("td").first.inner_text() == "2026-03-29 00:30 CET"
    assert rows.nth(1).locator("time").get_attribute("title") == "Europe/Berlin"
    assert "Time zone Europe/Berlin" in page.inner_text("#content-main")
