"""With a real Celery worker on Redis: link → back-fill; cuff sync → notification → reading; and a
worker killed with SIGKILL in the middle of a back-fill loses nothing and duplicates nothing."""

from __future__ import annotations

import time

import pytest

from measurements.models import BloodPressureReading
from tests.fixtures.withings import bp_groups_visible, linked_connection
from tests.integration.conftest import wait_for
from withings.models import Notification, WithingsConnection
from withings.sandbox import bp_group
from withings.tasks import after_link

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def stored_grpids(participant) -> list[int]:
    return list(BloodPressureReading.objects.filter(participant=participant).values_list("grpid", flat=True))


def test_link_backfill_then_a_cuff_sync_arrives_through_the_webhook(celery_worker_factory, sandbox):
    celery_worker_factory()
    connection = linked_connection(sandbox)
    uid = connection.withings_userid
    sandbox.state.generate_readings(uid, start=sandbox.clock() - 14 * 86400, days=14, seed=3)
    expected = bp_groups_visible(sandbox, uid)

    after_link.delay(connection.pk)
    wait_for(lambda: set(stored_grpids(connection.participant)) == expected, timeout=60, what="back-fill")
    connection = wait_for(
        lambda: WithingsConnection.objects.filter(pk=connection.pk, subscription_state="subscribed").first(),
        timeout=30,
        what="subscription",
    )
    subscribed = {(s["appli"], s["callbackurl"]) for s in sandbox.state.subscriptions(uid)}
    assert {a for a, _ in subscribed} == {4, 46}

    sandbox.clock.advance(120)
    sent = time.monotonic()
    sandbox.state.cuff_sync(uid, [bp_group(152, 97, 74, date=int(sandbox.clock()) - 40)], wait=True)
    reading = wait_for(
        lambda: BloodPressureReading.objects.filter(participant=connection.participant, systolic=152).first(),
        timeout=30,
        what="the new reading",
    )
    lag = time.monotonic() - sent
    assert (reading.diastolic, reading.pulse) == (97, 74)
    assert lag < 10, f"notification → stored took {lag:.1f}s"
    # The reading commits with its page; the notification is marked processed by the same task
    # right after, so it may still read pending for a moment.
    wait_for(
        lambda: Notification.objects.filter(appli=4, status=Notification.Status.PROCESSED).exists(),
        timeout=10,
        what="the notification marked processed",
    )
    grpids = stored_grpids(connection.participant)
    assert len(grpids) == len(set(grpids)) == len(expected) + 1


def test_a_worker_killed_mid_backfill_loses_and_duplicates_nothing(celery_worker_factory, sandbox):
    sandbox.state.page_size = 5
    sandbox.state.set_fault("slow", endpoint="measure", delay=0.25)
    connection = linked_connection(sandbox)
    uid = connection.withings_userid
    sandbox.state.generate_readings(uid, start=sandbox.clock() - 40 * 86400, days=40, seed=11)
    expected = bp_groups_visible(sandbox, uid)
    assert len(expected) > 100

    worker = celery_worker_factory()
    from withings.tasks import backfill_step

    backfill_step.delay(connection.pk)
    wait_for(lambda: len(stored_grpids(connection.participant)) >= 20, timeout=60, what="back-fill under way")
    worker.kill()
    partial = len(stored_grpids(connection.participant))
    assert 0 < partial < len(expected)

    celery_worker_factory()  # a fresh worker gets the unacknowledged task back
    wait_for(
        lambda: WithingsConnection.objects.filter(
            pk=connection.pk, backfill_completed_at__isnull=False
        ).exists(),
        timeout=120,
        what="back-fill completion after the kill",
    )
    grpids = stored_grpids(connection.participant)
    assert len(grpids) == len(set(grpids))
    assert set(grpids) == expected
