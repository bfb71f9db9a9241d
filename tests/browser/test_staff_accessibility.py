"""axe-core on every staff page each demo role can open, at a laptop's 1366×900: no serious or
critical violation. The pages come from the admin's own URL patterns (tests/browser/staff_pages.py),
so a page added to the admin is checked here without editing this file."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from cohorts.models import Site, Study, User
from cohorts.scoping import scoped
from measurements.models import Alert, ExportJob
from tests.browser.staff_pages import staff_pages
from tests.browser.test_accessibility import violations
from tests.browser.test_staff_home import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Pages each role must reach (a URL name prefix): the sweep may never shrink to nothing unnoticed.
MUST_COVER = {
    "coordinator@demo.example": [
        "index", "models", "app_list", "measurements_monitoredparticipant_changelist",
        "measurements_monitoredparticipant_change", "measurements_monitoring_worklist",
        "measurements_monitoring_study", "measurements_alert_changelist", "measurements_alert_acknowledge",
        "cohorts_invitation_changelist", "cohorts_invitation_add", "cohorts_invitation_change",
        "measurements_studyprotocol_changelist", "measurements_studyprotocol_change",
        "measurements_withingscsvimport_changelist", "measurements_withingscsvimport_import",
        "cohorts_auditevent_changelist", "cohorts_participant_change", "cohorts_study_change",
        "cohorts_participant_import",
        "withings_withingsconnection_changelist",
    ],
    "north.coordinator@demo.example": [
        "index", "measurements_monitoredparticipant_changelist", "measurements_monitoredparticipant_change",
        "measurements_monitoring_worklist", "measurements_monitoring_study", "measurements_alert_acknowledge",
        "cohorts_invitation_add", "measurements_withingscsvimport_import", "cohorts_auditevent_changelist",
    ],
    "datamanager@demo.example": [
        "index", "measurements_monitoredparticipant_changelist", "measurements_monitoredparticipant_change",
        "measurements_monitoring_study", "measurements_exportjob_changelist", "measurements_exportjob_add",
        "measurements_exportjob_study", "measurements_exportjob_progress", "cohorts_auditevent_changelist",
    ],
}  # fmt: skip


def _page_states(page, base: str, user) -> dict[str, list]:
    """Pages in a state the sweep's first rows may not show: a form sent back with its errors, the
    acknowledgement form of an alert nobody acknowledged yet."""
    found = {}
    response = page.goto(f"{base}/admin/cohorts/invitation/add/")
    if response.status == 200:
        page.click("input[name=_save]")
        page.wait_for_load_state()
        found["cohorts_invitation_add (errors shown)"] = _report(page)
    alert = scoped(Alert.objects.filter(acknowledged_at=None), user).order_by("pk").first()
    if alert is not None and page.goto(f"{base}/admin/measurements/alert/{alert.pk}/acknowledge/").ok:
        found["measurements_alert_acknowledge (not yet acknowledged)"] = _report(page)
    return found


def _report(page) -> list[tuple[str, str, int]]:
    return [(v["id"], v["impact"], len(v["nodes"])) for v in violations(page)]


# The coordinator opens the most pages; the other two rounds (about as long each) are `slow`:
# `make test` runs all three, `make test-fast` the coordinator's.
ROLES = [
    pytest.param("coordinator@demo.example", id="coordinator"),
    pytest.param("north.coordinator@demo.example", id="site-coordinator", marks=pytest.mark.slow),
    pytest.param("datamanager@demo.example", id="data-manager", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("email", ROLES)
def test_every_staff_page_a_role_opens_has_no_serious_accessibility_violation(
    live_server, laptop_page, shot, settings, email
):
    settings.DEBUG = True  # seed_demo refuses otherwise
    call_command("seed_demo", verbosity=0)
    demo = Study.objects.get(slug="demo")
    # An export under way and an alert nobody acknowledged yet: the progress and acknowledgement pages.
    ExportJob.objects.create(
        study=demo, site=Site.objects.get(study=demo, code="north"), format="csv",
        status=ExportJob.Status.RUNNING, rows_total=100, rows_done=40,
    )  # fmt: skip
    assert Alert.objects.filter(study=demo, acknowledged_at=None).exists()
    user = User.objects.get(email=email)
    page = laptop_page
    sign_in(page, live_server.url, email)

    report, skipped = {}, {}
    for name, path in staff_pages(user).items():
        response = page.goto(live_server.url + path)
        content_type = response.headers.get("content-type", "")
        if response.status != 200 or not content_type.startswith("text/html") or "/admin/" not in page.url:
            skipped[name] = response.status
            continue
        report[name] = _report(page)
        if report[name]:  # a picture of each page axe faults (test-artifacts/browser/<test>/)
            shot(page, name)
    report.update(_page_states(page, live_server.url, user))

    # The list of pages checked and what axe found, beside the screenshots.
    (shot.folder / "axe.json").write_text(json.dumps({"checked": report, "not_pages": skipped}, indent=1))
    covered = " ".join(report)
    missing = [name for name in MUST_COVER[email] if name not in covered]
    assert missing == [], f"not checked: {missing}; answered otherwise: {skipped}"
    failing = {name: found for name, found in report.items() if found}
    assert failing == {}
