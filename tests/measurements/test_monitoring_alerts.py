"""Alerts: raised once per episode, e-mailed to the participant's coordinators only, resolved when
the condition clears, acknowledgement audited; other studies never see or receive anything."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection as db_connection
from django.utils.timezone import now

from cohorts.models import AuditEvent, Participant, Role
from measurements.models import Alert, Device, StudyProtocol
from measurements.monitoring.alerts import alert_acknowledge, alerts_evaluate
from measurements.readings.parse import parse_groups
from measurements.readings.upsert import readings_upsert_api
from tests.factories import (
    MembershipFactory,
    ParticipantFactory,
    ReadingFactory,
    SiteFactory,
    StudyFactory,
    WithingsConnectionFactory,
)
from tests.measurements.test_parsing_and_upsert import bp_group

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    study = StudyFactory(slug="alpha")
    north, south = SiteFactory(study=study, code="north"), SiteFactory(study=study, code="south")
    StudyProtocol.objects.create(study=study, duration_days=None, crisis_systolic=180, crisis_diastolic=120)
    participant = ParticipantFactory(
        study=study, site=north, code="A-001", start_date=now().date() - dt.timedelta(days=20)
    )
    people = {
        "coordinator": MembershipFactory(study=study, role=Role.COORDINATOR).user,
        "north": MembershipFactory(study=study, role=Role.COORDINATOR, site=north).user,
        "south": MembershipFactory(study=study, role=Role.COORDINATOR, site=south).user,
        "investigator": MembershipFactory(study=study, role=Role.INVESTIGATOR).user,
    }
    other = StudyFactory(slug="bravo")
    people["other"] = MembershipFactory(study=other, role=Role.COORDINATOR).user
    ParticipantFactory(study=other, code="B-001", start_date=now().date() - dt.timedelta(days=20))
    return participant, people


def ingest(participant, grpid, sys, dia, when=None):
    group = bp_group(grpid=grpid, sys=(sys, 0), dia=(dia, 0))
    stamp = int((when or now() - dt.timedelta(hours=1)).timestamp())
    group.update(date=stamp, created=stamp, modified=stamp)
    readings_upsert_api(participant_id=participant.pk, readings=parse_groups([group]).readings)


def recipients() -> list[list[str]]:
    return sorted(sorted(m.to) for m in mail.outbox)


def test_crisis_raised_once_per_episode_and_mailed_to_the_participants_coordinators_only(
    world, django_capture_on_commit_callbacks
):
    participant, people = world
    with django_capture_on_commit_callbacks(execute=True):
        ingest(participant, 1, 185, 100)
    alert = Alert.objects.get()
    assert (alert.kind, alert.participant, alert.occurrences) == (Alert.Kind.CRISIS, participant, 1)
    assert Decimal(alert.detail["systolic"]) == 185
    assert recipients() == [sorted([people["coordinator"].email, people["north"].email])]
    assert "A-001" in mail.outbox[0].subject
    assert "bravo" not in mail.outbox[0].body
    assert people["other"].email not in mail.outbox[0].to

    # More crisis readings while the episode is open: counted, not raised or mailed again.
    with django_capture_on_commit_callbacks(execute=True):
        ingest(participant, 2, 150, 125)
        ingest(participant, 2, 150, 125)  # the same group again changes nothing
    assert Alert.objects.count() == 1
    assert Alert.objects.get().occurrences == 2
    assert len(mail.outbox) == 1

    # Not a crisis: exactly 180/120. Old history (a back-fill) raises nothing either.
    acked = alert_acknowledge(
        actor=people["north"], alert_id=alert.pk, note="Called, repeated 150/95.", outcome="contacted"
    )
    assert acked.resolved_at is not None
    assert acked.resolution == Alert.Resolution.ACKNOWLEDGED
    with django_capture_on_commit_callbacks(execute=True):
        ingest(participant, 3, 180, 120)
        ingest(participant, 4, 200, 130, when=now() - dt.timedelta(days=30))
    assert Alert.objects.count() == 1
    assert len(mail.outbox) == 1

    # After acknowledgement a new crisis is a new episode.
    with django_capture_on_commit_callbacks(execute=True):
        ingest(participant, 5, 190, 100)
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 1
    assert Alert.objects.count() == 2
    assert len(mail.outbox) == 2


def test_acknowledgement_is_audited_and_only_for_the_studys_coordinators(world):
    participant, people = world
    ingest(participant, 1, 185, 100)
    alert = Alert.objects.get()
    before = AuditEvent.objects.filter(action="alert.acknowledged").count()
    for who in ("south", "investigator", "other"):
        with pytest.raises(PermissionDenied):
            alert_acknowledge(
                actor=people[who], alert_id=alert.pk, note="should not stick", outcome="contacted"
            )
    alert.refresh_from_db()
    assert (alert.acknowledged_at, alert.note, alert.resolved_at) == (None, "", None)
    assert AuditEvent.objects.filter(action="alert.acknowledged").count() == before

    alert_acknowledge(
        actor=people["coordinator"], alert_id=alert.pk, note="  Seen; GP informed.  ", outcome="advised_care"
    )
    event = AuditEvent.objects.get(action="alert.acknowledged")
    assert (event.actor, event.participant, event.study) == (
        people["coordinator"],
        participant,
        participant.study,
    )
    assert event.detail == {
        "alert": alert.pk,
        "kind": "crisis",
        "outcome": "advised_care",
        "step": 0,
        "late": False,
        "note": "Seen; GP informed.",
    }
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.note) == (people["coordinator"], "Seen; GP informed.")
    with pytest.raises(ValidationError):
        alert_acknowledge(actor=people["coordinator"], alert_id=alert.pk, note="again", outcome="contacted")


def test_no_data_raised_once_then_resolved_when_readings_come_back(world, django_capture_on_commit_callbacks):
    participant, people = world
    ReadingFactory(participant=participant, measured_at=now() - dt.timedelta(days=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_evaluate(study_id=participant.study_id).raised == 1
        assert alerts_evaluate(study_id=participant.study_id).raised == 0
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.NO_DATA
    assert alert.occurrences == 1
    assert len(mail.outbox) == 1
    # Acknowledged: still open (a state) and never mailed again while the condition holds.
    alert_acknowledge(actor=people["coordinator"], alert_id=alert.pk, note="On holiday until Monday.")
    alerts_evaluate(study_id=participant.study_id)
    alert.refresh_from_db()
    assert alert.resolved_at is None
    assert len(mail.outbox) == 1

    ReadingFactory(participant=participant, measured_at=now() - dt.timedelta(hours=2))
    result = alerts_evaluate(study_id=participant.study_id)
    assert (result.raised, result.resolved) == (0, 1)
    alert.refresh_from_db()
    assert alert.resolution == Alert.Resolution.CLEARED
    assert AuditEvent.objects.filter(action="alert.resolved", participant=participant).count() == 1


def test_participants_outside_monitoring_raise_nothing(world):
    participant, _ = world
    Participant.objects.filter(pk=participant.pk).update(status=Participant.Status.WITHDRAWN)
    ParticipantFactory(
        study=participant.study, status=Participant.Status.INVITED, start_date=dt.date(2024, 1, 1)
    )
    assert alerts_evaluate(study_id=participant.study_id).raised == 0
    assert not Alert.objects.exists()


def test_link_broken_from_the_withings_path_raised_once_and_resolved_on_relink(
    world, django_capture_on_commit_callbacks
):
    from withings.services.linkstate import link_status_record
    from withings.services.tokens import connection_mark_needs_reauth

    participant, people = world
    ReadingFactory(participant=participant, measured_at=now())
    conn = WithingsConnectionFactory(participant=participant)
    with django_capture_on_commit_callbacks(execute=True):
        assert connection_mark_needs_reauth(connection_id=conn.pk, reason="invalid_token")
        alerts_evaluate(study_id=participant.study_id)  # the hourly beat sees the same episode
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.LINK_BROKEN
    assert recipients() == [sorted([people["coordinator"].email, people["north"].email])]
    assert "A-001" in mail.outbox[0].subject

    link_status_record(
        participant_id=participant.pk, link_status=Participant.LinkStatus.ACTIVE, reason="linked"
    )
    alert.refresh_from_db()
    assert alert.resolution == Alert.Resolution.CLEARED


def test_subscription_lost_reported_by_withings(world, django_capture_on_commit_callbacks):
    from withings.models import WithingsConnection
    from withings.services.subscriptions import _set_state

    participant, _ = world
    Participant.objects.filter(pk=participant.pk).update(link_status=Participant.LinkStatus.ACTIVE)
    conn = WithingsConnectionFactory(participant=participant)
    with django_capture_on_commit_callbacks(execute=True):
        _set_state(conn.pk, WithingsConnection.SubscriptionState.MISSING)
        _set_state(conn.pk, WithingsConnection.SubscriptionState.MISSING)
    assert Alert.objects.get().kind == Alert.Kind.SUBSCRIPTION_LOST
    assert len(mail.outbox) == 1
    _set_state(conn.pk, WithingsConnection.SubscriptionState.SUBSCRIBED)
    assert Alert.objects.get().resolution == Alert.Resolution.CLEARED


def test_low_battery_and_cuff_not_synced(world):
    participant, _ = world
    ReadingFactory(participant=participant, measured_at=now())
    Device.objects.create(
        participant=participant,
        device_id="c" * 40,
        battery="low",
        last_session_at=now() - dt.timedelta(days=9),
    )
    alerts_evaluate(study_id=participant.study_id)
    assert set(Alert.objects.values_list("kind", flat=True)) == {
        Alert.Kind.LOW_BATTERY,
        Alert.Kind.CUFF_NOT_SYNCED,
    }
    Device.objects.update(battery="high", last_session_at=now())
    result = alerts_evaluate(study_id=participant.study_id)
    assert result.resolved == 2
    # Low-battery alerts can be switched off per study.
    StudyProtocol.objects.filter(study=participant.study).update(low_battery_alerts=False)
    Device.objects.update(battery="low")
    assert alerts_evaluate(study_id=participant.study_id).raised == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_evaluations_raise_one_alert(world):
    participant, _ = world
    ReadingFactory(participant=participant, measured_at=now() - dt.timedelta(days=6))
    barrier = threading.Barrier(6)
    errors = []

    def run():
        try:
            barrier.wait()
            alerts_evaluate(study_id=participant.study_id)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Alert.objects.filter(kind=Alert.Kind.NO_DATA).count() == 1
    assert AuditEvent.objects.filter(action="alert.raised").count() == 1
