"""Sync and back-fill against the sandbox over HTTP: every reading exactly once, exact values."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest

from measurements.models import BloodPressureReading, Device
from tests.fixtures.shared_data import SHARED_FIXTURES
from tests.fixtures.withings import after_identical_call_window, bp_groups_visible, linked_connection
from withings.models import WithingsConnection
from withings.ratelimit import get_limiter
from withings.sandbox import bp_group
from withings.services.sync import connection_backfill_step, connection_sync
from withings.tasks import after_link, poll_connection, sync_connection

pytestmark = pytest.mark.django_db


def backfill_to_the_end(connection_id: int) -> int:
    pages = 0
    while True:
        result = connection_backfill_step(connection_id=connection_id)
        pages += 1
        if not result.more:
            return pages


def getmeas_calls(sandbox) -> int:
    return sum(1 for e in sandbox.state.request_log() if e.get("action") == "getmeas")


@pytest.mark.shared_fixture("measurement_list.json")
@pytest.mark.parametrize("more_as_bool", [False, True])
def test_real_history_arrives_exactly_once_through_small_pages(sandbox, more_as_bool):
    sandbox.state.page_size = 37
    sandbox.state.more_as_bool = more_as_bool
    connection = linked_connection(sandbox, participant__start_date=dt.date(2015, 1, 1))
    sandbox.state.load_fixture_groups(connection.withings_userid, SHARED_FIXTURES / "measurement_list.json")

    pages = backfill_to_the_end(connection.pk)
    # Upstream pages every group carrying type 9, 10 or 11 — the scales' lone pulses included.
    with_bp_types = [
        g
        for g in sandbox.state.groups(connection.withings_userid)
        if {m["type"] for m in g["measures"]} & {9, 10, 11}
    ]
    assert pages == -(-len(with_bp_types) // 37)
    stored = BloodPressureReading.objects.filter(participant=connection.participant)
    assert stored.filter(manual_entry=False).count() == 741
    assert stored.filter(manual_entry=True).count() == 53
    assert stored.filter(ambiguous_user=True).count() == 1
    assert stored.filter(irregular_heartbeat__isnull=False).count() == 0
    upstream = {g["grpid"]: g for g in sandbox.state.groups(connection.withings_userid)}
    for reading in stored:
        measures = {m["type"]: m for m in upstream[reading.grpid]["measures"]}
        assert 9 in measures  # never a scale's lone pulse
        assert reading.systolic == Decimal(measures[10]["value"]).scaleb(measures[10]["unit"])
        assert reading.diastolic == Decimal(measures[9]["value"]).scaleb(measures[9]["unit"])
        assert reading.pulse == Decimal(measures[11]["value"]).scaleb(measures[11]["unit"])
        assert reading.measured_at == dt.datetime.fromtimestamp(upstream[reading.grpid]["date"], dt.UTC)
    connection.refresh_from_db()
    assert connection.backfill_cursor is None
    assert connection.backfill_completed_at is not None
    assert connection.sync_watermark is not None

    # Running again stores nothing new.
    before = stored.count()
    result = connection_sync(connection_id=connection.pk)
    assert (result.upsert.inserted, result.upsert.updated) == (0, 0)
    assert stored.count() == before == 794


def test_incremental_sync_picks_up_new_and_modified_groups_only(sandbox):
    connection = linked_connection(sandbox)
    uid = connection.withings_userid
    now = int(sandbox.clock())
    sandbox.state.add_groups(uid, [bp_group(130 + i, 85, 70, date=now - 3600 * (i + 1)) for i in range(5)])
    backfill_to_the_end(connection.pk)
    assert BloodPressureReading.objects.count() == 5
    connection.refresh_from_db()
    first_watermark = connection.sync_watermark

    sandbox.clock.advance(600)
    target = sandbox.state.groups(uid)[0]
    changed = [dict(m) for m in target["measures"]]
    for m in changed:
        if m["type"] == 10:
            m["value"] = 15500
            m["unit"] = -2
    sandbox.state.modify_group(uid, target["grpid"], measures=changed)
    sandbox.state.cuff_sync(uid, [bp_group(141, 92, 66, date=int(sandbox.clock()) - 60)], deliver=False)

    calls = getmeas_calls(sandbox)
    result = connection_sync(connection_id=connection.pk)
    assert getmeas_calls(sandbox) == calls + 1
    assert (result.upsert.inserted, result.upsert.updated) == (1, 1)
    row = BloodPressureReading.objects.get(grpid=target["grpid"])
    assert row.systolic == Decimal("155")
    assert row.edited_upstream is True
    assert BloodPressureReading.objects.filter(edited_upstream=True).count() == 1
    assert BloodPressureReading.objects.count() == 6
    connection.refresh_from_db()
    assert connection.sync_watermark > first_watermark

    again = connection_sync(connection_id=connection.pk)
    assert (again.upsert.inserted, again.upsert.updated) == (0, 0)


def test_a_group_repeated_across_pages_is_stored_once(sandbox):
    sandbox.state.page_size = 2
    sandbox.state.order = "date_desc"  # a newer reading then lands on page 1 and shifts the rest
    connection = linked_connection(sandbox)
    uid = connection.withings_userid
    now = int(sandbox.clock())
    sandbox.state.add_groups(uid, [bp_group(120, 80, 60, date=now - 3600 * i) for i in range(1, 6)])
    first = connection_backfill_step(connection_id=connection.pk)
    assert first.more is True
    # A newer reading arrives between pages: upstream offsets shift and a group repeats.
    sandbox.state.cuff_sync(uid, [bp_group(150, 95, 70, date=now - 10)], deliver=False)
    backfill_to_the_end(connection.pk)
    connection_sync(connection_id=connection.pk)
    assert BloodPressureReading.objects.count() == 6
    assert BloodPressureReading.objects.values("grpid").distinct().count() == 6


def test_two_chains_of_backfill_steps_fetch_each_page_once_and_never_restart(sandbox):
    """after_link queues a back-fill and a duplicate chain starts (a lost-and-resumed step)."""
    sandbox.state.page_size = 3
    connection = linked_connection(sandbox)
    now = int(sandbox.clock())
    sandbox.state.add_groups(
        connection.withings_userid, [bp_group(120, 80, 60, date=now - 3600 * i) for i in range(1, 8)]
    )
    assert connection_backfill_step(connection_id=connection.pk).more is True  # page 1
    chains = [True, True]  # both chains still think there is more
    while any(chains):
        for i, more in enumerate(chains):
            if more:
                chains[i] = connection_backfill_step(connection_id=connection.pk).more
    assert getmeas_calls(sandbox) == 3  # pages of 3, 3 and 1: each fetched once
    assert BloodPressureReading.objects.filter(participant=connection.participant).count() == 7
    calls = getmeas_calls(sandbox)
    assert connection_backfill_step(connection_id=connection.pk).more is False
    assert getmeas_calls(sandbox) == calls  # a step after completion calls nothing


def test_a_notification_before_the_backfill_began_fetches_what_came_since_linking(sandbox):
    """The back-fill's steps may wait behind a whole cohort's: a notification that arrives before
    its first page (no watermark yet) fetches what was uploaded since linking at once, and leaves
    history and the watermark to the back-fill."""
    sandbox.state.page_size = 3
    connection = linked_connection(sandbox)
    uid = connection.withings_userid
    sandbox.state.generate_readings(uid, start=sandbox.clock() - 10 * 86400, days=9, seed=4)
    history = len(bp_groups_visible(sandbox, uid))
    sandbox.clock.advance(3600)
    sandbox.state.cuff_sync(uid, [bp_group(151, 96, 71, date=int(sandbox.clock()) - 60)], deliver=False)
    WithingsConnection.objects.filter(pk=connection.pk).update(
        linked_at=dt.datetime.fromtimestamp(sandbox.clock() - 1800, dt.UTC)
    )

    result = connection_sync(connection_id=connection.pk)
    assert (result.more, result.upsert.inserted) == (False, 1)
    assert BloodPressureReading.objects.get(participant=connection.participant).systolic == 151
    connection.refresh_from_db()
    assert connection.sync_watermark is None  # the back-fill's to set
    while connection_backfill_step(connection_id=connection.pk).more:
        pass
    grpids = list(
        BloodPressureReading.objects.filter(participant=connection.participant).values_list(
            "grpid", flat=True
        )
    )
    assert len(grpids) == len(set(grpids)) == history + 1


def test_after_link_fetches_the_first_page_itself_so_new_readings_can_arrive_by_notification(
    sandbox, settings
):
    """With workers, queued back-fill steps wait behind every other participant's; the first page
    (which sets the watermark the notification syncs need) must not."""
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the rest is queued for a worker, not run here
    sandbox.state.page_size = 3
    connection = linked_connection(sandbox)
    now = int(sandbox.clock())
    sandbox.state.add_groups(
        connection.withings_userid, [bp_group(120, 80, 60, date=now - 3600 * i) for i in range(1, 8)]
    )
    after_link(connection.pk)
    connection.refresh_from_db()
    assert getmeas_calls(sandbox) == 1
    assert BloodPressureReading.objects.filter(participant=connection.participant).count() == 3
    assert connection.sync_watermark is not None
    assert connection.backfill_cursor is not None  # the other two pages are left to the queue
    # A reading taken now arrives through the incremental sync a notification starts.
    sandbox.state.cuff_sync(connection.withings_userid, [bp_group(151, 96, 70, date=now - 5)], deliver=False)
    connection_sync(connection_id=connection.pk)
    assert BloodPressureReading.objects.filter(participant=connection.participant, systolic=151).exists()


def test_a_reading_announced_during_the_backfill_is_not_lost_to_a_page_already_passed(sandbox):
    """Found by the soak: a back-fill step marked a pending delivery processed although its reading
    sat on a page the back-fill had passed (upstream pages newest first), so nothing fetched it."""
    from withings.models import Notification
    from withings.tasks import process_notification

    sandbox.state.page_size = 3
    sandbox.state.order = "date_desc"
    connection = linked_connection(sandbox)
    now = int(sandbox.clock())
    uid = connection.withings_userid
    sandbox.state.add_groups(uid, [bp_group(120, 80, 60, date=now - 3600 * i) for i in range(1, 8)])
    assert connection_backfill_step(connection_id=connection.pk).more  # page 1: the newest three
    sandbox.clock.advance(30)
    sandbox.state.cuff_sync(uid, [bp_group(151, 96, 70, date=int(sandbox.clock()) - 10)], deliver=False)
    notification = Notification.objects.create(
        dedupe_key="during", userid=uid, appli=4, connection=connection
    )
    backfill_to_the_end(connection.pk)  # pages 2 and 3 (offsets 3 and 6): the new group is at offset 0
    notification.refresh_from_db()
    assert notification.status == Notification.Status.PENDING  # not covered by those pages
    assert process_notification(notification.pk) == "synced"
    assert BloodPressureReading.objects.filter(participant=connection.participant, systolic=151).count() == 1
    assert BloodPressureReading.objects.filter(participant=connection.participant).count() == 8


def test_after_link_subscribes_backfills_and_reads_the_cuff(sandbox, settings):
    connection = linked_connection(sandbox)
    uid = connection.withings_userid
    sandbox.state.generate_readings(uid, start=sandbox.clock() - 10 * 86400, days=10, seed=7)
    visible = [g for g in sandbox.state.groups(uid) if g["created"] <= sandbox.clock()]
    after_link(connection.pk)  # eager: subscribe (fails here: no server answers HEAD), back-fill, devices
    stored = BloodPressureReading.objects.filter(participant=connection.participant)
    bp_visible = [g for g in visible if {m["type"] for m in g["measures"]} >= {9, 10}]
    assert stored.count() == len(bp_visible) > 0
    device = Device.objects.get(participant=connection.participant)
    assert device.model == "BPM Connect"
    assert device.battery == "high"
    assert device.last_session_at is not None


@pytest.mark.parametrize("in_process", [False, True])
def test_a_notification_sync_may_use_the_burst_but_bulk_work_waits_for_a_due_slot(
    sandbox, settings, in_process
):
    """With workers, background work takes only due slots; with in-process tasks (the demo) it runs
    inside a participant's request and must not make them wait."""
    settings.CELERY_TASK_ALWAYS_EAGER = in_process
    settings.WITHINGS_RATE_LIMIT_PER_MINUTE = 60  # one slot a second
    settings.WITHINGS_RATE_LIMIT_BURST = 3
    connection = linked_connection(sandbox)
    sandbox.state.generate_readings(
        connection.withings_userid, start=sandbox.clock() - 2 * 86400, days=2, seed=3
    )
    limiter = get_limiter()

    connection_backfill_step(connection_id=connection.pk)  # history in, the watermark set

    def timed(task) -> float:
        after_identical_call_window()  # both run the same incremental call
        limiter.reset(sandbox.client_id)
        limiter.acquire(sandbox.client_id)  # somebody just took the current slot
        calls = getmeas_calls(sandbox)
        started = time.monotonic()
        task(connection.pk)
        assert getmeas_calls(sandbox) == calls + 1
        return time.monotonic() - started

    assert timed(sync_connection) < 0.5  # runs ahead of the pace, within the burst
    if in_process:
        assert timed(poll_connection) < 0.5
    else:
        assert timed(poll_connection) >= 0.9  # the same sync as the safety-net poll (bulk) waits
    assert BloodPressureReading.objects.filter(participant=connection.participant).count() > 0


