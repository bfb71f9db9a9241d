"""Staff pages at a laptop's 1366 px with the demo's data: the monitoring list shows every column
(battery, cuff sync, alerts) without scrolling sideways, and pages speak plain words — no raw
flag codes, no JSON, no "12 participant monitoring"."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from cohorts.models import AuditEvent, Participant
from measurements.models import BloodPressureReading
from tests.browser.test_staff_home import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_SIDEWAYS_SCROLL = """() => {
  const doc = document.scrollingElement;
  const results = document.querySelector('#changelist .results');
  return {page: doc.scrollWidth <= doc.clientWidth,
          table: results.scrollWidth <= results.clientWidth};
}"""


@pytest.fixture
def coordinator_page(live_server, laptop_page, settings):
    settings.DEBUG = True  # seed_demo refuses otherwise
    call_command("seed_demo", verbosity=0)
    sign_in(laptop_page, live_server.url, "coordinator@demo.example")
    return laptop_page


def test_monitoring_list_fits_a_laptop_and_says_plain_words(live_server, coordinator_page, shot):
    page = coordinator_page
    page.goto(f"{live_server.url}/admin/measurements/monitoredparticipant/")
    shot(page, "monitoring-list")
    assert page.evaluate(NO_SIDEWAYS_SCROLL) == {"page": True, "table": True}
    for column in ("battery", "cuff sync", "alerts"):
        header = page.locator("#result_list thead th", has_text=column).last
        box = header.bounding_box()
        assert box is not None, column
        assert box["x"] + box["width"] <= 1366, column
    # The demo's participant 6 has a low cuff battery: an icon and the word.
    low = page.locator(".battery-low").first
    assert low.inner_text().strip() == "Low"
    assert low.locator("svg[aria-hidden=true]").count() == 1
    body = page.inner_text("#content")
    participants = Participant.objects.filter(study__slug="demo").count()
    assert f"{participants} monitored participants" in body
    assert "participant monitoring" not in body.lower()


def test_participant_page_shows_flag_words_and_audit_details_as_text(live_server, coordinator_page, shot):
    page = coordinator_page
    participant = Participant.objects.get(study__slug="demo", code="DE-003")
    newest = BloodPressureReading.objects.filter(participant=participant).order_by("-measured_at").first()
    BloodPressureReading.objects.filter(pk=newest.pk).update(edited_upstream=True, manual_entry=True)
    page.goto(f"{live_server.url}/admin/measurements/monitoredparticipant/{participant.pk}/change/")
    shot(page, "participant")
    readings = page.locator("h2:text('Readings') + table").inner_text()
    assert "edited in Withings" in readings
    assert "entered by hand" in readings
    assert "edited_upstream" not in page.inner_text("body")
    assert "manual_entry" not in page.inner_text("body")
    # The chart's numbers are also a table, and the calendar marks each day with more than colour.
    assert (
        page.locator("svg.bp-chart[role=img]").get_attribute("aria-label").startswith("Blood pressure trend")
    )
    assert page.locator("details.chart-data table tbody tr").count() > 0
    full_day = page.locator("table.cal td.adh-full .adh-mark").first
    assert full_day.is_visible()
    assert full_day.inner_text() == "✓"

    event = AuditEvent.objects.filter(study__slug="demo").exclude(detail={}).first()
    page.goto(f"{live_server.url}/admin/cohorts/auditevent/{event.pk}/change/")
    shot(page, "audit-event")
    details = page.locator(".field-details .readonly").inner_text()
    assert "{" not in details
    assert '"' not in details
    key = next(iter(event.detail))
    assert key.replace("_", " ").capitalize() in details
    assert "Detail:" not in page.inner_text("#content")  # the raw JSON field is not shown
