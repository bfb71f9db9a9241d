"""Every time on the staff pages is the participant's wall clock with its zone (or UTC, labelled):
readings near midnight across both 2026 DST changes of Europe/Berlin land on the participant's day."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from cohorts.models import AuditEvent, Role
from measurements.models import Alert, Device
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC
#: UTC instant → what staff must read.
NEAR_MIDNIGHT = {
    dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC): "2026-03-29 00:30 CET",
    dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC): "2026-03-29 03:30 CEST",
    dt.datetime(2026, 10, 24, 22, 30, tzinfo=UTC): "2026-10-25 00:30 CEST",
    dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC): "2026-10-25 02:30 CET",
}


@pytest.fixture
def berliner():
    membership = MembershipFactory(role=Role.COORDINATOR)
    participant = ParticipantFactory(study=membership.study, code="B-001", timezone="Europe/Berlin")
    for instant in NEAR_MIDNIGHT:
        ReadingFactory(participant=participant, measured_at=instant)
    return membership.user, participant


def test_participant_page_shows_readings_in_the_participants_zone(client, berliner):
    user, participant = berliner
    opened = dt.datetime(2026, 3, 28, 23, 5, tzinfo=UTC)
    Alert.objects.create(
        study=participant.study, participant=participant, kind=Alert.Kind.NO_DATA, episode_key="x",
        opened_at=opened,
    )  # fmt: skip
    Device.objects.create(
        participant=participant, device_id="d1", last_session_at=dt.datetime(2026, 10, 25, 0, 10, tzinfo=UTC)
    )
    AuditEvent.objects.create(
        action="withings.linked", study=participant.study, participant=participant, actor_label="system",
        created_at=dt.datetime(2026, 3, 29, 22, 15, tzinfo=UTC),
    )  # fmt: skip
    client.force_login(user)
    url = reverse("admin:measurements_monitoredparticipant_change", args=[participant.pk])
    html = client.get(url).content.decode()
    for shown in NEAR_MIDNIGHT.values():
        assert f">{shown}</time>" in html
    assert "Time (Europe/Berlin)" in html
    assert ">2026-03-29 00:05 CET</time>" in html  # the alert
    assert ">2026-10-25 02:10 CEST</time>" in html  # the cuff's last sync
    assert ">2026-03-30 00:15 CEST</time>" in html  # the link history
    # Nothing in UTC without saying so: the UTC wall clock of the readings appears nowhere.
    for instant in NEAR_MIDNIGHT:
        assert f"{instant:%Y-%m-%d %H:%M}" not in html


def test_alert_list_and_worklist_show_the_participants_zone(client, berliner):
    user, participant = berliner
    alert = Alert.objects.create(
        study=participant.study, participant=participant, kind=Alert.Kind.CRISIS, episode_key="c",
        opened_at=dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    )  # fmt: skip
    client.force_login(user)
    alerts = client.get(reverse("admin:measurements_alert_changelist")).content.decode()
    assert ">2026-10-25 02:30 CET</time>" in alerts
    ack = client.get(reverse("admin:measurements_alert_acknowledge", args=[alert.pk])).content.decode()
    assert ">2026-10-25 02:30 CET</time>" in ack
    worklist = client.get(reverse("admin:measurements_monitoring_worklist")).content.decode()
    assert ">2026-10-25 02:30 CET</time>" in worklist  # its last reading


def test_cohorts_lists_show_the_participants_zone_and_label_utc(client, berliner):
    user, participant = berliner
    participant.enrolled_at = dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    participant.save(update_fields=["enrolled_at"])
    AuditEvent.objects.create(action="study.viewed", study=participant.study, actor_label="x",
                              created_at=dt.datetime(2026, 3, 28, 23, 40, tzinfo=UTC))  # fmt: skip
    client.force_login(user)
    people = client.get(reverse("admin:cohorts_participant_changelist")).content.decode()
    assert ">2026-03-29 00:30 CET</time>" in people
    audit = client.get(reverse("admin:cohorts_auditevent_changelist")).content.decode()
    assert ">2026-03-28 23:40 UTC</time>" in audit  # no participant: UTC, labelled
