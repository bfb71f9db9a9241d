"""One rule on every API path: readings measured before the participation start are skipped and counted."""

from __future__ import annotations

import datetime as dt

import pytest

from cohorts.selectors import participation_start as participant_data_start
from measurements.models import BloodPressureReading
from tests.fixtures.withings import linked_connection
from withings.sandbox import bp_group
from withings.services.sync import connection_backfill_step, connection_sync, participation_start

pytestmark = pytest.mark.django_db
DAY = 86_400


def _linked(sandbox, *, days_ago: int = 10):
    start = dt.datetime.fromtimestamp(sandbox.clock(), dt.UTC).date() - dt.timedelta(days=days_ago)
    connection = linked_connection(sandbox, participant__start_date=start)
    bound = int(participation_start(connection).timestamp())
    assert bound == int(dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC).timestamp()) - DAY
    return connection, bound


def _stored(connection) -> dict[int, int]:
    rows = BloodPressureReading.objects.filter(participant=connection.participant)
    return dict(rows.values_list("grpid", "systolic"))


def test_a_reading_from_before_the_start_is_skipped_by_the_backfill_and_the_incremental_sync(sandbox):
    connection, bound = _linked(sandbox)
    uid = connection.withings_userid
    inside, before = sandbox.state.add_groups(
        uid, [bp_group(130, 85, 70, date=bound + 3600), bp_group(170, 99, 80, date=bound - 1)]
    )

    backfill = connection_backfill_step(connection_id=connection.pk)
    assert backfill.more is False
    assert backfill.skipped["before_participation"] == 1
    assert _stored(connection) == {inside["grpid"]: 130}

    # The cuff syncs late (a reading taken before the start reaches Withings only now) and the
    # skipped group is edited upstream: both come back through the incremental sync.
    sandbox.clock.advance(600)
    sandbox.state.cuff_sync(uid, [bp_group(165, 97, 75, date=bound - 2 * DAY)], deliver=False)
    sandbox.state.modify_group(uid, before["grpid"], comment="edited")
    synced = connection_sync(connection_id=connection.pk)
    assert synced.skipped["before_participation"] == 2
    assert (synced.upsert.inserted, synced.upsert.updated) == (0, 0)
    assert _stored(connection) == {inside["grpid"]: 130}
    assert len(sandbox.state.groups(uid)) == 3


def test_the_bound_is_one_instant_on_both_api_paths_and_in_the_shared_rule(sandbox):
    connection, bound = _linked(sandbox)
    uid = connection.withings_userid
    connection_backfill_step(connection_id=connection.pk)  # nothing upstream yet: sets the watermark
    sandbox.clock.advance(600)
    edge, just_before = (
        bp_group(128, 84, 66, date=bound),
        bp_group(129, 85, 67, date=bound - 1),
    )
    sandbox.state.cuff_sync(uid, [edge, just_before], deliver=False)
    synced = connection_sync(connection_id=connection.pk)
    assert synced.skipped["before_participation"] == 1
    assert list(_stored(connection).values()) == [128]
    assert participant_data_start(connection.participant) == participation_start(connection)


def test_without_any_start_date_the_api_paths_keep_the_default_window(sandbox, settings):
    settings.WITHINGS_BACKFILL_DAYS_DEFAULT = 30
    connection = linked_connection(sandbox)
    assert participant_data_start(connection.participant) is None
    assert participation_start(connection) == connection.linked_at - dt.timedelta(days=30)
    uid = connection.withings_userid
    linked = int(connection.linked_at.timestamp())
    connection_backfill_step(connection_id=connection.pk)
    sandbox.clock.advance(600)
    sandbox.state.cuff_sync(
        uid,
        [bp_group(140, 90, 70, date=linked - 29 * DAY), bp_group(141, 91, 71, date=linked - 31 * DAY)],
        deliver=False,
    )
    synced = connection_sync(connection_id=connection.pk)
    assert synced.skipped["before_participation"] == 1
    assert list(_stored(connection).values()) == [140]
