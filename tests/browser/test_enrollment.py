"""Participants in a real browser: invitation → consent → Withings (sandbox) → back → readings
arrive → status page; open-link self-enrollment; refusal at Withings; withdrawal. On a desktop
and on a phone-sized screen, with screenshots of each step in test-artifacts/browser/."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from cohorts.models import ConsentRecord, EligibilityQuestion, Participant, Study
from measurements.models import Alert, BloodPressureReading, DailyAdherence
from tests.factories import ConsentDocumentFactory, InvitationFactory, ParticipantFactory, StudyFactory
from withings.models import WithingsConnection
from withings.sandbox import start_sandbox
from withings.sandbox.demo import DemoSandboxState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CLIENT_ID, CLIENT_SECRET = "browser-client", "browser-secret-not-logged"


@pytest.fixture
def sandbox(live_server, settings):
    state = DemoSandboxState(
        page_size=40, history_days=10, rate_limit_per_minute=None, identical_call_window=0
    )
    state.register_client(CLIENT_ID, CLIENT_SECRET, [f"{live_server.url}/withings/callback/"])
    running = start_sandbox(state)
    settings.PORTAL_BASE_URL = live_server.url
    settings.WITHINGS_API_URL = running.url
    settings.WITHINGS_AUTH_URL = running.url
    settings.WITHINGS_CLIENT_ID = CLIENT_ID
    settings.WITHINGS_CLIENT_SECRET = CLIENT_SECRET
    settings.WITHINGS_RATE_LIMIT_PER_MINUTE = 100_000
    yield running
    running.stop()


@pytest.fixture
def study(db):
    study = StudyFactory(
        name="Home BP Study", slug="homebp", contact_email="team@example.org",
        enrollment_mode=Study.EnrollmentMode.OPEN, start_date=timezone.localdate() - dt.timedelta(days=30),
    )  # fmt: skip
    ConsentDocumentFactory(study=study, version=1)
    EligibilityQuestion.objects.create(
        study=study, order=0, text="Are you 18 or older?", required_answer=True
    )
    return study


def consent_and_link(page, shot, sandbox, *, keep: bool = True, allow: bool = True) -> None:
    page.wait_for_url("**/enroll/consent/")
    shot(page, "consent")
    for box in page.locator("input[name^=agree_]").all():
        box.check()
    page.check("input[value=keep]" if keep else "input[value=delete]")
    page.fill("input[name=signature]", "Alex Example")
    page.click("button[type=submit]")
    page.wait_for_url("**/enroll/connect/")
    shot(page, "connect")
    page.click("text=Link my Withings account")
    page.wait_for_url(f"{sandbox.url}/**")
    shot(page, "withings-consent")
    page.click("#allow" if allow else "#deny")


def readings_on_status_page(page) -> int:
    text = page.inner_text("body")
    match = re.search(r"Readings in the last 7 days:\s*(\d+)", text)
    assert match, text
    return int(match.group(1))


@pytest.mark.parametrize("device", ["page", "phone_page"])
def test_invitation_to_readings_on_the_status_page(request, device, live_server, sandbox, study, shot):
    page = request.getfixturevalue(device)
    participant = ParticipantFactory(study=study, code="HB-001", status=Participant.Status.INVITED)
    invitation = InvitationFactory(participant=participant)

    page.goto(f"{live_server.url}/enroll/invite/{invitation.token}/")
    shot(page, "welcome")
    page.click("text=Start")
    consent_and_link(page, shot, sandbox)
    page.wait_for_url("**/withings/connected/")
    shot(page, "connected")
    assert "You're connected" in page.inner_text("body")

    connection = WithingsConnection.objects.get(participant=participant)
    stored = BloodPressureReading.objects.filter(participant=participant).count()
    assert stored > 0  # the back-fill ran
    assert connection.subscription_state == WithingsConnection.SubscriptionState.SUBSCRIBED

    page.click("text=Open my page")
    page.wait_for_url("**/p/**")
    shot(page, "status")
    week = BloodPressureReading.objects.filter(
        participant=participant, measured_at__gte=timezone.now() - dt.timedelta(days=7)
    ).count()
    assert readings_on_status_page(page) == week > 0
    assert "Your Withings account is linked" in page.inner_text("body")
    participant.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE
    invitation.refresh_from_db()
    assert invitation.used_at is not None
    record = ConsentRecord.objects.get(participant=participant)
    assert (record.version, record.keep_data_on_withdrawal) == (1, True)
    if device == "phone_page":
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling

    # The same invitation cannot be used twice.
    page.goto(f"{live_server.url}/enroll/invite/{invitation.token}/")
    shot(page, "reused-invitation")
    assert "already been used" in page.inner_text("body")


def test_open_link_self_enrollment_and_withdrawal_deleting_readings(live_server, page, sandbox, study, shot):
    page.goto(f"{live_server.url}/enroll/{study.slug}/")
    shot(page, "eligibility")
    page.check("input[value=yes]")
    page.click("button[type=submit]")
    consent_and_link(page, shot, sandbox, keep=False)
    page.wait_for_url("**/withings/connected/")
    participant = Participant.objects.get(study=study)
    assert re.fullmatch(r"HO-[A-Z2-9]{6}", participant.code)
    connection = WithingsConnection.objects.get(participant=participant)
    userid = connection.withings_userid
    assert BloodPressureReading.objects.filter(participant=participant).exists()
    assert sandbox.state.subscriptions(userid)

    page.click("text=Open my page")
    page.click("text=Leave the study")
    shot(page, "withdraw-confirm")
    page.click("text=Yes, I want to leave the study")
    shot(page, "withdrawn")
    assert "You have left the study" in page.inner_text("body")

    participant.refresh_from_db()
    connection.refresh_from_db()
    assert participant.status == Participant.Status.WITHDRAWN
    assert connection.status == WithingsConnection.Status.REVOKED
    assert (connection.access_token, connection.refresh_token) == ("", "")
    assert sandbox.state.is_revoked(userid, CLIENT_ID)
    assert sandbox.state.subscriptions(userid) == []
    assert not BloodPressureReading.objects.filter(participant=participant).exists()
    assert not DailyAdherence.objects.filter(participant=participant).exists()
    assert not Alert.objects.filter(participant=participant).exclude(detail={}).exists()


def test_not_eligible_stores_nothing(live_server, page, study, shot):
    page.goto(f"{live_server.url}/enroll/{study.slug}/")
    page.check("input[value=no]")
    page.click("button[type=submit]")
    shot(page, "not-eligible")
    assert "not the right one for you" in page.inner_text("body")
    assert not Participant.objects.exists()


def test_refusing_at_withings_changes_nothing_and_offers_to_try_again(
    live_server, page, sandbox, study, shot
):
    participant = ParticipantFactory(study=study, status=Participant.Status.INVITED)
    invitation = InvitationFactory(participant=participant)
    page.goto(f"{live_server.url}/enroll/invite/{invitation.token}/")
    page.click("text=Start")
    consent_and_link(page, shot, sandbox, allow=False)
    page.wait_for_url("**/withings/callback/**")
    shot(page, "refused")
    assert "You chose not to share your readings" in page.inner_text("body")
    assert page.get_by_role("link", name="Try again").is_visible()
    assert not WithingsConnection.objects.exists()


def test_expired_invitation_says_so(live_server, page, study, shot):
    invitation = InvitationFactory(
        participant=ParticipantFactory(study=study), expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    page.goto(f"{live_server.url}/enroll/invite/{invitation.token}/")
    shot(page, "expired")
    assert "has expired" in page.inner_text("body")
    assert "team@example.org" in page.inner_text("body")
