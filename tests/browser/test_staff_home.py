"""The demo coordinator signs in (password, then TOTP) and lands on the staff home at a laptop's
1366×900: today's worklist, the demo study's card, no other study; axe-core finds nothing serious."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from cohorts.models import Participant
from demo.studies import DEMO_PASSWORD, demo_totp_secret
from tests.browser.test_accessibility import violations
from tests.cohorts.test_staff_signin import current_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/admin/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/2fa/authenticate/**")
    page.fill("input[name=code]", current_code(demo_totp_secret(email)))
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def test_demo_coordinator_lands_on_their_work(live_server, laptop_page, shot, settings):
    settings.DEBUG = True  # seed_demo refuses otherwise
    call_command("seed_demo", verbosity=0)
    page = laptop_page
    sign_in(page, live_server.url, "coordinator@demo.example")
    shot(page, "home")

    assert page.inner_text("h1") == "Home"
    worklist = page.locator("#home-worklist + table")
    assert worklist.is_visible()
    assert "DE-003" in worklist.inner_text()  # the demo's crisis reading
    card = page.locator("#study-demo")
    assert card.is_visible()
    active = Participant.objects.filter(study__slug="demo", status=Participant.Status.ACTIVE).count()
    assert card.locator("[data-status=Active]").inner_text() == str(active)
    assert int(card.locator("[data-figure=open_alerts]").inner_text()) > 0
    assert card.locator("[data-figure=adherence]").inner_text().endswith("%")
    body = page.inner_text("body")
    assert "Pilot (CSV import) study" not in body
    assert "PI-0" not in body
    # Cards sit side by side without horizontal scrolling at 1366 px.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    assert violations(page) == []

    page.click("text=All models (site administration)")
    page.wait_for_url(f"{live_server.url}/admin/models/")
    assert page.inner_text("h1") == "Site administration"
    shot(page, "models")


@pytest.mark.parametrize(
    ("email", "present", "absent"),
    [
        (
            "north.coordinator@demo.example",
            ["#home-worklist", "#study-demo"],
            ["#home-exports", "#study-pilot"],
        ),
        ("datamanager@demo.example", ["#home-exports", "#study-demo"], ["#home-worklist", "#study-pilot"]),
        ("investigator@demo.example", ["#study-demo"], ["#home-worklist", "#home-exports", "#study-pilot"]),
        ("operator@demo.example", ["#home-worklist", "#home-exports", "#study-demo", "#study-pilot"], []),
    ],
)
def test_each_demo_role_gets_an_accessible_home(
    live_server, laptop_page, shot, settings, email, present, absent
):
    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    page = laptop_page
    sign_in(page, live_server.url, email)
    shot(page, "home")
    assert page.inner_text("h1") == "Home"
    for selector in present:
        assert page.locator(selector).count() == 1, selector
    for selector in absent:
        assert page.locator(selector).count() == 0, selector
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    assert violations(page) == []
