"""Run by `test_sqlite_paths.py` in a subprocess, on SQLite without Redis (as `make run` has it); not
collected by the suite itself (the name does not start with `test_`)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import secrets
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from cohorts.models import Study
from measurements.models import BloodPressureReading, DailyAdherence
from tests.fixtures.withings import (
    CALLBACK,
    CLIENT_SECRET,
    PORTAL,
    Sandbox,
    bp_groups_visible,
    linked_connection,
)
from tests.measurements.test_sqlite_paths import ingest_scenario
from withings.sandbox import FakeClock, SandboxState, start_sandbox
from withings.services.sync import connection_backfill_step, connection_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox(settings):
    """The sandbox over HTTP, as tests/fixtures/withings.py starts it, without Redis."""
    assert not settings.REDIS_URL
    clock = FakeClock()
    state = SandboxState(auto_approve=True, rate_limit_per_minute=None, identical_call_window=0, now=clock)
    client_id = f"portal-{secrets.token_hex(4)}"
    state.register_client(client_id, CLIENT_SECRET, [CALLBACK])
    running = start_sandbox(state)
    settings.WITHINGS_API_URL = settings.WITHINGS_AUTH_URL = running.url
    settings.WITHINGS_CLIENT_ID, settings.WITHINGS_CLIENT_SECRET = client_id, CLIENT_SECRET
    settings.PORTAL_BASE_URL = PORTAL
    settings.WITHINGS_HTTP_TIMEOUT = 5
    settings.WITHINGS_RATE_LIMIT_PER_MINUTE = 100_000
    try:
        yield Sandbox(running, clock, client_id, CLIENT_SECRET)
    finally:
        running.stop()


def test_ingest_scenario(settings, tmp_path):
    assert connection.vendor == "sqlite"
    settings.MEDIA_ROOT = tmp_path
    result = ingest_scenario(int(os.environ["SQLITE_PATHS_ANCHOR"]), tmp_path)
    Path(os.environ["SQLITE_PATHS_OUT"]).write_text(json.dumps(result))


def test_seed_demo_builds_the_monitoring_demo():
    call_command("seed_demo", allow_production=True, stdout=io.StringIO())
    demo = Study.objects.get(slug="demo")
    readings = BloodPressureReading.objects.filter(participant__study=demo)
    assert readings.count() > 100
    assert DailyAdherence.objects.filter(study=demo, counted__gt=0).exists()
    call_command("seed_demo", allow_production=True, stdout=io.StringIO())
    assert BloodPressureReading.objects.filter(participant__study=demo).count() == readings.count()


def test_a_back_fill_and_a_sync_through_the_sandbox_store_every_reading_once(sandbox):
    start = dt.datetime.fromtimestamp(sandbox.clock() - 11 * 86400, tz=dt.UTC).date()
    connection_ = linked_connection(sandbox, participant__start_date=start)
    uid = connection_.withings_userid
    sandbox.state.generate_readings(uid, start=sandbox.clock() - 10 * 86400, days=10, seed=11)
    while connection_backfill_step(connection_id=connection_.pk).more:
        pass
    stored = BloodPressureReading.objects.filter(participant=connection_.participant)
    assert set(stored.values_list("grpid", flat=True)) == bp_groups_visible(sandbox, uid)
    assert stored.count() > 20
    assert DailyAdherence.objects.filter(participant=connection_.participant, counted__gt=0).exists()
    again = connection_sync(connection_id=connection_.pk)
    assert (again.upsert.inserted, again.upsert.updated) == (0, 0)
