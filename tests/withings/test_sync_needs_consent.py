"""The sync and the back-fill stop before calling Withings for a participant without a consent
record or who withdrew (see tests/measurements/test_no_consent_no_data.py for the other paths)."""

from __future__ import annotations

import time

import pytest

from measurements.models import BloodPressureReading
from tests.fixtures.withings import linked_connection
from tests.measurements.test_no_consent_no_data import CASES
from withings.sandbox import bp_group
from withings.services.sync import SyncStopped, connection_backfill_step, connection_sync
from withings.tasks import backfill_step, sync_connection

pytestmark = pytest.mark.django_db


@CASES
def test_sync_and_backfill_stop_before_calling_withings(make, reason, sandbox):
    participant = make()
    connection = linked_connection(sandbox, participant=participant)
    sandbox.state.add_groups(connection.withings_userid, [bp_group(140, 90, 70, date=int(time.time()) - 900)])
    for sync in (connection_sync, connection_backfill_step):
        with pytest.raises(SyncStopped, match=reason):
            sync(connection_id=connection.pk)
    assert sync_connection.delay(connection.pk).get() == "stopped"
    assert backfill_step.delay(connection.pk).get() == "stopped"
    assert not [e for e in sandbox.state.request_log() if e.get("action") == "getmeas"]
    assert not BloodPressureReading.objects.exists()
