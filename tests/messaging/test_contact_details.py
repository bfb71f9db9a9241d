"""Contact details: captured with the consent (validated E.164, opt-in recorded), the private link
sent by message, editable by the participant, audited without values, erased on withdrawal after
one confirmation, and never exported."""

from __future__ import annotations

import zipfile

import pytest
from django.core.management import call_command
from django.urls import reverse

from cohorts import enrollment
from cohorts.models import AuditEvent, ConsentRecord, Participant, ParticipantContact
from messaging import dispatch, services
from messaging.models import Message, Reason
from tests.cohorts.test_enrollment import consent_post
from tests.factories import ConsentDocumentFactory, ParticipantFactory, ReadingFactory, StudyFactory
from tests.fixtures.messaging import give_contact

pytestmark = pytest.mark.django_db

PHONE = "+33612345678"
EMAIL = "sam.sample@example.net"


def start_invitation(client, study=None):
    from tests.factories import InvitationFactory

    participant = ParticipantFactory(status=Participant.Status.INVITED, **({"study": study} if study else {}))
    document = ConsentDocumentFactory(study=participant.study, version=1)
    invitation = InvitationFactory(participant=participant)
    client.get(reverse("enroll_invitation", args=[invitation.token]))
    return participant, document


def contact_post(**fields):
    return {"email": "", "phone": "", "preferred_channel": "sms", "language": "en", **fields}


def test_contact_and_opt_in_are_recorded_with_the_consent_and_the_link_is_texted(
    client, sms_gateway, django_capture_on_commit_callbacks
):
    participant, document = start_invitation(client)
    data = {**consent_post(document), **contact_post(phone="06 12 34 56 78", reminders_opt_in="on")}
    participant.study.contact_phone = "+33 1 23 45 67 89"  # a French study: national numbers are French
    participant.study.save()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("enroll_consent"), data)

    assert response.status_code == 302
    contact = ParticipantContact.objects.get(participant=participant)
    assert (contact.phone, contact.preferred_channel, contact.reminders_opt_in) == (PHONE, "sms", True)
    assert contact.opted_in_at is not None
    assert ConsentRecord.objects.get(participant=participant).choices["reminders_opt_in"] is True
    audit = AuditEvent.objects.get(action="contact.created", participant=participant)
    assert audit.detail["via"] == "enrollment"
    assert audit.detail["has_phone"] is True
    assert "612345678" not in str(audit.detail)
    [text] = sms_gateway.state.texts(PHONE)
    token = client.session["participant_status_token"]
    assert f"/p/{token}/" in text.body
    message = Message.objects.get(participant=participant)
    assert (message.reason, message.status, message.provider_id) == (Reason.STATUS_LINK, "sent", text.sid)
    assert token not in message.dedupe_key


@pytest.mark.parametrize(
    ("phone", "error"),
    [
        ("06 12 34 56 78", "Please write the number with its country code"),
        ("+33 12", "This number is not valid"),
        ("call me", "Please write the number with its country code"),
    ],
)
def test_a_bad_number_is_explained_and_nothing_is_recorded(client, phone, error):
    _participant, document = start_invitation(client)  # the study gives no number: no country known

    response = client.post(reverse("enroll_consent"), {**consent_post(document), **contact_post(phone=phone)})

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not ConsentRecord.objects.exists()
    assert not ParticipantContact.objects.exists()
    assert not Message.objects.exists()


def test_opting_in_without_any_contact_is_refused(client):
    _participant, document = start_invitation(client)
    response = client.post(
        reverse("enroll_consent"), {**consent_post(document), **contact_post(reminders_opt_in="on")}
    )
    assert "Give an e-mail address or a mobile number to receive reminders." in response.content.decode()
    assert not ConsentRecord.objects.exists()


def test_enrolling_without_contact_details_sends_nothing(client, sms_gateway):
    _participant, document = start_invitation(client)
    assert client.post(reverse("enroll_consent"), consent_post(document)).status_code == 302
    assert not ParticipantContact.objects.exists()
    assert not Message.objects.exists()
    assert sms_gateway.state.texts() == []


def test_the_participant_changes_their_details_on_the_private_page(client, smtp_server):
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE, opt_in=False)
    token = enrollment.participant_reissue_status_link(actor=None, participant=participant)
    page = client.get(reverse("participant_status", args=[token])).content.decode()
    assert 'type="tel"' in page
    assert 'type="email"' in page

    response = client.post(
        reverse("participant_contact", args=[token]),
        contact_post(
            phone=PHONE, email=EMAIL, preferred_channel="email", language="fr", reminders_opt_in="on"
        ),
    )

    assert response.status_code == 200
    contact = ParticipantContact.objects.get(participant=participant)
    assert (contact.email, contact.preferred_channel, contact.language, contact.reminders_opt_in) == (
        EMAIL,
        "email",
        "fr",
        True,
    )
    audit = AuditEvent.objects.get(action="contact.changed", participant=participant)
    assert audit.detail["via"] == "participant"
    assert audit.detail["fields"] == ["email", "language", "preferred_channel", "reminders_opt_in"]
    assert EMAIL not in str(audit.detail)


