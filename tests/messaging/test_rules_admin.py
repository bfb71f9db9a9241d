"""Coordinators preview the rules before they go live (audited), and edit wording as new versions
checked for unknown placeholders; other studies' staff and read-only roles change nothing."""

from __future__ import annotations

import datetime as dt
import time
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils.timezone import now

from cohorts.models import AuditEvent, Participant, ParticipantContact, Role
from messaging.links import MAX_AGE_DAYS, participant_link
from messaging.models import Message, MessageTemplate, StudyMessaging
from tests.factories import MembershipFactory, ParticipantFactory, StudyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    s = StudyFactory(slug="rules", name="Rules study", default_timezone="Europe/Berlin")
    StudyMessaging.objects.create(study=s)
    for i in range(3):
        p = ParticipantFactory(study=s, code=f"R-{i}", timezone="Europe/Berlin", start_date=now().date())
        ParticipantContact.objects.create(participant=p, phone=f"+4477009000{i:02d}", reminders_opt_in=True)
    return s


def coordinator(study, client, role=Role.COORDINATOR):
    user = MembershipFactory(study=study, role=role).user
    client.force_login(user)
    return user


def test_the_preview_shows_a_week_of_prompts_and_writes_nothing(client, study, django_assert_max_num_queries):
    coordinator(study, client)
    rules = StudyMessaging.objects.get(study=study)
    url = reverse("admin:messaging_studymessaging_preview", args=[rules.pk])
    with django_assert_max_num_queries(7 * 24 * 8 + 30):  # a bounded number of queries per hour
        response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    preview = response.context["preview"]
    # 3 participants x 2 windows a day over 7 days, the first (partial) day aside: at least 6 days.
    assert "prompt" in preview.reasons
    assert sum(n for (day, reason), n in preview.counts.items() if reason == "prompt") >= 3 * 2 * 6
    assert "time for your" in page
    assert "/messaging/m/" not in page  # samples leave the private link out
    assert not Message.objects.exists()
    assert not MessageTemplate.objects.exists()
    assert StudyMessaging.objects.get(pk=rules.pk).live_since is None
    assert "Go live" in page


def test_going_live_from_the_preview_is_audited(client, study):
    user = coordinator(study, client)
    rules = StudyMessaging.objects.get(study=study)
    response = client.post(reverse("admin:messaging_studymessaging_preview", args=[rules.pk]))
    assert response.status_code == 302
    rules.refresh_from_db()
    assert rules.live_since is not None
    event = AuditEvent.objects.get(action="messaging.rules_live")
    assert (event.actor_id, event.study_id) == (user.pk, study.pk)


@pytest.mark.parametrize("role", [Role.INVESTIGATOR, Role.DATA_MANAGER])
def test_read_only_roles_cannot_set_rules_live(client, study, role):
    coordinator(study, client, role=role)
    rules = StudyMessaging.objects.get(study=study)
    response = client.post(reverse("admin:messaging_studymessaging_preview", args=[rules.pk]))
    assert response.status_code == 403
    assert StudyMessaging.objects.get(pk=rules.pk).live_since is None
    assert not AuditEvent.objects.filter(action="messaging.rules_live").exists()


def test_another_studys_coordinator_sees_neither_preview_nor_rules(client, study):
    coordinator(StudyFactory(), client)
    rules = StudyMessaging.objects.get(study=study)
    assert client.get(reverse("admin:messaging_studymessaging_preview", args=[rules.pk])).status_code == 404
    assert client.post(reverse("admin:messaging_studymessaging_preview", args=[rules.pk])).status_code == 404
    assert StudyMessaging.objects.get(pk=rules.pk).live_since is None


def template_form(study, **changes) -> dict:
    data = {
        "study": study.pk,
        "reason": "prompt",
        "channel": "sms",
        "language": "en",
        "subject": "",
        "body": "{study}: please measure now ({window_start}-{window_end}).",
    }
    return {**data, **changes}


def test_saving_wording_adds_a_version_and_keeps_the_approved_one(client, study):
    user = coordinator(study, client)
    response = client.post(reverse("admin:messaging_messagetemplate_add"), template_form(study))
    assert response.status_code == 302
    first = MessageTemplate.objects.get(study=study)
    assert (first.version, first.created_by_id) == (1, user.pk)
    response = client.post(
        reverse("admin:messaging_messagetemplate_change", args=[first.pk]),
        {"subject": "", "body": "{study}: time to measure, {code}."},
    )
    assert response.status_code == 302
    versions = list(
        MessageTemplate.objects.filter(study=study).order_by("version").values_list("version", "body")
    )
    assert versions == [
        (1, "{study}: please measure now ({window_start}-{window_end})."),
        (2, "{study}: time to measure, {code}."),
    ]
    assert AuditEvent.objects.filter(action="messaging.template_version").count() == 2
    newest = MessageTemplate.objects.get(study=study, version=2)
    page = client.get(reverse("admin:messaging_messagetemplate_change", args=[newest.pk]))
    assert "Rules study: time to measure, SAMPLE-001." in page.content.decode()


