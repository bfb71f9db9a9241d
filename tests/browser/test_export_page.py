"""The demo data manager exports at a laptop's 1366×900: ISO date inputs that say they are UTC days,
and the job's page shows the filters it was made with; axe-core finds nothing serious."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from measurements.models import ExportJob
from tests.browser.test_accessibility import violations
from tests.browser.test_staff_home import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_data_manager_exports_with_iso_utc_dates_and_sees_the_filters(
    live_server, laptop_page, shot, settings, tmp_path
):
    settings.DEBUG = True  # seed_demo refuses otherwise
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", verbosity=0)
    page = laptop_page
    page.set_default_timeout(45000)  # the export runs in the live server's request (eager Celery)
    sign_in(page, live_server.url, "datamanager@demo.example")
    page.goto(f"{live_server.url}/admin/measurements/exportjob/study/demo/")
    shot(page, "export-form")
    since = page.locator("input[name=since]")
    assert since.get_attribute("type") == "text"
    assert since.get_attribute("placeholder") == "YYYY-MM-DD"
    assert page.get_by_label("From (YYYY-MM-DD, UTC)").count() == 1
    assert "whole days in UTC" in page.inner_text("body")
    assert violations(page) == []

    page.fill("input[name=since]", "1.3.2026")  # a locale format: refused, said how to write it
    page.click("input[type=submit]")
    assert "Enter the date as YYYY-MM-DD" in page.inner_text("body")
    assert not ExportJob.objects.exists()

    page.check("input[name=format][value=xlsx]")
    page.fill("input[name=since]", "2020-01-01")
    page.fill("input[name=until]", "2030-12-31")
    page.click("input[type=submit]")
    page.wait_for_url("**/progress/**")
    page.locator("#export-download").wait_for()
    shot(page, "export-progress")
    filters = page.locator("dl.export-filters").inner_text()
    assert "XLSX (Excel)" in filters
    assert "2020-01-01 to 2030-12-31 inclusive, whole days in UTC" in filters
    job = ExportJob.objects.get()
    assert (job.format, job.filters["since"], job.filters["until"]) == ("xlsx", "2020-01-01", "2030-12-31")
    assert violations(page) == []
