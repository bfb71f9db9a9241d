"""The notification webhook: inbox first, answer at once, process after commit, coalesce, never trust."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from cohorts.models import Participant, Role
from measurements.models import BloodPressureReading
from tests.factories import MembershipFactory
from tests.fixtures.withings import after_identical_call_window, linked_connection
from withings.models import Notification, WithingsConnection
from withings.sandbox import bp_group
from withings.services.notifications import notify_secret
from withings.services.sync import connection_backfill_step

pytestmark = pytest.mark.django_db


def notify_url(secret: str | None = None) -> str:
    return reverse("withings_notify", args=[secret or notify_secret()])


def getmeas_calls(sandbox) -> int:
    return sum(1 for e in sandbox.state.request_log() if e.get("action") == "getmeas")


def test_head_and_get_answer_200_for_the_subscription_check(client):
    assert client.head(notify_url()).status_code == 200
    assert client.get(notify_url()).status_code == 200


def test_a_forged_secret_gets_404_and_nothing_is_stored(client):
    for method in (client.head, client.get):
        assert method(notify_url("not-the-secret")).status_code == 404
    response = client.post(notify_url("not-the-secret"), {"userid": "123", "appli": "4"})
    assert response.status_code == 404
    assert not Notification.objects.exists()


def test_unknown_user_is_recorded_answered_and_ignored(client, sandbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            notify_url(), {"userid": "99999", "appli": "4", "startdate": "1", "enddate": "2"}
        )
    assert response.status_code == 200
    notification = Notification.objects.get()
    assert (notification.userid, notification.status) == ("99999", Notification.Status.IGNORED)
    assert notification.connection is None
    assert callbacks == []
    assert getmeas_calls(sandbox) == 0


def test_malformed_payloads_store_nothing(client):
    for data in ({}, {"userid": "abc"}, {"userid": "1; DROP TABLE"}, {"appli": "4"}):
        assert client.post(notify_url(), data).status_code == 400
    assert not Notification.objects.exists()


def test_processing_happens_after_commit_and_fetches_through_the_api(
    client, sandbox, django_capture_on_commit_callbacks
):
    connection = linked_connection(sandbox)
    connection_backfill_step(connection_id=connection.pk)  # nothing yet: sets the watermark
    sandbox.clock.advance(60)
    sandbox.state.cuff_sync(
        connection.withings_userid, [bp_group(144, 93, 71, date=int(sandbox.clock()) - 30)], deliver=False
    )
    payload = {"userid": connection.withings_userid, "appli": "4", "startdate": "1", "enddate": "2"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.post(notify_url(), payload).status_code == 200
    assert len(callbacks) == 1
    assert not BloodPressureReading.objects.exists()  # nothing before commit
    callbacks[0]()
    reading = BloodPressureReading.objects.get()
    assert (reading.systolic, reading.diastolic, reading.pulse) == (144, 93, 71)
    notification = Notification.objects.get()
    assert notification.status == Notification.Status.PROCESSED
    assert notification.processed_at is not None


def test_duplicate_deliveries_are_stored_once(client, sandbox, django_capture_on_commit_callbacks):
    connection = linked_connection(sandbox)
    payload = {"userid": connection.withings_userid, "appli": "4", "startdate": "10", "enddate": "20"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for _ in range(3):
            assert client.post(notify_url(), payload).status_code == 200
    assert Notification.objects.count() == 1
    assert len(callbacks) == 1


@pytest.mark.parametrize("deliveries", [100, pytest.param(1000, marks=pytest.mark.slow)])
def test_a_burst_of_deliveries_is_coalesced_per_user_and_nothing_is_lost(
    client, sandbox, django_capture_on_commit_callbacks, deliveries
):
    connections = [linked_connection(sandbox) for _ in range(5)]
    for c in connections:
        connection_backfill_step(connection_id=c.pk)
    sandbox.clock.advance(60)
    for i, c in enumerate(connections):
        sandbox.state.cuff_sync(
            c.withings_userid, [bp_group(120 + i, 80, 60, date=int(sandbox.clock()) - 20)], deliver=False
        )
    before = getmeas_calls(sandbox)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for n in range(deliveries):
            c = connections[n % 5]
            payload = {"userid": c.withings_userid, "appli": "4", "startdate": str(n), "enddate": str(n + 1)}
            assert client.post(notify_url(), payload).status_code == 200
    assert Notification.objects.filter(status=Notification.Status.PENDING).count() == deliveries
    for callback in callbacks:
        callback()
    assert getmeas_calls(sandbox) - before == 5  # one fetch per user, not per delivery
    assert Notification.objects.filter(status=Notification.Status.PROCESSED).count() == deliveries
    assert BloodPressureReading.objects.count() == 5
    for i, c in enumerate(connections):
        assert BloodPressureReading.objects.get(participant=c.participant).systolic == 120 + i


def test_unlink_event_is_verified_then_marks_the_link_and_alerts_coordinators(
    client, sandbox, django_capture_on_commit_callbacks
):
    connection = linked_connection(sandbox)
    participant = connection.participant
    participant.link_status = Participant.LinkStatus.ACTIVE
    participant.save()
    coordinator = MembershipFactory(study=participant.study, role=Role.COORDINATOR).user
    MembershipFactory(role=Role.COORDINATOR)  # another study's coordinator
    payload = {"userid": connection.withings_userid, "appli": "46", "action": "unlink", "date": "5"}

    # Forged (the grant still works): nothing changes.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(notify_url(), payload)
    connection.refresh_from_db()
    assert connection.status == WithingsConnection.Status.ACTIVE
    assert mail.outbox == []

    # Real: the participant removed our access at Withings.
    sandbox.state.revoke_user(connection.withings_userid, sandbox.client_id)
    after_identical_call_window()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(notify_url(), {**payload, "date": "6"})
    connection.refresh_from_db()
    participant.refresh_from_db()
    assert connection.status == WithingsConnection.Status.NEEDS_REAUTH
    assert participant.link_status == Participant.LinkStatus.NEEDS_REAUTH
    assert [m.to for m in mail.outbox] == [[coordinator.email]]
    assert participant.code in mail.outbox[0].subject


def test_the_same_delivery_after_processing_is_stored_again_and_fetches_the_change(
    client, sandbox, django_capture_on_commit_callbacks
):
    """Withings retries an unanswered delivery with the same payload, but a later change in the same
    window (a reading edited upstream) also arrives with the same payload: once the first one is
    processed, the identical payload must not be dropped as a retry."""
    connection = linked_connection(sandbox)
    connection_backfill_step(connection_id=connection.pk)
    sandbox.clock.advance(60)
    when = int(sandbox.clock()) - 30
    sandbox.state.cuff_sync(connection.withings_userid, [bp_group(140, 90, 70, date=when)], deliver=False)
    payload = {
        "userid": connection.withings_userid,
        "appli": "4",
        "startdate": str(when),
        "enddate": str(when + 1),
    }
    with django_capture_on_commit_callbacks(execute=True):
        client.post(notify_url(), payload)
    reading = BloodPressureReading.objects.get()
    assert reading.systolic == 140

    sandbox.clock.advance(60)
    (stored,) = sandbox.state.groups(connection.withings_userid)
    edited = [dict(m, value=15000) if m["type"] == 10 else m for m in stored["measures"]]
    sandbox.state.modify_group(connection.withings_userid, stored["grpid"], measures=edited)
    after_identical_call_window()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(notify_url(), payload).status_code == 200
    assert Notification.objects.filter(status=Notification.Status.PROCESSED).count() == 2
    reading.refresh_from_db()
    assert reading.systolic == 150
    assert reading.edited_upstream is True
