"""Upstream faults during sync: bounded retries with backoff, a visible state when they persist,
and never a wrong needs_reauth or a lost notification."""

from __future__ import annotations

import pytest

from cohorts.models import Participant
from measurements.models import BloodPressureReading
from tests.fixtures.withings import after_identical_call_window, linked_connection, spy_countdowns
from withings.models import Notification, WithingsConnection
from withings.sandbox import bp_group
from withings.services.sync import connection_backfill_step
from withings.tasks import after_link, backfill_step, process_notification, refresh_devices, sync_connection

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager_retries(monkeypatch):
    """Eager mode runs retries at once (no countdown) when exceptions are not propagated."""
    from config.celery_app import app

    monkeypatch.setitem(app.conf, "task_eager_propagates", False)


def getmeas_calls(sandbox) -> int:
    return sum(1 for e in sandbox.state.request_log() if e.get("action") == "getmeas")


@pytest.fixture
def ready(sandbox):
    """A linked, back-filled connection with one new reading waiting upstream and its notification."""
    connection = linked_connection(sandbox)
    connection.participant.link_status = Participant.LinkStatus.ACTIVE
    connection.participant.save()
    connection_backfill_step(connection_id=connection.pk)
    sandbox.clock.advance(60)
    sandbox.state.cuff_sync(
        connection.withings_userid, [bp_group(139, 88, 70, date=int(sandbox.clock()) - 20)], deliver=False
    )
    notification = Notification.objects.create(
        dedupe_key="k", userid=connection.withings_userid, appli=4, connection=connection
    )
    return connection, notification


def test_every_withings_task_shares_one_bounded_jittered_retry_policy():
    from withings.errors import WithingsRateLimited, WithingsTransientError
    from withings.services.sync import SyncBusy, SyncTooSoon
    from withings.tasks import (
        WithingsTask,
        check_connection_subscriptions,
        refresh_connection,
        withdraw_participant,
    )

    tasks = (process_notification, sync_connection, backfill_step, after_link, refresh_devices,
             refresh_connection, check_connection_subscriptions, withdraw_participant)  # fmt: skip
    for task in tasks:
        assert isinstance(task, WithingsTask)
        assert task.acks_late is True
        assert 5 <= task.max_retries <= 8
    task = backfill_step
    for retries in range(8):
        task.push_request(retries=retries)
        try:
            for _ in range(20):
                # Never within the 10 s identical-call window, never beyond the 300 s cap (+ window).
                assert 10 <= task.countdown(WithingsTransientError("x")) <= 10 + min(300, 5 * 2**retries)
                assert 1 <= task.countdown(SyncBusy(1)) <= min(300, 5 * 2**retries)
                assert 7 <= task.countdown(WithingsRateLimited("601", wait_seconds=7)) < 12
                assert 3 <= task.countdown(SyncTooSoon(1, 3)) < 8
        finally:
            task.pop_request()


def test_a_refresh_never_retries_within_the_identical_call_window(sandbox, monkeypatch):
    from tests.withings.test_refresh_faults import due
    from withings.tasks import refresh_connection

    connection = due(linked_connection(sandbox))
    countdowns = spy_countdowns(monkeypatch, refresh_connection)
    sandbox.state.set_fault("522", endpoint="oauth2", count=2)
    assert refresh_connection.apply(args=[connection.pk]).get() == "refreshed"
    assert len(countdowns) == 2
    assert all(c >= 10 for c in countdowns), countdowns


@pytest.mark.parametrize("task", [process_notification, backfill_step])
def test_a_transient_fault_is_retried_after_the_identical_call_window(sandbox, ready, monkeypatch, task):
    connection, notification = ready
    sandbox.state.set_fault("http5xx", endpoint="measure", http_status=502, count=3)
    countdowns = spy_countdowns(monkeypatch, task)
    arg = notification.pk
    if task is backfill_step:
        WithingsConnection.objects.filter(pk=connection.pk).update(backfill_completed_at=None)
        arg = connection.pk
        after_identical_call_window()  # the fixture's back-fill sent this very page a moment ago
    task.apply(args=[arg]).get()
    assert len(countdowns) == 3
    # Never within Withings' 10 s identical-call window; backoff 5, 10, 20 s of jitter above it.
    assert all(10 <= c <= 10 + 5 * 2**i for i, c in enumerate(countdowns)), countdowns


