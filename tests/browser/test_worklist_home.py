"""A coordinator signs in at a laptop's 1366×900 and lands on the worklist, most urgent first: the
crisis past its deadline, the crisis, the crisis acknowledged today, then link broken, no data, below
target and the rest — each BP row with its value, its age and the participant's zone; the
Acknowledge button in view; no horizontal scrolling; axe-core finds nothing serious."""

from __future__ import annotations

import pytest

from cohorts.models import Role
from tests.browser.test_accessibility import violations
from tests.cohorts.test_staff_signin import current_code
from tests.factories import STAFF_PASSWORD, MembershipFactory, SiteFactory, StudyFactory
from tests.measurements.test_worklist_urgent import CLASSES, ladder

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_coordinator_home_is_the_worklist_most_urgent_first(live_server, laptop_page, shot):
    study = StudyFactory(slug="ladder", name="Ladder study", default_timezone="Europe/Paris")
    membership = MembershipFactory(study=study, role=Role.COORDINATOR)
    ladder(study, SiteFactory(study=study, code="north"), "N", acknowledger=membership.user)
    ladder(StudyFactory(slug="other"), None, "X")  # another study's alerts never show

    page = laptop_page
    page.goto(f"{live_server.url}/admin/")
    page.fill("input[name=login]", membership.user.email)
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/2fa/authenticate/**")
    page.fill("input[name=code]", current_code())
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    shot(page, "worklist-home")

    rows = page.locator("#home-worklist + table.worklist-table tbody tr")
    codes = [rows.nth(i).locator("td").nth(1).locator("a").first.inner_text() for i in range(rows.count())]
    assert codes == [f"N-{c}" for c in CLASSES]
    labels = [rows.nth(i).locator(".sev-badge").inner_text() for i in range(rows.count())]
    assert labels[:3] == ["Crisis, past deadline", "Crisis", "Crisis, acknowledged"]

    first = rows.nth(0)
    assert "186/124 mmHg" in first.inner_text()
    assert "opened 6 h ago" in first.inner_text()
    assert "America/Chicago" in first.inner_text()
    button = first.locator("a.button", has_text="Acknowledge")
    assert button.is_visible()
    box = button.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= 1366
    assert "Acknowledged by" in rows.nth(2).inner_text()
    assert "X-" not in page.inner_text("body")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    assert violations(page) == []

    button.click()
    page.wait_for_url("**/acknowledge/**")
    # The outcome is a required radio (the browser asks for it first); the note is checked by the server.
    page.check("input[name=outcome][value=contacted]")
    page.click("input[type=submit][value=Acknowledge]")
    assert "Write what was done before acknowledging a crisis reading" in page.inner_text("body")
    shot(page, "note-required")
    page.fill("textarea[name=note]", "Called; advised to see the GP today.")
    page.click("input[type=submit][value=Acknowledge]")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert "Alert for N-OVERDUE acknowledged." in page.inner_text("body")
    codes = [rows.nth(i).locator("td").nth(1).locator("a").first.inner_text() for i in range(rows.count())]
    assert codes[:3] == ["N-CRISIS", "N-OVERDUE", "N-ACKED"]  # acknowledged today: stays, marked
    assert "Acknowledged by" in rows.nth(1).inner_text()
    assert rows.nth(1).locator(".sev-badge").inner_text() == "Crisis, acknowledged"

    page.goto(f"{live_server.url}/admin/measurements/alert/")
    shot(page, "alerts-list")
    first_row = page.locator("#result_list tbody tr").first
    assert "N-CRISIS" in first_row.inner_text()
    assert first_row.locator("a.button", has_text="Acknowledge").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366

    page.locator("#result_list tbody tr", has_text="N-OVERDUE").locator("a", has_text="crisis").click()
    page.wait_for_url("**/change/")
    page.fill("textarea[name=text]", "GP saw them this afternoon: 150/95 on repeat.")
    page.click("input[type=submit][value='Add the note']")
    thread = page.locator("ol.alert-notes li")
    assert thread.count() == 2
    assert "Called; advised to see the GP today." in thread.nth(0).inner_text()
    assert "GP saw them this afternoon" in thread.nth(1).inner_text()
    assert "186/124 mmHg" in page.inner_text("#content-main")
    shot(page, "alert-page")
    assert violations(page) == []
