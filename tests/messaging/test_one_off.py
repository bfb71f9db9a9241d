"""One-off messages from the participant page and the worklist: previewed, then queued and sent with
the coordinator's name, audited without the text; refused (nothing created) for withdrawn or
unreachable participants, for unknown placeholders, and for other studies' or sites' staff."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.timezone import now

from cohorts.models import AuditEvent, Participant, ParticipantContact, Role
from messaging import wording
from messaging.dispatch import dispatch_due
from messaging.models import Message, Reason
from tests.factories import MembershipFactory, ParticipantFactory, SiteFactory, StudyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def p():
    participant = ParticipantFactory(study=StudyFactory(name="One-off study"), code="O-1")
    ParticipantContact.objects.create(participant=participant, phone="+447700900555", reminders_opt_in=True)
    return participant


def login(client, study, **kw):
    user = MembershipFactory(study=study, role=Role.COORDINATOR, **kw).user
    client.force_login(user)
    return user


def url(p):
    return reverse("admin:messaging_one_off", args=[p.pk])


def test_a_coordinator_previews_then_sends_their_own_text(
    client, p, settings, django_capture_on_commit_callbacks
):
    settings.SMS_BACKEND = "console"
    user = login(client, p.study)
    preview = client.post(url(p), {"text": "Hello {code}, please call us: {team_contact}.", "preview": "1"})
    assert preview.status_code == 200
    assert "Hello O-1, please call us: One-off study." in preview.content.decode()
    assert not Message.objects.exists()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url(p), {"text": "Hello {code}, please call us: {team_contact}.", "send": "1"})
    assert response.status_code == 302
    message = Message.objects.get()
    assert (message.reason, message.sent_by_id, message.channel) == (Reason.ONE_OFF, user.pk, "sms")
    assert message.body == "Hello O-1, please call us: One-off study."
    assert len(callbacks) == 1  # the send is queued after commit; here the dispatcher sends it
    assert dispatch_due() == 1
    assert Message.objects.get().status == "sent"
    event = AuditEvent.objects.get(action="messaging.one_off")
    assert event.participant_id == p.pk
    assert "Hello" not in str(event.detail)


def test_a_study_template_can_be_chosen(client, p):
    login(client, p.study)
    template = wording.current_template(p.study, Reason.ONE_OFF, "sms", "en")
    response = client.post(url(p), {"template": template.pk, "preview": "1"})
    assert "One-off study: a message from the study team." in response.content.decode()


def test_an_unknown_placeholder_is_refused_and_nothing_is_created(client, p):
    login(client, p.study)
    response = client.post(url(p), {"text": "Hi {name}", "send": "1"})
    assert response.status_code == 200
    assert "Unknown placeholder {name}" in response.content.decode()
    assert not Message.objects.exists()
    assert not AuditEvent.objects.filter(action="messaging.one_off").exists()


@pytest.mark.parametrize("how", ["withdrawn", "sms_opted_out", "no_contact"])
def test_withdrawn_or_unreachable_participants_are_refused_with_nothing_created(client, p, how):
    login(client, p.study)
    if how == "withdrawn":
        Participant.objects.filter(pk=p.pk).update(status=Participant.Status.WITHDRAWN, withdrawn_at=now())
        expected = "O-1 has withdrawn from the study"
    elif how == "sms_opted_out":
        ParticipantContact.objects.filter(participant=p).update(sms_opted_out_at=now())
        expected = "O-1 cannot be reached"
    else:
        ParticipantContact.objects.filter(participant=p).delete()
        expected = "O-1 cannot be reached"
    response = client.post(url(p), {"text": "Hello", "send": "1"})
    assert response.status_code == 200
    assert expected in response.content.decode()
    assert not Message.objects.exists()
    assert not AuditEvent.objects.filter(action="messaging.one_off").exists()


def test_other_studies_and_other_sites_cannot_message(client, p):
    login(client, StudyFactory())
    assert client.post(url(p), {"text": "Hello", "send": "1"}).status_code == 404
    client.logout()
    login(client, p.study, site=SiteFactory(study=p.study))  # a site-limited coordinator, another site
    assert client.post(url(p), {"text": "Hello", "send": "1"}).status_code in (403, 404)
    client.logout()
    investigator = MembershipFactory(study=p.study, role=Role.INVESTIGATOR).user
    client.force_login(investigator)
    assert client.post(url(p), {"text": "Hello", "send": "1"}).status_code in (403, 404)
    assert not Message.objects.exists()


def test_the_participant_page_and_worklist_link_to_the_message_page(client, p):
    login(client, p.study)
    page = client.get(reverse("admin:measurements_monitoredparticipant_change", args=[p.pk]))
    assert url(p) in page.content.decode()
