"""Migrations must be safe to run while the site serves: nothing may hold the readings table (millions
of rows) for long. A rule on every migration that touches it, and a measurement on a filled table.

Reviewed migrations are the ones that landed before the rule, each with what it costs (measured with
bench/migration_locks.py, docs/performance.md). A new one must use AddIndexConcurrently (non-atomic
migration), nullable fields or a database default, or be reviewed here with a measured figure."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import connection, migrations
from django.db.migrations.loader import MigrationLoader
from django.db.models import NOT_PROVIDED

ROOT = Path(__file__).resolve().parents[2]
OURS = ("core", "cohorts", "withings", "measurements", "messaging", "demo")
READINGS = ("measurements", "bloodpressurereading")
REVIEWED = {
    ("measurements", "0001_initial"): "creates the table (empty)",
    ("measurements", "0004_drop_redundant_indexes"): (
        "re-creates the participant foreign key without its index and builds a partial index: ACCESS "
        "EXCLUSIVE for the whole foreign-key validation scan (docs/performance.md: seconds at 5M rows); "
        "run it in a maintenance window on a large installation"
    ),
}
CHEAP = (
    migrations.RemoveField,
    migrations.RemoveIndex,
    migrations.RenameIndex,
    migrations.AlterModelOptions,
    migrations.AlterModelManagers,
    RemoveIndexConcurrently,
)


def _touches_readings(app: str, operation) -> bool:
    name = getattr(operation, "model_name", None) or getattr(operation, "name", None)
    if app == READINGS[0] and isinstance(name, str) and name.lower() == READINGS[1]:
        return True
    if isinstance(operation, migrations.RunSQL):
        return "measurements_bloodpressurereading" in str(operation.sql).lower()
    return False


def unsafe_operations(loader: MigrationLoader) -> list[str]:
    problems = []
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        if app not in OURS or (app, name) in REVIEWED:
            continue
        for operation in migration.operations:
            if not _touches_readings(app, operation):
                continue
            if isinstance(operation, AddIndexConcurrently) and not migration.atomic:
                continue
            if isinstance(operation, CHEAP):
                continue
            if isinstance(operation, migrations.AddField) and (
                operation.field.null or operation.field.db_default is not NOT_PROVIDED
            ):
                continue
            problems.append(f"{app}.{name}: {operation.describe()}")
    return problems


def test_every_migration_of_the_readings_table_is_online_safe_or_reviewed():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    assert unsafe_operations(loader) == []
    assert set(REVIEWED) <= set(loader.disk_migrations)


def test_the_rule_catches_a_blocking_index_and_a_not_null_column():
    from django.db import models

    class Fake:
        disk_migrations = {
            ("measurements", "9999_bad"): type(
                "M",
                (migrations.Migration,),
                {
                    "operations": [
                        migrations.AddIndex(
                            model_name="bloodpressurereading", index=models.Index(fields=["grpid"], name="x")
                        ),
                        migrations.AddField(
                            model_name="bloodpressurereading", name="y", field=models.IntegerField(default=0)
                        ),
                        migrations.AddField(
                            model_name="bloodpressurereading", name="z", field=models.IntegerField(null=True)
                        ),
                    ]
                },
            )("9999_bad", "measurements"),
        }

    assert [p.split(": ")[1].split(" ")[0] for p in unsafe_operations(Fake())] == ["Create", "Add"]


def _bench():
    spec = importlib.util.spec_from_file_location("migration_locks", ROOT / "bench" / "migration_locks.py")
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    return bench


def _server() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/postgres"


@pytest.mark.slow
@pytest.mark.django_db
def test_migrating_a_filled_readings_table_blocks_it_only_briefly():
    result = _bench().measure(
        _server(), 20_000, name=f"test_{connection.settings_dict['NAME']}_migration_locks"
    )

    assert result.probe_errors == 0
    assert len(result.probe_latencies) > 20  # the probe ran throughout
    # Under a shared machine's load; the 5M-row figures are in docs/performance.md.
    assert result.longest_hold.get("AccessExclusiveLock", 0.0) < 3.0, result.report()
    assert result.probe_max < 3.0, result.report()


# The upgrade a deployed site still runs on the readings table: from right after the last reviewed
# (blocking, released) migration to the latest one.
SINCE = max(name for app, name in REVIEWED if app == READINGS[0])
# What an online-safe migration holds in a blocking mode: catalog changes only (ADD COLUMN with a
# constant default), measured at 0-6 ms at 5M rows, idle or at load average 7.6 on 2 cores. Anything that
# reads or builds over the 5M rows under such a lock holds it for over a second even on an idle machine:
# 0004 1.8 s (6.5 s under load), a plain CREATE INDEX on one bigint column 1.2-1.4 s (SHARE). 0.5 s sits
# between, with room for load.
MAX_HOLD = 0.5
MAX_PROBE = 1.0  # the probe waits for at most one such hold; its own write+read stayed ≤ 0.2 s at load 7


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.django_db
def test_the_upgrade_of_a_site_with_5m_readings_never_blocks_the_table_for_long(capsys):
    loader = MigrationLoader(None, ignore_no_migrations=True)
    started = time.perf_counter()

    result = _bench().measure(
        _server(), 5_000_000, before=SINCE, name=f"test_{connection.settings_dict['NAME']}_migration_5m"
    )

    with capsys.disabled():  # the figures belong in CI's log, also when the test passes
        print(  # noqa: T201
            f"\n{result.report()}{result.holders()}\n(whole test {time.perf_counter() - started:.0f} s; "
            f"load average {os.getloadavg()[0]:.1f})"
        )
    assert {key for key in loader.disk_migrations if key[0] in OURS} <= result.applied
    held = {mode: seconds for mode, seconds in result.longest_hold.items() if seconds > MAX_HOLD}
    assert held == {}, result.report() + result.holders()
    assert result.probe_errors == 0, result.report()
    assert len(result.probe_latencies) > result.migrate_seconds * 5, result.report()  # it ran throughout
    assert result.probe_max < MAX_PROBE, result.report()
