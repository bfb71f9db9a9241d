"""At a laptop's 1366×900: a coordinator adds a participant with an invitation in one step and lands
on the handout (QR code, a working copy button, no CSP violation); a coordinator limited to a site
sees "… only" on every page."""

from __future__ import annotations

import pytest

from cohorts.models import Invitation, Participant, Role
from tests.browser.test_csp import sign_in, watch
from tests.factories import MembershipFactory, SiteFactory, StudyFactory

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
    copy.click()
    page.wait_for_function("document.querySelector('[data-copy-target]').textContent === 'Link copied'")
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
    page.goto(f"{live_server.url}/admin/cohorts/study/{study.pk}/change/")
    assert "North clinic only" in page.inner_text("#scope-banner")
    assert page.locator("input[name=_save]").count() == 0  # study settings: read-only for them
    shot(page, "study-read-only")
