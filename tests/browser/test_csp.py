"""The Content-Security-Policy in a real browser: admin, monitoring, export, allauth and participant
pages load without a single CSP violation (no inline script or style is blocked, nothing breaks)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from cohorts.models import Role, Study
from measurements.models import Alert, ExportJob
from tests.browser.conftest import staff_sign_in
from tests.factories import (
    STAFF_PASSWORD,
    ConsentDocumentFactory,
    InvitationFactory,
    MembershipFactory,
    ParticipantFactory,
    ReadingFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def watch(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


def test_staff_and_participant_pages_raise_no_csp_violation(live_server, page):
    base = live_server.url
    problems = watch(page)
    study = MembershipFactory(role=Role.COORDINATOR).study
    study.enrollment_mode = Study.EnrollmentMode.OPEN
    study.save()
    ConsentDocumentFactory(study=study, version=1)
    coordinator = study.memberships.get().user
    participant = ParticipantFactory(study=study, code="CSP-001")
    ReadingFactory(participant=participant, measured_at=timezone.now())
    invitation = InvitationFactory(participant=participant)
    Alert.objects.create(study=study, participant=participant, kind=Alert.Kind.CRISIS, episode_key="x")
    dm = MembershipFactory(study=study, role=Role.DATA_MANAGER).user
    job = ExportJob.objects.create(
        study=study, requested_by=dm, format="csv", status=ExportJob.Status.RUNNING
    )

    for url in (f"/enroll/{study.slug}/", f"/enroll/invite/{invitation.token}/", "/accounts/login/"):
        page.goto(base + url)
    staff_sign_in(page, base, coordinator.email)
    for url in (
        "/admin/",
        "/admin/cohorts/participant/",
        f"/admin/cohorts/participant/{participant.pk}/change/",
        f"/admin/cohorts/invitation/{invitation.pk}/change/",
        "/admin/measurements/monitoredparticipant/",  # a changelist without actions
        f"/admin/measurements/monitoredparticipant/{participant.pk}/change/",  # SVG chart, legend
        f"/admin/measurements/monitoredparticipant/study/{study.slug}/",
        "/admin/measurements/monitoredparticipant/worklist/",
        "/admin/measurements/alert/",
        "/accounts/2fa/",
    ):
        page.goto(base + url)
        page.wait_for_load_state("networkidle")
    page.goto(f"{base}/accounts/logout/")
    page.click("button[type=submit]")
    staff_sign_in(page, base, dm.email)
    page.goto(f"{base}/admin/measurements/exportjob/study/{study.slug}/")
    page.goto(f"{base}/admin/measurements/exportjob/{job.pk}/progress/")
    page.wait_for_timeout(1500)  # the external poller has run at least once
    assert page.locator("#export-status").inner_text() == "Running"
    # A staff member without TOTP on the way to allauth's TOTP activation page.
    fresh = MembershipFactory(study=study, user=UserFactory(totp=False)).user
    page.goto(f"{base}/accounts/logout/")
    page.click("button[type=submit]")
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", fresh.email)
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/accounts/2fa/totp/activate/")
    page.wait_for_load_state("networkidle")
    assert problems == []
