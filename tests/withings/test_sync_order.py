"""Withings documents no order for getmeas groups: every reading arrives exactly once whatever the order
(oldest `created` first as recorded answers, newest measurement first, fixed pseudo-random ones, and
last `modified` first — where an edit during a pass slides groups back across pages, which the sync's
verification passes catch), over several pages, while readings keep arriving (late cuff uploads, new
readings) and get edited."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from measurements.models import BloodPressureReading
from tests.fixtures.withings import linked_connection
from withings.sandbox import bp_group
from withings.services.sync import connection_backfill_step, connection_sync

pytestmark = pytest.mark.django_db
HOUR = 3600
ORDERS = [
    ("created", 0),
    ("date_desc", 0),
    ("shuffled", 0),
    ("shuffled", 1),
    ("shuffled", 2),
    ("modified", 0),
]


def _value(group: dict, mtype: int) -> Decimal:
    measure = next(m for m in group["measures"] if m["type"] == mtype)
    return Decimal(measure["value"]).scaleb(measure["unit"])


def _expected(sandbox, uid: str) -> dict[int, tuple]:
    """What Withings holds right now: every visible BP group's latest values."""
    now = sandbox.clock()
    return {
        g["grpid"]: (dt.datetime.fromtimestamp(g["date"], dt.UTC), _value(g, 10), _value(g, 9))
        for g in sandbox.state.groups(uid)
        if g["created"] <= now and {m["type"] for m in g["measures"]} >= {9, 10}
    }


def _stored(connection) -> dict[int, tuple]:
    rows = BloodPressureReading.objects.filter(participant=connection.participant)
    values = list(rows.values_list("grpid", "measured_at", "systolic", "diastolic"))
    assert len(values) == len({grpid for grpid, *_ in values})
    return {grpid: tuple(rest) for grpid, *rest in values}


def _edit(sandbox, uid: str, grpid: int, systolic: int) -> None:
    group = next(g for g in sandbox.state.groups(uid) if g["grpid"] == grpid)
    measures = [
        {**m, "value": systolic * 10 ** -m["unit"]} if m["type"] == 10 else m for m in group["measures"]
    ]
    sandbox.state.modify_group(uid, grpid, measures=measures)


@pytest.mark.parametrize(("order", "seed"), ORDERS)
def test_every_reading_arrives_once_whatever_the_upstream_order(sandbox, order, seed):
    sandbox.state.order = order
    sandbox.state.shuffle_seed = seed
    sandbox.state.page_size = 4
    start = dt.datetime.fromtimestamp(sandbox.clock(), dt.UTC).date() - dt.timedelta(days=40)
    connection = linked_connection(sandbox, participant__start_date=start)
    uid = connection.withings_userid
    # Three weeks of a BPM Connect diary uploaded 16–18 h late (the last day's still on its way).
    sandbox.state.generate_readings(
        uid, start=sandbox.clock() - 20 * 86_400, days=21, seed=seed + 5, upload_delay_hours=(16, 18)
    )
    assert 40 < len(_expected(sandbox, uid)) < len(sandbox.state.groups(uid))

    steps, edited = 0, []
    while True:
        result = connection_backfill_step(connection_id=connection.pk)
        steps += 1
        if not result.more:
            break
        # Between two pages: time passes (uploads land), the cuff syncs a new reading, and a
        # reading already stored is edited upstream.
        sandbox.clock.advance(HOUR)
        sandbox.state.cuff_sync(
            uid, [bp_group(150 + steps, 90, 70, date=int(sandbox.clock()) - 60)], deliver=False
        )
        stored = sorted(_stored(connection))
        if stored and steps % 3 == 0:
            target = stored[(steps * 7) % len(stored)]
            _edit(sandbox, uid, target, 200 - steps)
            edited.append(target)
    assert steps > 10
    assert edited

    for _ in range(3):  # notifications and polls go on; the late uploads keep landing
        connection_sync(connection_id=connection.pk)
        sandbox.clock.advance(10 * HOUR)
    connection_sync(connection_id=connection.pk)

    expected = _expected(sandbox, uid)
    assert len(expected) == len(sandbox.state.groups(uid))  # everything has reached Withings by now
    assert _stored(connection) == expected
    for grpid in edited:
        assert BloodPressureReading.objects.get(grpid=grpid).edited_upstream is True
