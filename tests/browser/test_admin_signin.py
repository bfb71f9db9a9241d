"""A coordinator signs in to the admin in a real browser: password, then the TOTP code."""

from __future__ import annotations

import pytest

from cohorts.models import Role
from tests.cohorts.test_staff_signin import current_code
from tests.factories import (
    STAFF_PASSWORD,
    MembershipFactory,
    ParticipantFactory,
    UserFactory,
    has_totp,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_coordinator_signs_in_with_totp_and_sees_only_their_study(live_server, page, shot):
    membership = MembershipFactory(role=Role.COORDINATOR)
    ParticipantFactory(study=membership.study, code="MINE-001")
    ParticipantFactory(code="OTHER-STUDY-9")
    page.goto(f"{live_server.url}/admin/")
    assert "/accounts/login/" in page.url
    shot(page, "login")
    page.fill("input[name=login]", membership.user.email)
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/2fa/authenticate/**")
    shot(page, "totp")
    page.fill("input[name=code]", current_code())
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    shot(page, "admin-index")
    page.goto(f"{live_server.url}/admin/cohorts/participant/")
    shot(page, "participants")
    body = page.inner_text("body")
    assert "MINE-001" in body
    assert "OTHER-STUDY-9" not in body


def test_staff_without_totp_must_set_it_up_before_the_admin_opens(live_server, page, shot):
    membership = MembershipFactory(user=UserFactory(totp=False))
    user = membership.user
    page.goto(f"{live_server.url}/accounts/login/?next=/admin/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/admin/cohorts/participant/")
    # The admin refuses; allauth asks for the password again before enrolling an authenticator.
    page.wait_for_url("**/accounts/reauthenticate/**")
    assert "Set up two-factor authentication" in page.inner_text("body")
    shot(page, "reauthenticate")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/2fa/totp/activate/**")
    shot(page, "activate-totp")
    secret = page.input_value("#authenticator_secret")
    assert len(secret) == 32
    page.fill("input[name=code]", current_code(secret))
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert has_totp(user)
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_url(f"{live_server.url}/admin/")
    shot(page, "admin-after-enrolment")
    assert page.inner_text("h1") == "Home"
    assert membership.study.name in page.inner_text("body")
