"""Migrations of the readings table while the site serves: how long do they block it?

A throw-away database is migrated, one reading created (factory), the measurements app migrated back
to a release's state (`--before`; default 0003, the last state before a migration touched the readings
table after its creation) and the table filled to N readings at that state (one INSERT … SELECT
generate_series, then VACUUM ANALYZE, as autovacuum would have left it). Then `migrate` runs forward
while

- a probe session writes and reads a reading every 20 ms (as sync and the admin would), with its
  latency recorded, and
- a watcher polls pg_locks every 5 ms for the table locks other sessions hold on the readings table
  (not the few-ms relation-extension or tuple locks of the probe's own inserts), and records the
  longest continuous hold of each blocking mode (ACCESS EXCLUSIVE blocks reads too; SHARE / SHARE ROW
  EXCLUSIVE / EXCLUSIVE block writes).

    .venv/bin/python bench/migration_locks.py --rows 5000000     # make bench-migrations
    .venv/bin/python bench/migration_locks.py --before 0004_drop_redundant_indexes
tests/config/test_migration_locks.py runs it with bounds: 0003 → latest at 20,000 rows, and the upgrade a
deployed site still runs (after the last reviewed blocking migration → latest) at 5,000,000 rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
TABLE = "measurements_bloodpressurereading"
APP = "measurements"
BEFORE = "0003_monitoring"
BLOCKING = ("AccessExclusiveLock", "ExclusiveLock", "ShareRowExclusiveLock", "ShareLock")
SEED = """
import django
django.setup()
from tests.factories import ReadingFactory
print(ReadingFactory().pk)
"""


@dataclass
class Result:
    rows: int
    before: str = BEFORE
    fill_seconds: float = 0.0
    migrate_seconds: float = 0.0
    longest_hold: dict[str, float] = field(default_factory=dict)
    holder: dict[str, str] = field(default_factory=dict)  # the statement last seen holding it
    applied: set[tuple[str, str]] = field(default_factory=set)  # django_migrations after the run
    probe_latencies: list[float] = field(default_factory=list)
    probe_errors: int = 0

    @property
    def probe_max(self) -> float:
        return max(self.probe_latencies, default=0.0)

    @property
    def probe_p50(self) -> float:
        return statistics.median(self.probe_latencies) if self.probe_latencies else 0.0

    def report(self) -> str:
        holds = ", ".join(
            f"{mode} {seconds * 1000:.0f} ms" for mode, seconds in sorted(self.longest_hold.items())
        )
        return (
            f"rows {self.rows:,} (filled in {self.fill_seconds:.0f} s): migrate {APP} {self.before} → "
            f"latest in {self.migrate_seconds:.1f} s; longest lock held on the readings table: "
            f"{holds or 'none seen'}; "
            f"probe write+read p50 {self.probe_p50 * 1000:.1f} ms, max {self.probe_max * 1000:.0f} ms "
            f"({len(self.probe_latencies)} probes, {self.probe_errors} errors)"
        )

    def holders(self) -> str:
        return "".join(
            f"\n  {mode} held by the migration while it ran: {query}"
            for mode, query in sorted(self.holder.items())
        )


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings.test")
    return env


def _manage(url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_env(url),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return result.stdout


def _columns(conn: psycopg.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = %s AND column_name <> 'id' ORDER BY ordinal_position",
            [TABLE],
        )
    ]


def _seed(url: str) -> int:
    seeded = subprocess.run(
        [sys.executable, "-c", SEED], cwd=ROOT, env=_env(url), capture_output=True, text=True, check=True
    )
    return int(seeded.stdout.strip().splitlines()[-1])


def _fill(url: str, rows: int, first: int) -> None:
    """Copy reading `first` to `rows` readings in all, whatever columns the table has at this state."""
    with psycopg.connect(url, autocommit=True) as conn:
        columns = _columns(conn)
        replaced = {
            "grpid": sql.SQL("r.grpid + g"),
            "measured_at": sql.SQL("r.measured_at - g * interval '1 minute'"),
        }
        select = sql.SQL(", ").join(
            replaced.get(c, sql.SQL("r.{}").format(sql.Identifier(c))) for c in columns
        )
        inserted = conn.execute(
            sql.SQL(
                "INSERT INTO {t} ({cols}) SELECT {select} FROM {t} r, generate_series(1, %s) g "
                "WHERE r.id = %s"
            ).format(
                t=sql.Identifier(TABLE), cols=sql.SQL(", ").join(map(sql.Identifier, columns)), select=select
            ),
            [rows - 1, first],
        ).rowcount
        if inserted != rows - 1:
            raise RuntimeError(f"filled {inserted + 1:,} readings, not {rows:,}")
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(TABLE)))


def _probe(url: str, first: int, stop: threading.Event, result: Result) -> None:
    """Copy the first reading under a new grpid and read it back, as a sync and a page would."""
    grpid = 10**12
    with psycopg.connect(url, autocommit=True) as conn:
        columns = _columns(conn)
        values = sql.SQL(", ").join(sql.SQL("%s") if c == "grpid" else sql.Identifier(c) for c in columns)
        insert = sql.SQL("INSERT INTO {t} ({cols}) SELECT {values} FROM {t} WHERE id = %s").format(
            t=sql.Identifier(TABLE), cols=sql.SQL(", ").join(map(sql.Identifier, columns)), values=values
        )
        conn.execute("SET lock_timeout = '30s'")
        while not stop.is_set():
            grpid += 1
            started = time.perf_counter()
            try:
                with conn.transaction():
                    conn.execute(insert, [grpid, first])
                    conn.execute(
                        sql.SQL("SELECT systolic FROM {} WHERE id = %s").format(sql.Identifier(TABLE)),
                        [first],
                    )
                result.probe_latencies.append(time.perf_counter() - started)
            except psycopg.Error:
                result.probe_errors += 1
            time.sleep(0.02)


def _watch(url: str, stop: threading.Event, result: Result) -> None:
    held_since: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            rows = conn.execute(
                "SELECT l.mode, a.query FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'relation' AND l.relation = %s::regclass AND l.granted "
                "AND l.pid <> pg_backend_pid() "
                "AND l.mode = ANY(%s)",
                [TABLE, list(BLOCKING)],
            ).fetchall()
            modes = {mode: query for mode, query in rows}
            now = time.perf_counter()
            for mode in modes:
                held_since.setdefault(mode, now)
            for mode in list(held_since):
                span = now - held_since[mode]
                if span >= result.longest_hold.get(mode, 0.0):
                    result.longest_hold[mode] = span
                    if mode in modes:
                        result.holder[mode] = " ".join(modes[mode].split())[:160]
                if mode not in modes:
                    del held_since[mode]
            time.sleep(0.005)


def measure(
    server_url: str, rows: int, *, before: str = BEFORE, name: str | None = None, keep: bool = False
) -> Result:
    """Fill a throw-away database (dropped afterwards, also on failure, unless `keep`) at measurements
    `before` and time `migrate` to the latest state while the probe and the lock watcher run."""
    name = name or f"portal_bench_migrations_{os.getpid()}"
    admin = with_database(server_url, "postgres")
    url = with_database(server_url, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    result = Result(rows=rows, before=before)
    try:
        _manage(url, "migrate", "--noinput", "-v0")
        first = _seed(url)
        _manage(url, "migrate", APP, before, "--noinput", "-v0")
        started = time.perf_counter()
        _fill(url, rows, first)
        result.fill_seconds = time.perf_counter() - started
        stop = threading.Event()
        threads = [
            threading.Thread(target=_probe, args=(url, first, stop, result), daemon=True),
            threading.Thread(target=_watch, args=(url, stop, result), daemon=True),
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        started = time.perf_counter()
        _manage(url, "migrate", "--noinput", "-v0")
        result.migrate_seconds = time.perf_counter() - started
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        with psycopg.connect(url) as conn:
            result.applied = {
                (app, name) for app, name in conn.execute("SELECT app, name FROM django_migrations")
            }
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--before", default=BEFORE, help=f"the {APP} migration to start from")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal")
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    result = measure(args.database_url, args.rows, before=args.before, keep=args.keep)
    print(result.report() + result.holders())
    print(f"(whole run {time.perf_counter() - started:.0f} s; load average {os.getloadavg()})")


if __name__ == "__main__":
    main()
