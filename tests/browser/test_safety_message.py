"""Clinical safety in a real browser (phone viewport): a 192/124 reading arrives → within seconds the
participant's private page shows the safety plan's message at the top, and the same message is in the
SMS sandbox under their number; the coordinator's e-mail names the deadline."""

from __future__ import annotations

import time

import pytest
from django.core import mail
from django.urls import reverse

from cohorts.models import Participant
from cohorts.services import token_hash
from measurements.models import Alert
from measurements.monitoring.safety import safety_plan_save
from tests.browser.test_accessibility import violations
from tests.factories import MembershipFactory, ParticipantFactory, StudyFactory
from tests.fixtures.messaging import give_contact
from tests.measurements.test_monitoring_alerts import ingest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = "+33612345678"
TOKEN = "tok-browser-safety"
MESSAGE = "Sit quietly for 5 minutes and measure again. Chest pain or trouble speaking: call 15."


def test_a_severe_reading_puts_the_safety_message_on_top_and_in_the_sms_sandbox(
    live_server, phone_page, sms_gateway_live, shot
):
    page = phone_page
    study = StudyFactory(
        name="Home BP Study", contact_phone="+33 1 23 45 67 89", default_timezone="Europe/Paris"
    )
    participant = ParticipantFactory(study=study, code="HB-192")
    Participant.objects.filter(pk=participant.pk).update(status_token_hash=token_hash(TOKEN))
    coordinator = MembershipFactory(study=study, role="coordinator").user
    safety_plan_save(actor=coordinator, study=study, values={"severe_message": MESSAGE})
    give_contact(participant, phone=PHONE, opt_in=False)

    page.goto(live_server.url + reverse("participant_status", args=[TOKEN]))
    assert MESSAGE not in page.content()

    started = time.monotonic()
    ingest(participant, 1, 192, 124)  # what a webhook-triggered sync does
    page.reload()
    banner = page.locator("[data-safety-message]")
    banner.wait_for()
    page_seconds = time.monotonic() - started
    shot(page, "participant-page-safety-message")
    assert MESSAGE in banner.inner_text()
    assert banner.bounding_box()["y"] < page.locator("h1").bounding_box()["y"]  # above everything else
    assert banner.get_attribute("role") == "alert"
    assert violations(page) == []

    page.goto(f"{sms_gateway_live.url}/")
    section = page.locator(f"section[aria-label='{PHONE}']")
    assert MESSAGE in section.inner_text()
    sms_seconds = time.monotonic() - started
    shot(page, "sms-sandbox-safety-message")
    print(f"\nsafety message: page {page_seconds:.2f} s, SMS sandbox {sms_seconds:.2f} s after the reading")  # noqa: T201
    assert sms_seconds < 10

    alert = Alert.objects.get(participant=participant)
    [coordinators_mail] = mail.outbox
    assert f"{alert.deadline_at:%Y-%m-%d %H:%M} UTC" in coordinators_mail.body
