"""The messaging loop in a real browser, as `make run` shows it: a participant gives a mobile number
while consenting, the private link arrives in the SMS sandbox (delivery receipts come back signed),
they reply STOP on the sandbox page, get one confirmation and nothing more."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from cohorts.models import AuditEvent, Participant, ParticipantContact
from messaging import dispatch, services
from messaging.models import InboundMessage, Message, Reason
from tests.factories import ConsentDocumentFactory, InvitationFactory, ParticipantFactory, StudyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = "+33612345678"


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_phone_given_at_enrollment_link_texted_stop_ends_everything(
    live_server, phone_page, sms_gateway_live, shot
):
    page = phone_page
    study = StudyFactory(name="Home BP Study", contact_phone="+33 1 23 45 67 89")
    ConsentDocumentFactory(study=study, version=1)
    participant = ParticipantFactory(study=study, code="HB-007", status=Participant.Status.INVITED)
    invitation = InvitationFactory(participant=participant)

    page.goto(f"{live_server.url}/enroll/invite/{invitation.token}/")
    page.click("text=Start")
    page.wait_for_url("**/enroll/consent/")
    for box in page.locator("input[name^=agree_]").all():
        box.check()
    page.check("input[value=keep]")
    page.fill("input[type=tel]", "06 12 34 56 78")  # national: the study's country (France) is inferred
    page.check("input[name=preferred_channel][value=sms]")
    page.select_option("select[name=language]", "en")
    page.check("input[name=reminders_opt_in]")
    page.fill("input[name=signature]", "Alex Example")
    shot(page, "consent-with-contact")
    page.click("button[type=submit]")
    page.wait_for_url("**/enroll/connect/")

    contact = ParticipantContact.objects.get(participant=participant)
    assert (contact.phone, contact.reminders_opt_in) == (PHONE, True)
    link = Message.objects.get(participant=participant, reason=Reason.STATUS_LINK)
    assert wait_for(lambda: Message.objects.get(pk=link.pk).status == Message.Status.DELIVERED)

    page.goto(f"{sms_gateway_live.url}/")
    shot(page, "sandbox-link-received")
    section = page.locator(f"section[aria-label='{PHONE}']")
    assert "your private study page is" in section.inner_text()
    assert "delivered" in section.inner_text()

    page.fill(f"section[aria-label='{PHONE}'] input[name=body]", "STOP")
    page.click(f"section[aria-label='{PHONE}'] button[type=submit]")
    page.wait_for_load_state()
    shot(page, "sandbox-after-stop")
    assert "you will get no more texts" in section.inner_text()
    assert "replied STOP" in section.inner_text()

    contact.refresh_from_db()
    assert contact.sms_opted_out_at is not None
    assert InboundMessage.objects.get(participant=participant).keyword == "STOP"
    assert AuditEvent.objects.filter(action="contact.sms_opted_out", participant=participant).exists()

    # The morning prompt that follows is not sent: nothing more reaches the phone.
    prompt = services.message_queue(
        participant=participant,
        reason=Reason.PROMPT,
        dedupe_key="prompt:test:morning",
        context={"window": "morning", "window_start": "07:00", "window_end": "10:00"},
        due_at=timezone.now(),
    )
    texts_before = len(sms_gateway_live.state.texts(PHONE))
    assert dispatch.dispatch_due() == 0
    prompt.refresh_from_db()
    assert prompt.status == Message.Status.OPTED_OUT
    assert len(sms_gateway_live.state.texts(PHONE)) == texts_before
    page.reload()
    shot(page, "sandbox-nothing-more")


def test_enrollment_contact_fields_explain_a_bad_number(live_server, page, shot):
    study = StudyFactory(name="Home BP Study")  # no study number: the country code is required
    ConsentDocumentFactory(study=study, version=1)
    participant = ParticipantFactory(study=study, status=Participant.Status.INVITED)
    invitation = InvitationFactory(participant=participant)

    page.goto(f"{live_server.url}/enroll/invite/{invitation.token}/")
    page.click("text=Start")
    page.wait_for_url("**/enroll/consent/")
    assert page.locator("input[type=email][name=email]").count() == 1
    assert page.locator("input[type=tel][name=phone]").count() == 1
    for box in page.locator("input[name^=agree_]").all():
        box.check()
    page.check("input[value=keep]")
    page.fill("input[type=tel]", "06 12 34 56 78")
    page.fill("input[name=signature]", "Alex Example")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    shot(page, "bad-number")
    assert "Please write the number with its country code" in page.inner_text("body")
    assert not ParticipantContact.objects.exists()
    participant.refresh_from_db()
    assert participant.status == Participant.Status.INVITED
