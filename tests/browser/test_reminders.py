"""In a real browser: the demo coordinator previews the demo study's reminders for the next 7 days and
sends a one-off message from a participant's page; a participant whose link broke opens the link of
their re-link message on a phone. axe-core finds nothing serious on any of them."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from cohorts.models import Participant
from messaging.links import participant_link
from messaging.models import Message, StudyMessaging
from tests.browser.test_accessibility import violations
from tests.browser.test_staff_home import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(settings):
    settings.DEBUG = True  # seed_demo refuses otherwise
    call_command("seed_demo", verbosity=0)


def test_the_coordinator_previews_the_week_and_sends_a_one_off_message(demo, live_server, page, shot):
    sign_in(page, live_server.url, "coordinator@demo.example")
    rules = StudyMessaging.objects.get(study__slug="demo")
    page.set_default_timeout(60000)  # the preview replays 168 hourly ticks
    page.goto(f"{live_server.url}/admin/messaging/studymessaging/{rules.pk}/preview/")
    table = page.locator("#preview-counts")
    assert table.is_visible()
    assert "prompt" in table.inner_text().lower()  # headers are upper-cased by the admin CSS
    assert "time for your" in page.inner_text("body")
    shot(page, "preview")
    assert violations(page) == []
    assert not Message.objects.exists()

    participant = (
        Participant.objects.filter(study__slug="demo", contact__isnull=False).order_by("code").first()
    )
    page.goto(f"{live_server.url}/admin/measurements/monitoredparticipant/{participant.pk}/change/")
    page.click("text=Send a message…")
    page.fill("textarea[name=text]", "Hello {code}, the study team will call you tomorrow.")
    page.click("button[name=preview]")
    preview = page.locator("#one-off-preview")
    assert preview.inner_text() == f"Hello {participant.code}, the study team will call you tomorrow."
    shot(page, "one-off-preview")
    assert violations(page) == []
    page.click("button[name=send]")
    page.wait_for_url(f"**/monitoredparticipant/{participant.pk}/change/")
    assert "queued for sending" in page.inner_text("body")
    message = Message.objects.get(participant=participant)
    assert (message.reason, message.sent_by.email) == ("one_off", "coordinator@demo.example")


def test_a_participant_opens_the_relink_link_on_a_phone(demo, live_server, phone_page, shot):
    participant = Participant.objects.filter(
        study__slug="demo", link_status=Participant.LinkStatus.NEEDS_REAUTH
    ).first()
    path = participant_link(participant.pk).removeprefix(django_settings.PORTAL_BASE_URL)
    phone_page.goto(f"{live_server.url}{path}")
    assert "not linked to the study" in phone_page.inner_text("body")
    assert phone_page.locator("button", has_text="Link my monitor again").is_visible()
    shot(phone_page, "relink")
    assert violations(phone_page) == []