def test_a_bad_change_on_the_private_page_changes_nothing(client):
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE)
    token = enrollment.participant_reissue_status_link(actor=None, participant=participant)
    before = AuditEvent.objects.count()

    response = client.post(reverse("participant_contact", args=[token]), contact_post(phone="+1 555"))

    assert "This number is not valid" in response.content.decode()
    assert ParticipantContact.objects.get(participant=participant).phone == PHONE
    assert AuditEvent.objects.count() == before


def test_reissuing_the_link_texts_the_new_one(sms_gateway, django_capture_on_commit_callbacks):
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE, opt_in=False)  # transactional: no reminders opt-in needed

    with django_capture_on_commit_callbacks(execute=True):
        first = enrollment.participant_reissue_status_link(actor=None, participant=participant)
        second = enrollment.participant_reissue_status_link(actor=None, participant=participant)

    bodies = [t.body for t in sms_gateway.state.texts(PHONE)]
    assert len(bodies) == 2
    assert f"/p/{first}/" in bodies[0]
    assert f"/p/{second}/" in bodies[1]


def test_withdrawal_sends_one_confirmation_then_erases_and_sends_nothing_ever_again(
    client, sms_gateway, django_capture_on_commit_callbacks
):
    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE, email=EMAIL)
    pending = services.message_queue(participant=participant, reason=Reason.ONE_OFF, dedupe_key="one-off:1")
    with django_capture_on_commit_callbacks(execute=True):
        token = enrollment.participant_reissue_status_link(actor=None, participant=participant)
    link = Message.objects.get(reason=Reason.STATUS_LINK)
    assert link.status == Message.Status.SENT
    before = len(sms_gateway.state.texts(PHONE))  # the link: only what follows the withdrawal counts below

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("participant_withdraw", args=[token]), {"confirm": "yes"})

    texts = sms_gateway.state.texts(PHONE)[before:]
    assert [t.body.split(":")[1].strip() for t in texts] == [
        "you have left the study. You will get no more messages. Questions"
    ]
    contact = ParticipantContact.objects.get(participant=participant)
    assert (contact.email, contact.phone, contact.phone_lookup, contact.reminders_opt_in) == (
        "",
        "",
        "",
        False,
    )
    assert AuditEvent.objects.filter(action="contact.erased", participant=participant).count() == 1
    pending.refresh_from_db()
    assert pending.status == Message.Status.OPTED_OUT
    link.refresh_from_db()
    assert link.body == ""  # the private link no longer sits in the log
    assert Message.objects.get(reason=Reason.WITHDRAWAL).status == Message.Status.SENT

    again = services.message_queue(participant=participant, reason=Reason.ONE_OFF, dedupe_key="one-off:2")
    assert again is None  # nothing to reach them with
    assert dispatch.dispatch_due() == 0
    assert len(sms_gateway.state.texts()) == before + 1


def test_an_export_of_a_participant_with_contact_details_holds_neither(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    study = StudyFactory(slug="no-contacts")
    participant = ParticipantFactory(study=study)
    give_contact(participant, phone=PHONE, email=EMAIL)
    ReadingFactory(participant=participant)
    output = tmp_path / "export.zip"

    call_command("export_study", study.slug, "--format", "json", "--output", str(output))

    with zipfile.ZipFile(output) as archive:
        everything = b"".join(archive.read(name) for name in archive.namelist())
    assert participant.code.encode() in everything
    for secret in (PHONE, "612345678", EMAIL, "sam.sample"):
        assert secret.encode() not in everything


def test_the_sweep_erases_contacts_a_lost_withdrawal_task_left_behind(sms_gateway):
    import datetime as dt

    from django.utils import timezone

    from messaging.tasks import dispatch_due_task

    participant = ParticipantFactory()
    give_contact(participant, phone=PHONE, email=EMAIL)
    recent = ParticipantFactory(study=participant.study)
    give_contact(recent, email="recent@example.net")
    kept = ParticipantFactory(study=participant.study)
    give_contact(kept, email="kept@example.net")
    Participant.objects.filter(pk=participant.pk).update(
        status=Participant.Status.WITHDRAWN, withdrawn_at=timezone.now() - dt.timedelta(hours=1)
    )
    Participant.objects.filter(pk=recent.pk).update(
        status=Participant.Status.WITHDRAWN, withdrawn_at=timezone.now()
    )

    dispatch_due_task()

    contacts = {c.participant_id: (c.email, c.phone) for c in ParticipantContact.objects.all()}
    assert contacts[participant.pk] == ("", "")
    assert contacts[recent.pk] == ("recent@example.net", "")  # the withdrawal task still has its turn
    assert contacts[kept.pk] == ("kept@example.net", "")
    assert sms_gateway.state.texts() == []
