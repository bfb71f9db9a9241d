"""At a laptop's 1366×900: a coordinator adds a participant with an invitation in one step and lands
on the handout (QR code, a working copy button, no CSP violation); a coordinator limited to a site
sees "… only" on every page; re-link help asks before the old link stops working. axe-core finds
nothing serious."""

from __future__ import annotations

import pytest

from cohorts import services
from cohorts.models import Invitation, Participant, Role
from tests.browser.conftest import staff_sign_in as sign_in
from tests.browser.test_accessibility import violations
from tests.browser.test_csp import watch
from tests.factories import MembershipFactory, ParticipantFactory, SiteFactory, StudyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def laptop(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def test_adding_a_participant_lands_on_the_invitation_handout(live_server, laptop, shot):
    study = StudyFactory(name="Alpha", slug="alpha", default_timezone="Europe/Berlin")
    north = SiteFactory(study=study, name="North clinic")
    coordinator = MembershipFactory(study=study, role=Role.COORDINATOR).user
    page = laptop
    problems = watch(page)
    sign_in(page, live_server.url, coordinator.email)
    page.goto(f"{live_server.url}/admin/cohorts/participant/add/")
    page.select_option("select[name=site]", str(north.pk))
    assert page.is_checked("input[name=invite]")
    shot(page, "add-participant")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/cohorts/invitation/*/handout/")
    participant = Participant.objects.get(study=study)
    invitation = Invitation.objects.get(participant=participant)
    assert participant.timezone == "Europe/Berlin"

    qr = page.locator(".handout-qr svg")
    assert qr.is_visible()
    box = qr.bounding_box()
    assert box["width"] >= 300
    assert box["height"] >= 300
    link = f"http://127.0.0.1:8000/enroll/invite/{invitation.token}/"
    assert page.inner_text("#handout-url") == link
    copy = page.locator("button[data-copy-target=handout-url]")
    assert copy.is_visible()  # revealed by copy-button.js (hidden without JavaScript)
    shot(page, "handout")
    assert violations(page) == []
    copy.click()
    page.locator("[data-copy-status][role=status]").filter(has_text="Link copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == link
    assert page.locator("a", has_text="Download PDF").is_visible()
    page.emulate_media(media="print")
    assert not page.locator("#header").is_visible()
    assert not copy.is_visible()
    assert qr.is_visible()
    shot(page, "handout-print")
    assert problems == []


def test_a_site_coordinator_sees_their_site_only_banner(live_server, laptop, shot):
    study = StudyFactory(name="Alpha", slug="alpha")
    north = SiteFactory(study=study, name="North clinic")
    coordinator = MembershipFactory(study=study, role=Role.COORDINATOR, site=north).user
    page = laptop
    sign_in(page, live_server.url, coordinator.email)
    banner = page.locator("#scope-banner")
    assert banner.is_visible()
    assert banner.inner_text() == "Your access: Alpha — North clinic only (Coordinator)"
    assert page.locator("text=View site").count() == 0
    shot(page, "home-banner")
    assert violations(page) == []
    page.goto(f"{live_server.url}/admin/cohorts/study/{study.pk}/change/")
    assert "North clinic only" in page.inner_text("#scope-banner")
    assert page.locator("input[name=_save]").count() == 0  # study settings: read-only for them
    shot(page, "study-read-only")


def test_relink_help_asks_then_shows_the_new_link(live_server, laptop, shot):
    participant = ParticipantFactory(code="AL-042", study__name="Alpha")
    old_token = services.participant_reissue_status_link(actor=None, participant=participant)
    coordinator = MembershipFactory(study=participant.study, role=Role.COORDINATOR).user
    page = laptop
    problems = watch(page)
    sign_in(page, live_server.url, coordinator.email)
    monitoring = f"{live_server.url}/admin/measurements/monitoredparticipant/{participant.pk}/change/"
    page.goto(monitoring)
    page.click("#relink-help")
    assert page.locator("text=This will stop the old link working.").is_visible()
    shot(page, "confirm")
    page.click("text=No, keep the old link")
    page.wait_for_url(monitoring)
    participant.refresh_from_db()
    assert participant.status_token_hash == services.token_hash(old_token)

    page.click("#relink-help")
    page.click("text=Yes, give a new link (page to print)")
    page.wait_for_selector(".handout-qr svg")
    new_url = page.inner_text("#handout-url")
    participant.refresh_from_db()
    assert participant.status_token_hash == services.token_hash(new_url.rstrip("/").rsplit("/", 1)[1])
    assert page.locator("button[data-copy-target=handout-url]").is_visible()
    shot(page, "new-link")
    found = violations(page)
    assert found == [], [node["html"] for v in found for node in v["nodes"]]
    assert problems == []
