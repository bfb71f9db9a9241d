"""axe-core (from the npm registry, vendored by `npm ci`) on every participant page: no serious or
critical violations, on a phone-sized screen."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from django.utils import timezone

from cohorts import enrollment
from cohorts.models import EligibilityQuestion, Participant, Study
from tests.factories import ConsentDocumentFactory, InvitationFactory, ParticipantFactory, StudyFactory

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def violations(page) -> list[dict]:
    if not AXE.exists():
        pytest.fail(f"{AXE} missing: run `npm ci` (make install does)")
    # Evaluated through DevTools: an injected <script> tag is (rightly) refused by the page's CSP.
    page.evaluate(AXE.read_text())
    # Violations only: axe then skips describing every passing node (several times faster).
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def test_participant_pages_have_no_serious_accessibility_violations(live_server, phone_page, shot):
    study = StudyFactory(
        slug="a11y", name="Accessible study", enrollment_mode=Study.EnrollmentMode.OPEN,
        contact_email="team@example.org", start_date=timezone.localdate() - dt.timedelta(days=3),
    )  # fmt: skip
    document = ConsentDocumentFactory(study=study, version=1)
    EligibilityQuestion.objects.create(study=study, text="Are you 18 or older?", required_answer=True)
    invited = ParticipantFactory(study=study, status=Participant.Status.INVITED)
    invitation = InvitationFactory(participant=invited)
    consented = ParticipantFactory(study=study, status=Participant.Status.INVITED)
    digest = hashlib.sha256(enrollment.render_consent_text(document).encode()).hexdigest()
    token = enrollment.participant_give_consent(
        participant=consented, document=document, shown_text_sha256=digest, signature="Lee",
        keep_data_on_withdrawal=True,
    ).status_token  # fmt: skip

    pages = {
        "eligibility": f"/enroll/{study.slug}/",
        "welcome": f"/enroll/invite/{invitation.token}/",
        "consent": "/enroll/consent/",
        "status": f"/p/{token}/",
        "withdraw": f"/p/{token}/withdraw/",
        "bad-link": "/enroll/invite/not-a-token/",
    }
    report = {}
    for name, path in pages.items():
        phone_page.goto(live_server.url + path)
        shot(phone_page, name)
        report[name] = [(v["id"], v["impact"], len(v["nodes"])) for v in violations(phone_page)]
    # The consent page with validation errors shown.
    phone_page.goto(live_server.url + f"/enroll/invite/{invitation.token}/")
    phone_page.goto(live_server.url + "/enroll/consent/")
    phone_page.click("button[type=submit]")
    shot(phone_page, "consent-errors")
    report["consent-errors"] = [(v["id"], v["impact"], len(v["nodes"])) for v in violations(phone_page)]
    assert report == {name: [] for name in report}
