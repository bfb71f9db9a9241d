"""getdevice through the sandbox over HTTP, into PostgreSQL: one row per cuff, whatever the answer lists."""

from __future__ import annotations

import datetime as dt

import pytest

from measurements.models import Device
from tests.fixtures.withings import after_identical_call_window, linked_connection
from withings.services.devices import connection_refresh_devices

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("latest_listed", ["first", "last"])
def test_a_cuff_listed_twice_is_stored_once_from_its_latest_session(sandbox, latest_listed):
    """A recorded real getdevice answer lists one device several times; PostgreSQL refuses an
    upsert that touches the same row twice ("ON CONFLICT DO UPDATE command cannot affect row a
    second time")."""
    connection = linked_connection(sandbox)
    uid = connection.withings_userid
    now = int(sandbox.clock())
    cuff = sandbox.state.set_device(uid, battery="high", last_session_date=now - 86_400)
    latest = {**cuff, "battery": "low", "first_session_date": now - 90 * 86_400, "last_session_date": now}
    stale = {**cuff, "battery": "unknown", "first_session_date": None, "last_session_date": None}
    scale = {**cuff, "type": "Scale", "model": "Body+", "model_id": 5}
    if latest_listed == "first":
        sandbox.state.set_device(uid, **latest)
        sandbox.state.add_device(uid, cuff)
    else:
        sandbox.state.add_device(uid, latest)
    sandbox.state.add_device(uid, stale)
    sandbox.state.add_device(uid, scale)
    assert len(sandbox.state.getdevice(uid)["devices"]) == 4

    assert connection_refresh_devices(connection_id=connection.pk) == 1

    device = Device.objects.get(participant=connection.participant)
    assert device.device_id == cuff["hash_deviceid"]
    assert (device.model, device.model_id) == ("BPM Connect", 45)
    assert device.device_type == "Blood Pressure Monitor"
    assert device.battery == "low"
    assert device.last_session_at == dt.datetime.fromtimestamp(now, dt.UTC)
    assert device.first_session_at == dt.datetime.fromtimestamp(now - 90 * 86_400, dt.UTC)


def test_a_repeated_answer_updates_the_row_in_place(sandbox):
    connection = linked_connection(sandbox)
    uid = connection.withings_userid
    now = int(sandbox.clock())
    cuff = sandbox.state.set_device(uid, battery="medium", last_session_date=now - 60)
    sandbox.state.add_device(uid, {**cuff, "battery": "high", "last_session_date": now - 3600})
    assert connection_refresh_devices(connection_id=connection.pk) == 1
    sandbox.state.set_device(uid, battery="low", last_session_date=now)
    after_identical_call_window()  # the same getdevice call again: only after Withings' 10 s
    assert connection_refresh_devices(connection_id=connection.pk) == 1
    device = Device.objects.get(participant=connection.participant)
    assert (device.battery, device.last_session_at) == ("low", dt.datetime.fromtimestamp(now, dt.UTC))