def test_an_unknown_placeholder_is_a_form_error_and_nothing_is_saved(client, study):
    coordinator(study, client)
    response = client.post(
        reverse("admin:messaging_messagetemplate_add"),
        template_form(study, body="Hi {name}, measure at {window}."),
    )
    assert response.status_code == 200
    assert "Unknown placeholder {name}" in response.content.decode()
    assert not MessageTemplate.objects.exists()
    assert not AuditEvent.objects.filter(action="messaging.template_version").exists()


def test_wording_cannot_be_deleted(client, study):
    coordinator(study, client)
    client.post(reverse("admin:messaging_messagetemplate_add"), template_form(study))
    template = MessageTemplate.objects.get()
    response = client.post(
        reverse("admin:messaging_messagetemplate_delete", args=[template.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert MessageTemplate.objects.filter(pk=template.pk).exists()


def test_the_link_in_a_message_opens_the_relink_page_and_expires(client, study):
    p = Participant.objects.filter(study=study).first()
    Participant.objects.filter(pk=p.pk).update(link_status=Participant.LinkStatus.NEEDS_REAUTH)
    path = participant_link(p.pk).removeprefix(settings.PORTAL_BASE_URL)
    assert "Link my monitor again" in client.get(path).content.decode()
    response = client.post(path)
    assert response.status_code == 302
    assert response["Location"] == reverse("withings_connect")
    assert client.session["enrollment_participant_id"] == p.pk
    later = time.time() + (MAX_AGE_DAYS * 86400 + 60)
    with mock.patch("django.core.signing.time.time", return_value=later):
        assert client.get(path).status_code == 404
    assert client.get(reverse("messaging_participant_link", args=["forged"])).status_code == 404


def test_the_link_of_a_withdrawn_participant_offers_nothing(client, study):
    p = Participant.objects.filter(study=study).first()
    Participant.objects.filter(pk=p.pk).update(
        status=Participant.Status.WITHDRAWN, link_status=Participant.LinkStatus.REVOKED
    )
    path = participant_link(p.pk).removeprefix(settings.PORTAL_BASE_URL)
    assert "You have left the study" in client.get(path).content.decode()
    response = client.post(path)
    assert response.status_code == 200
    assert "enrollment_participant_id" not in client.session


def test_the_rules_page_shows_the_week_in_constant_queries(client, study, django_assert_max_num_queries):
    from measurements.models import DailyAdherence
    from measurements.monitoring.protocol import WEEK

    coordinator(study, client)
    rules = StudyMessaging.objects.get(study=study)
    today = now().astimezone(ZoneInfo("Europe/Berlin")).date()  # the participants' own today
    first = today - dt.timedelta(days=WEEK)
    people = list(Participant.objects.filter(study=study).order_by("code"))
    for i, p in enumerate(people):
        for d in range(7):
            DailyAdherence.objects.create(
                study=study,
                participant=p,
                day=first + dt.timedelta(days=d),
                counted=4 if i == 0 else 1,
                expected=4,
            )
    sent = now() - dt.timedelta(days=2)  # within the 7 complete days before today, in Berlin too
    base = {"study": study, "channel": "sms", "local_day": first, "sent_at": sent}
    Message.objects.create(participant=people[0], reason="prompt", dedupe_key="a", status="delivered", **base)
    Message.objects.create(participant=people[0], reason="no_data", dedupe_key="b", status="failed", **base)
    Message.objects.create(participant=people[1], reason="one_off", dedupe_key="c", status="sent", **base)
    with django_assert_max_num_queries(20):
        page = client.get(reverse("admin:messaging_studymessaging_change", args=[rules.pk])).content.decode()
    assert "3 sent (1 failed or bounced; delivery 67 %), 0 waiting." in page
    # R-0 was reminded (a prompt) and measured fully; R-1 (a one-off only) and R-2 a quarter.
    assert "reminded: 100 % (1 participants); not reminded: 25 % (2 participants)" in page
