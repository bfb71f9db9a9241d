"""Participant pages on a phone (390×844): the consent form reads well and downloads as a PDF; right
after linking, the page says what to do next and when; the private link has a working copy button."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django.utils.formats import date_format

from cohorts.models import ConsentRecord, Participant
from tests.browser.test_accessibility import violations
from tests.browser.test_enrollment import consent_and_link

# The enrollment tests' fixtures, used by name (the alias marks them as deliberate imports).
from tests.browser.test_enrollment import sandbox as sandbox
from tests.browser.test_enrollment import study as study
from tests.factories import InvitationFactory, ParticipantFactory
from tests.pdf_text import pdf_text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE_WIDTH = 390
MIN_TAP = 44  # CSS pixels: WCAG 2.5.5 / platform guidelines


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH


def test_consent_form_on_a_phone_reads_well_and_downloads_as_pdf(live_server, phone_page, study, shot):
    participant = ParticipantFactory(study=study, status=Participant.Status.INVITED)
    invitation = InvitationFactory(participant=participant)
    phone_page.goto(f"{live_server.url}/enroll/invite/{invitation.token}/")
    phone_page.click("text=Start")
    phone_page.wait_for_url("**/enroll/consent/")
    shot(phone_page, "consent-phone")
    assert no_sideways_scroll(phone_page)

    # Headings, a comfortable text size and line length, statements as a list of big tap targets.
    assert phone_page.locator("h1").count() == 1
    assert phone_page.get_by_role("heading", name="Please read").is_visible()
    assert phone_page.get_by_role("heading", name="Your agreement").is_visible()
    size = phone_page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('.consent-text p')).fontSize)"
    )
    width = phone_page.evaluate("document.querySelector('.consent-text p').getBoundingClientRect().width")
    assert size >= 17
    assert 30 <= width / (size * 0.5) <= 75  # characters per line, at ~0.5 em per character
    statements = phone_page.locator("ul.choices > li")
    assert statements.count() == 2
    for label in phone_page.locator(".choice label").all():
        box = label.bounding_box()
        assert box["height"] >= MIN_TAP
        assert box["width"] >= 250
    for button in (phone_page.locator("#consent-pdf"), phone_page.locator("button[type=submit]")):
        assert button.bounding_box()["height"] >= MIN_TAP
    # A tap on the statement's text ticks its box.
    phone_page.locator(".choice label").first.tap()
    assert phone_page.locator("input[type=checkbox]").first.is_checked()

    with phone_page.expect_download() as download:
        phone_page.click("#consent-pdf")
    data = download.value.path().read_bytes()
    assert download.value.suggested_filename == f"consent-{study.slug}-v1.pdf"
    assert data.startswith(b"%PDF-")
    text = " ".join(pdf_text(data).split())
    assert "I have read the information." in text
    assert invitation.token not in text
    # The same link, fetched with the page's session: a PDF, said to be one.
    response = phone_page.request.get(live_server.url + phone_page.get_attribute("#consent-pdf", "href"))
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert not ConsentRecord.objects.exists()


def test_right_after_linking_the_page_says_what_to_do_next_and_the_link_copies(
    live_server,
    phone_page,
    sandbox,
    study,
    shot,
):
    phone_page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    participant = ParticipantFactory(study=study, status=Participant.Status.INVITED, timezone="UTC")
    invitation = InvitationFactory(participant=participant)
    phone_page.goto(f"{live_server.url}/enroll/invite/{invitation.token}/")
    phone_page.click("text=Start")
    consent_and_link(phone_page, shot, sandbox)
    phone_page.wait_for_url("**/withings/connected/")
    shot(phone_page, "connected-next-steps")
    assert no_sideways_scroll(phone_page)

    participant.refresh_from_db()
    today = timezone.now().astimezone(ZoneInfo(participant.timezone)).date()
    start, end = participant.start_date, participant.start_date + dt.timedelta(days=6)
    assert start == today
    steps = phone_page.locator(".next-steps").inner_text()
    assert "What to do next" in steps
    assert (
        "Take 2 readings each morning between 04:00 and 12:00, and 2 each evening between 17:00 and midnight."
        in steps
    )
    assert (
        f"Start today, {date_format(start, 'l j F')}, and keep going until {date_format(end, 'l j F')}."
        in steps
    )
    assert "the study asks for" not in phone_page.inner_text("body")

    link = phone_page.locator("#private-link").inner_text().strip()
    assert link.startswith(f"{live_server.url}/p/")
    copy = phone_page.get_by_role("button", name="Copy the link")
    assert copy.bounding_box()["height"] >= MIN_TAP
    copy.click()
    status = phone_page.locator("[data-copy-status]")
    status.filter(has_text="Copied").wait_for()
    assert status.get_attribute("role") == "status"
    assert phone_page.evaluate("navigator.clipboard.readText()") == link
    shot(phone_page, "copied")
    assert violations(phone_page) == []

    phone_page.goto(link)
    shot(phone_page, "status-next-steps")
    assert "Start today," in phone_page.locator(".next-steps").inner_text()
    assert no_sideways_scroll(phone_page)