def test_sync_of_a_broken_link_does_nothing(sandbox):
    connection = linked_connection(sandbox, status=WithingsConnection.Status.NEEDS_REAUTH)
    calls = len(sandbox.state.request_log())
    from withings.services.sync import SyncStopped

    with pytest.raises(SyncStopped):
        connection_sync(connection_id=connection.pk)
    assert len(sandbox.state.request_log()) == calls
    assert not BloodPressureReading.objects.exists()


def test_a_reading_imported_from_the_csv_export_is_not_duplicated_by_a_later_sync(sandbox):
    from measurements.models import BloodPressureReading as Reading
    from tests.factories import ReadingFactory

    connection = linked_connection(sandbox)
    when = int(sandbox.clock()) - 7200
    csv_row = ReadingFactory(
        participant=connection.participant, source=Reading.Source.CSV, grpid=None, pulse=Decimal("66"),
        measured_at=dt.datetime.fromtimestamp(when, dt.UTC), systolic=Decimal("131"), diastolic=Decimal("84"),
    )  # fmt: skip
    sandbox.state.add_groups(connection.withings_userid, [bp_group(131, 84, 66, date=when)])
    backfill_to_the_end(connection.pk)
    api_row = Reading.objects.get(participant=connection.participant, grpid__isnull=False)
    csv_row.refresh_from_db()
    assert csv_row.duplicate_of_id == api_row.pk
    assert Reading.objects.filter(participant=connection.participant, duplicate_of__isnull=True).count() == 1