@pytest.mark.parametrize(("task", "endpoint"), [(after_link, "notify"), (refresh_devices, "user")])
def test_link_time_tasks_retry_after_the_window_and_honour_a_601(sandbox, ready, monkeypatch, task, endpoint):
    connection, _notification = ready
    countdowns = spy_countdowns(monkeypatch, task)
    sandbox.state.set_fault("http5xx", endpoint=endpoint, http_status=502, count=2)
    task.apply(args=[connection.pk]).get()
    assert len(countdowns) == 2
    assert all(10 <= c <= 10 + 5 * 2**i for i, c in enumerate(countdowns)), countdowns

    countdowns.clear()
    after_identical_call_window()
    sandbox.state.set_fault("601", endpoint=endpoint, count=1, wait_seconds=2)
    task.apply(args=[connection.pk]).get()
    assert len(countdowns) == 1
    assert 2 <= countdowns[0] < 7  # what Withings asked for (+ jitter), not the transient backoff


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("522", {}),
        ("http5xx", {"http_status": 502}),
        ("timeout", {"delay": 1.5}),
        ("601", {"wait_seconds": 1}),
    ],
)
def test_a_passing_fault_is_retried_and_the_reading_arrives(sandbox, settings, ready, kind, options):
    settings.WITHINGS_HTTP_TIMEOUT = 1
    connection, notification = ready
    sandbox.state.set_fault(kind, endpoint="measure", count=2, **options)
    before = getmeas_calls(sandbox)
    assert process_notification.apply(args=[notification.pk]).get() == "synced"
    assert BloodPressureReading.objects.filter(participant=connection.participant, systolic=139).count() == 1
    notification.refresh_from_db()
    assert notification.status == Notification.Status.PROCESSED
    if kind != "timeout":  # a client-side timeout may never reach the sandbox's log
        assert getmeas_calls(sandbox) - before >= 1


def test_a_persistent_fault_gives_up_after_the_retries_and_shows_it(sandbox, ready):
    connection, notification = ready
    sandbox.state.set_fault("http5xx", endpoint="measure", http_status=503)
    result = process_notification.apply(args=[notification.pk])
    assert result.failed()
    notification.refresh_from_db()
    connection.refresh_from_db()
    assert notification.status == Notification.Status.FAILED
    assert notification.attempts == 9  # the first try and 8 retries, then it stops
    assert connection.last_error.startswith("sync:")
    assert connection.status == WithingsConnection.Status.ACTIVE  # upstream trouble is not a broken link
    assert connection.participant.link_status == Participant.LinkStatus.ACTIVE
    assert not BloodPressureReading.objects.filter(systolic=139).exists()
    assert "access_token" not in connection.last_error


def test_one_401_refreshes_once_and_the_sync_goes_on(sandbox, ready):
    connection, notification = ready
    sandbox.state.set_fault("401", endpoint="measure", count=1)
    assert process_notification.apply(args=[notification.pk]).get() == "synced"
    connection.refresh_from_db()
    assert connection.status == WithingsConnection.Status.ACTIVE
    assert BloodPressureReading.objects.filter(systolic=139).count() == 1
    assert sandbox.state.stats["refreshes"] == 1


def test_the_sweeper_requeues_pending_deliveries_and_the_poll_syncs_stale_connections(sandbox, ready):
    import datetime as dt

    from django.utils import timezone

    from withings.tasks import poll_all, sweep_notifications

    connection, notification = ready
    fresh = Notification.objects.create(
        dedupe_key="fresh", userid=connection.withings_userid, appli=4, connection=connection
    )
    Notification.objects.filter(pk=notification.pk).update(
        received_at=timezone.now() - dt.timedelta(minutes=5)
    )
    assert sweep_notifications() == 1  # only the one pending for more than 2 minutes
    notification.refresh_from_db()
    assert notification.status == Notification.Status.PROCESSED
    assert BloodPressureReading.objects.filter(systolic=139).count() == 1

    WithingsConnection.objects.filter(pk=connection.pk).update(
        last_sync_at=timezone.now() - dt.timedelta(hours=7)
    )
    sandbox.clock.advance(60)
    new_reading = bp_group(128, 81, 66, date=int(sandbox.clock()) - 5)
    sandbox.state.cuff_sync(connection.withings_userid, [new_reading], deliver=False)
    assert poll_all() == 1
    assert BloodPressureReading.objects.filter(systolic=128).count() == 1
    assert poll_all() == 0  # synced just now
    fresh.refresh_from_db()
    assert fresh.status == Notification.Status.PROCESSED  # covered by the poll's sync (coalesced)
