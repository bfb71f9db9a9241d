"""Contact details and the delivery log in the admin: who sees what, audited views and changes,
times in the participant's zone, bounded query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cohorts.models import AuditEvent, ParticipantContact, Role
from messaging.models import InboundMessage, Message, Reason
from tests.factories import MembershipFactory, ParticipantFactory, SiteFactory, StudyFactory
from tests.fixtures.messaging import give_contact

pytestmark = pytest.mark.django_db

PHONE = "+33612345678"
EMAIL = "sam.sample@example.net"


@pytest.fixture
def setup():
    study = StudyFactory(slug="alpha", name="Alpha Study")
    north, south = SiteFactory(study=study, code="north"), SiteFactory(study=study, code="south")
    participant = ParticipantFactory(study=study, site=north, code="ALPHA-001", timezone="America/New_York")
    contact = give_contact(participant, phone=PHONE, email=EMAIL)
    message = Message.objects.create(
        study=study, participant=participant, reason=Reason.PROMPT, dedupe_key="prompt:1", channel="sms",
        body="Alpha Study: time for your morning readings", status=Message.Status.DELIVERED,
        provider_id="SMdelivered1", attempts=1, local_day=dt.date(2026, 3, 2),
        created_at=dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC),
        sent_at=dt.datetime(2026, 3, 2, 12, 0, 5, tzinfo=dt.UTC),
    )  # fmt: skip
    InboundMessage.objects.create(
        study=study, participant=participant, provider_id="SMin1", body="Where is my cuff?"
    )
    other = StudyFactory(slug="bravo", name="Bravo Study")
    users = {
        "coordinator": MembershipFactory(study=study, role=Role.COORDINATOR).user,
        "north_coordinator": MembershipFactory(study=study, role=Role.COORDINATOR, site=north).user,
        "south_coordinator": MembershipFactory(study=study, role=Role.COORDINATOR, site=south).user,
        "data_manager": MembershipFactory(study=study, role=Role.DATA_MANAGER).user,
        "investigator": MembershipFactory(study=study, role=Role.INVESTIGATOR).user,
        "other_coordinator": MembershipFactory(study=other, role=Role.COORDINATOR).user,
    }
    return participant, contact, message, users


def contact_url(contact):
    return reverse("admin:cohorts_participantcontact_change", args=[contact.pk])


@pytest.mark.parametrize("role", ["coordinator", "north_coordinator"])
def test_coordinators_list_contacts_without_seeing_values(client, setup, role):
    _participant, contact, _message, users = setup
    client.force_login(users[role])

    page = client.get(reverse("admin:cohorts_participantcontact_changelist")).content.decode()

    assert "ALPHA-001" in page
    assert EMAIL not in page
    assert "612345678" not in page
    page = client.get(contact_url(contact)).content.decode()
    assert "Show contact details" in page
    assert EMAIL not in page
    assert "612345678" not in page
    assert not AuditEvent.objects.filter(action="contact.viewed").exists()


def test_show_contact_details_is_audited_and_shows_the_values(client, setup):
    participant, contact, _message, users = setup
    client.force_login(users["coordinator"])

    page = client.post(contact_url(contact), {"_show": "1"}).content.decode()

    assert EMAIL in page
    assert PHONE in page
    audit = AuditEvent.objects.get(action="contact.viewed")
    assert (audit.actor, audit.participant) == (users["coordinator"], participant)
    assert EMAIL not in str(audit.detail)


def test_a_coordinator_changes_the_details_audited_without_values(client, setup):
    _participant, contact, _message, users = setup
    client.force_login(users["coordinator"])

    response = client.post(
        contact_url(contact),
        {"_save_contact": "1", "email": "new@example.net", "phone": PHONE, "preferred_channel": "email",
         "language": "es", "reminders_opt_in": "on"},
    )  # fmt: skip

    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.email, contact.preferred_channel, contact.language) == ("new@example.net", "email", "es")
    audit = AuditEvent.objects.get(action="contact.changed")
    assert audit.detail["via"] == "coordinator"
    assert audit.detail["fields"] == ["email", "language", "preferred_channel"]
    assert "new@example.net" not in str(audit.detail)


@pytest.mark.parametrize("role", ["data_manager", "investigator", "south_coordinator", "other_coordinator"])
def test_other_roles_see_no_contact_details_and_change_nothing(client, setup, role):
    _participant, contact, _message, users = setup
    client.force_login(users[role])

    listing = client.get(reverse("admin:cohorts_participantcontact_changelist"))
    if role in ("data_manager", "investigator"):
        assert listing.status_code == 403
    else:
        assert "ALPHA-001" not in listing.content.decode()
    for data in ({"_show": "1"}, {"_save_contact": "1", "email": "hijack@example.net", "phone": ""}):
        response = client.post(contact_url(contact), data, follow=True)
        body = response.content.decode()
        assert EMAIL not in body
        assert "612345678" not in body
    contact.refresh_from_db()
    assert (contact.email, contact.phone) == (EMAIL, PHONE)
    assert not AuditEvent.objects.filter(action__in=["contact.viewed", "contact.changed"]).exists()


def test_the_delivery_log_shows_times_in_the_participants_zone_and_the_text_to_coordinators_only(
    client, setup
):
    participant, _contact, message, users = setup
    changelist = reverse("admin:messaging_message_changelist") + f"?participant__id__exact={participant.pk}"
    client.force_login(users["coordinator"])

    page = client.get(changelist).content.decode()
    assert "2026-03-02 07:00 (America/New_York)" in page
    assert "SMdelivered1" in page
    assert "612345678" not in page
    detail = client.get(reverse("admin:messaging_message_change", args=[message.pk])).content.decode()
    assert "time for your morning readings" in detail

    for role in ("data_manager", "investigator"):
        client.force_login(users[role])
        page = client.get(changelist).content.decode()
        assert "SMdelivered1" in page  # they see the log
        detail = client.get(reverse("admin:messaging_message_change", args=[message.pk])).content.decode()
        assert "time for your morning readings" not in detail  # not the text
        assert client.get(reverse("admin:messaging_inboundmessage_changelist")).status_code == 403


def test_another_studys_coordinator_sees_no_message(client, setup):
    participant, _contact, message, users = setup
    client.force_login(users["other_coordinator"])
    for name in ("message", "inboundmessage"):
        page = client.get(
            reverse(f"admin:messaging_{name}_changelist") + f"?participant__id__exact={participant.pk}"
        )
        assert "ALPHA-001" not in page.content.decode()
    response = client.get(reverse("admin:messaging_message_change", args=[message.pk]), follow=True)
    assert "SMdelivered1" not in response.content.decode()


def test_inbound_texts_are_visible_to_the_participants_coordinators(client, setup):
    *_rest, users = setup
    client.force_login(users["north_coordinator"])
    assert (
        "Where is my cuff?"
        in client.get(reverse("admin:messaging_inboundmessage_changelist")).content.decode()
    )
    client.force_login(users["south_coordinator"])
    assert (
        "Where is my cuff?"
        not in client.get(reverse("admin:messaging_inboundmessage_changelist")).content.decode()
    )


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_changelist_query_counts_do_not_grow_with_rows(client, setup):
    participant, _contact, _message, users = setup
    client.force_login(users["coordinator"])
    urls = [
        reverse("admin:messaging_message_changelist"),
        reverse("admin:cohorts_participantcontact_changelist"),
        reverse("admin:messaging_inboundmessage_changelist"),
    ]
    small = [_queries(client, url) for url in urls]
    for index in range(30):
        other = ParticipantFactory(study=participant.study, site=participant.site, code=f"ALPHA-1{index:02d}")
        give_contact(other, phone=f"+336123450{index:02d}")
        Message.objects.create(study=other.study, participant=other, reason=Reason.PROMPT, dedupe_key="p",
                               channel="sms", local_day=dt.date(2026, 3, 2))  # fmt: skip
        InboundMessage.objects.create(
            study=other.study, participant=other, provider_id=f"SMx{index}", body="hi"
        )
    large = [_queries(client, url) for url in urls]
    assert small == large
    assert max(large) <= 12
    assert ParticipantContact.objects.count() == 31


def test_the_participant_page_links_to_the_contact_page_without_values(client, setup):
    participant, contact, _message, users = setup
    client.force_login(users["coordinator"])
    page = client.get(reverse("admin:cohorts_participant_change", args=[participant.pk])).content.decode()
    assert contact_url(contact) in page
    assert EMAIL not in page
    assert "612345678" not in page


# -- adding contact details for a participant who has none ----------------------------------------


@pytest.fixture
def bare(setup):
    """ALPHA-002 at the north site, with no contact details."""
    participant, _contact, _message, users = setup
    return ParticipantFactory(study=participant.study, site=participant.site, code="ALPHA-002"), users


def add_url(participant):
    return reverse("admin:cohorts_participantcontact_add_for", args=[participant.pk])


NEW_DETAILS = {"_save_contact": "1", "email": "new.person@example.net", "phone": "+33612345679",
               "preferred_channel": "sms", "language": "en", "reminders_opt_in": "on"}  # fmt: skip


@pytest.mark.parametrize("role", ["coordinator", "north_coordinator"])
def test_a_coordinator_adds_contact_details_for_a_participant_who_has_none(client, bare, role):
    participant, users = bare
    client.force_login(users[role])
    page = client.get(reverse("admin:cohorts_participant_change", args=[participant.pk])).content.decode()
    assert add_url(participant) in page  # "none given · Add contact details…"
    assert "Add contact details of ALPHA-002" in client.get(add_url(participant)).content.decode()

    response = client.post(add_url(participant), NEW_DETAILS)

    contact = ParticipantContact.objects.get(participant=participant)
    assert response.status_code == 302
    assert response["Location"] == contact_url(contact)
    assert (contact.email, contact.phone, contact.preferred_channel, contact.reminders_opt_in) == (
        "new.person@example.net", "+33612345679", "sms", True,
    )  # fmt: skip
    assert contact.opted_in_at is not None
    audit = AuditEvent.objects.get(action="contact.created", participant=participant)
    assert (audit.actor, audit.detail["via"], audit.detail["has_phone"]) == (users[role], "coordinator", True)
    assert "new.person@example.net" not in str(audit.detail)
    assert "612345679" not in str(audit.detail)
    # Encrypted at rest: the column does not hold the address.
    with connection.cursor() as cursor:
        cursor.execute("SELECT email, phone FROM cohorts_participantcontact WHERE id = %s", [contact.pk])
        raw = " ".join(str(v) for v in cursor.fetchone())
    assert "new.person@example.net" not in raw
    assert "612345679" not in raw
    # Once there are details, the add page leads to them (no second record, no overwrite).
    again = client.post(add_url(participant), {**NEW_DETAILS, "email": "other@example.net"})
    assert again["Location"] == contact_url(contact)
    contact.refresh_from_db()
    assert contact.email == "new.person@example.net"


def test_an_invalid_number_is_a_clear_error_and_nothing_is_created(client, bare):
    participant, users = bare
    client.force_login(users["coordinator"])

    response = client.post(add_url(participant), {**NEW_DETAILS, "phone": "12"})

    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert not ParticipantContact.objects.filter(participant=participant).exists()
    assert not AuditEvent.objects.filter(action="contact.created", participant=participant).exists()


@pytest.mark.parametrize("role", ["data_manager", "investigator", "south_coordinator", "other_coordinator"])
def test_other_roles_cannot_add_contact_details(client, bare, role):
    participant, users = bare
    client.force_login(users[role])

    get = client.get(add_url(participant))
    post = client.post(add_url(participant), NEW_DETAILS, follow=True)

    assert get.status_code in (302, 403)
    assert "Add contact details of" not in post.content.decode()
    assert not ParticipantContact.objects.filter(participant=participant).exists()
    assert not AuditEvent.objects.filter(action="contact.created", participant=participant).exists()


def test_no_contact_details_are_added_for_a_withdrawn_participant(client, bare):
    from cohorts.models import Participant

    participant, users = bare
    Participant.objects.filter(pk=participant.pk).update(status=Participant.Status.WITHDRAWN)
    client.force_login(users["coordinator"])

    client.post(add_url(participant), NEW_DETAILS)

    assert not ParticipantContact.objects.filter(participant=participant).exists()


def test_a_bounced_text_shows_in_the_delivery_log_and_flags_the_contact(client, setup, settings):
    from messaging.receipts import receipt_receive

    settings.MESSAGING_FLAG_AFTER_FAILURES = 3
    participant, contact, message, users = setup
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SENT, provider_id="SMbounce1")
    client.force_login(users["coordinator"])
    before = client.get(contact_url(contact)).content.decode()
    assert '<th scope="row">Keeps failing</th><td>—</td>' in before

    receipt_receive("SMbounce1", "undelivered", "30005")  # Twilio: unknown number

    log = client.get(
        reverse("admin:messaging_message_changelist") + f"?participant__id__exact={participant.pk}"
    ).content.decode()
    assert "Bounced" in log
    assert "Bounced: unknown number (Twilio 30005)" in log
    page = client.get(contact_url(contact)).content.decode()
    assert '<th scope="row">Keeps failing</th><td>mobile</td>' in page
    listing = client.get(reverse("admin:cohorts_participantcontact_changelist")).content.decode()
    assert "mobile" in listing
