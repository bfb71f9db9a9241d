"""The SQLite branches run for real: `make run` uses SQLite, the suite PostgreSQL, so the paths that
branch on the database (the page ingest's reference path, the ORM upsert, the Python rollup and its
store, the export's Python CSV rows) are run in a subprocess against SQLite without Redis, as
`make run` has it (`sqlite_paths.py`), and must give exactly what PostgreSQL gives here."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from measurements.models import Alert, BloodPressureReading, DailyAdherence, Device
from measurements.readings import devices_upsert, readings_store_api_page
from tests.factories import ParticipantFactory, SiteFactory, StudyFactory

ROOT = Path(__file__).resolve().parents[2]
INNER = Path(__file__).with_name("sqlite_paths.py")
DAY = 86400
READING_EXCLUDED = {"id", "participant", "ingested_at", "updated_at"}
ROLLUP_EXCLUDED = {"id", "participant", "study", "updated_at"}


def _group(grpid: int, date: int, sys_: int, dia: int, **extra) -> dict:
    group = {
        "grpid": grpid, "attrib": 0, "date": date, "created": date + 60, "modified": date + 60,
        "category": 1, "deviceid": "d" * 40, "hash_deviceid": "d" * 40, "modelid": 45,
        "model": "BPM Connect", "comment": None,
        "measures": [
            {"value": dia * 100, "type": 9, "unit": -2, "algo": 0, "fm": 3},
            {"value": sys_ * 100 + 50, "type": 10, "unit": -2, "algo": 0, "fm": 3},
            {"value": 7125, "type": 11, "unit": -2, "algo": 0, "fm": 3},
        ],
    }  # fmt: skip
    group.update(extra)
    return group


def scenario_pages(anchor: int) -> list[tuple[list[dict], int | None]]:
    """(groups, not_before) of four pages: history with a manual, an ambiguous, a pulse-only and an
    early group and a group repeated in two versions; its replay; upstream edits (moved to another
    day, turned manual, measures deleted); fresh readings with a crisis."""
    start = anchor - 20 * DAY
    history = [_group(100 + i, start + i * 37_000, 120 + i % 25, 70 + i % 15) for i in range(40)]
    history[3].update(attrib=2, deviceid=None, hash_deviceid=None)
    history[4]["attrib"] = 1
    history[5]["measures"] = history[5]["measures"][2:]
    history.append(_group(99, start - 3 * DAY, 130, 80))
    newer = copy.deepcopy(history[6])
    newer["modified"] += 500
    newer["measures"][1]["value"] = 16000
    history.append(newer)
    moved, manual, emptied = (copy.deepcopy(history[i]) for i in (10, 11, 12))
    moved["date"] += 2 * DAY + 3600
    manual.update(attrib=2)
    emptied["measures"] = emptied["measures"][2:]
    for group in (moved, manual, emptied):
        group["modified"] += 999
    edits = [moved, manual, emptied, history[13]]
    fresh = [_group(900 + i, anchor - 3600 * (i + 1), sys_, 95) for i, sys_ in enumerate((150, 191, 184))]
    return [(history, start - DAY), (history, start - DAY), (edits, None), (fresh, None)]


def _rows(qs, excluded: set[str]) -> list[list[str]]:
    fields = [f.attname for f in qs.model._meta.concrete_fields if f.name not in excluded]
    return [
        [json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value) for value in row]
        for row in qs.values_list(*fields)
    ]


def ingest_scenario(anchor: int, media_root: Path) -> dict:
    """Run the pages, the cuffs and a CSV export on this database → everything they stored."""
    study = StudyFactory(slug="sqlite-paths")
    start = _instant(anchor - 12 * DAY).date()
    site = SiteFactory(study=study, code="north")
    participant = ParticipantFactory(
        study=study, site=site, code="SQ-1", timezone="Europe/Paris", start_date=start
    )
    stored = []
    for groups, not_before in scenario_pages(anchor):
        page = readings_store_api_page(
            participant_id=participant.pk,
            groups=groups,
            source_timezone="Europe/Paris",
            not_before=None if not_before is None else _instant(not_before),
        )
        stored.append([vars(page.upsert), dict(page.skipped)])
    cuff = {"type": "Blood Pressure Monitor", "model": "BPM Connect", "battery": "low", "hash_deviceid": "d"}
    devices_upsert(
        participant_id=participant.pk,
        devices=[{**cuff, "last_session_date": anchor - DAY}, {**cuff, "last_session_date": anchor}],
    )
    out = media_root / "export.zip"
    call_command("export_study", study.slug, "--format", "csv", "--output", str(out), stdout=io.StringIO())
    with zipfile.ZipFile(out) as package:
        data = next(name for name in package.namelist() if name.endswith(".csv") and "dictionary" not in name)
        export = list(csv.reader(io.StringIO(package.read(data).decode("utf-8-sig"))))
    readings = BloodPressureReading.objects.filter(participant=participant).order_by("grpid")
    rollup = DailyAdherence.objects.filter(participant=participant).order_by("day")
    return {
        "pages": stored,
        "readings": _rows(readings, READING_EXCLUDED),
        "rollup": _rows(rollup, ROLLUP_EXCLUDED),
        "alerts": [
            [kind, json.dumps(detail, sort_keys=True), n]
            for kind, detail, n in Alert.objects.filter(participant=participant)
            .order_by("kind")
            .values_list("kind", "detail", "occurrences")
        ],
        "devices": _rows(
            Device.objects.filter(participant=participant),
            {"id", "participant", "updated_at", "battery_low_since"},
        ),
        "export": export,
        # When each store saw the battery low differs by the run's seconds; that one was seen does not.
        "battery_low_seen": [
            d.battery_low_since is not None for d in Device.objects.filter(participant=participant)
        ],
    }


def _instant(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


@pytest.fixture(scope="module")
def on_sqlite(tmp_path_factory) -> dict:
    """The inner module's run on SQLite: its exit status and output, and what its scenario stored."""
    directory = tmp_path_factory.mktemp("sqlite")
    anchor = int(time.time()) - 60
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "PYTEST_ADDOPTS"}}
    env.update(
        DATABASE_URL=f"sqlite:///{directory / 'portal.sqlite3'}",
        PORTAL_ALLOW_SQLITE_TESTS="1",
        SQLITE_PATHS_ANCHOR=str(anchor),
        SQLITE_PATHS_OUT=str(directory / "scenario.json"),
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(INNER)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = directory / "scenario.json"
    return {
        "anchor": anchor,
        "run": run,
        "scenario": json.loads(out.read_text()) if out.exists() else None,
    }


def test_the_sqlite_branches_run_green_without_redis(on_sqlite):
    run = on_sqlite["run"]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "\n3 passed in " in run.stdout


@pytest.mark.django_db
def test_sqlite_stores_exactly_what_postgresql_stores(on_sqlite, settings, tmp_path):
    assert connection.vendor == "postgresql"
    assert on_sqlite["scenario"] is not None, on_sqlite["run"].stdout[-6000:]
    settings.MEDIA_ROOT = tmp_path
    here = json.loads(json.dumps(ingest_scenario(on_sqlite["anchor"], tmp_path)))
    there = on_sqlite["scenario"]
    for part in here:
        assert here[part] == there[part], part
    page = {"inserted": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    assert here["pages"] == [
        [{**page, "inserted": 39}, {"not_blood_pressure": 1, "before_participation": 1}],
        [{**page, "unchanged": 39}, {"not_blood_pressure": 1, "before_participation": 1}],
        [{**page, "updated": 2, "unchanged": 1, "deleted": 1}, {"not_blood_pressure": 1}],
        [{**page, "inserted": 3}, {}],
    ]
    readings = BloodPressureReading.objects.filter(participant__code="SQ-1")
    assert readings.count() == 42
    assert set(readings.filter(source="manual").values_list("grpid", flat=True)) == {103, 111}
    assert set(readings.filter(edited_upstream=True).values_list("grpid", flat=True)) == {110, 111, 112}
    assert list(readings.filter(deleted_upstream=True).values_list("grpid", flat=True)) == [112]
    assert readings.get(grpid=106).systolic == Decimal("160.00")
    assert [(kind, json.loads(detail)["count"]) for kind, detail, _ in here["alerts"]] == [("crisis", 2)]
    assert DailyAdherence.objects.filter(participant__code="SQ-1", avg_count__gt=0).exists()
    assert len(here["export"]) == 1 + 42
