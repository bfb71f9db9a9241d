"""Backup and restore drill: seed a database, back it up with `pg_dump -Fc`, restore it into a new
database with `pg_restore`, and prove the copy is whole:

1. every table has the same number of rows in both;
2. every table's content checksum (md5 over its rows in a fixed order) matches — the readings table
   is named in the report;
3. every encrypted value in the restored copy decrypts with FIELD_ENCRYPTION_KEYS (the keys are not
   in the dump: a restore without them has tokens and contact details nobody can read).

    make restore-drill                       # own throw-away databases on DATABASE_URL's server
    .venv/bin/python scripts/restore_drill.py --source-url postgres://…/portal --keep

With --source-url the drill backs up that (existing) database instead of seeding one; it never
writes to it. Exit status 0 only when everything matches.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
READINGS = "measurements_bloodpressurereading"
DECRYPT_ALL = """
import django
django.setup()
from django.apps import apps
from core.fields import EncryptedTextField
total = 0
for model in apps.get_models():
    for field in model._meta.get_fields():
        if isinstance(field, EncryptedTextField):
            for value in model._base_manager.values_list(field.name, flat=True).iterator():
                total += bool(value)
print(total)
"""


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def admin_url(url: str) -> str:
    return with_database(url, "postgres")


def run(cmd: list[str], *, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd[:3])}…\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result.stdout


def django_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.settings.local")
    return env


def create_database(url: str, name: str) -> str:
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(url, name)


def drop_database(url: str, name: str) -> None:
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Every table of the public schema: (row count, md5 of its rows sorted by their text form)."""
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        result = {}
        for table in tables:
            query = sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM {} t"
            ).format(sql.Identifier(table))
            count, digest = conn.execute(query).fetchone()
            result[table] = (count, digest)
    return result


def wrong_key_fails(url: str) -> bool:
    """The dump without its keys is unreadable: another key must fail to decrypt it."""
    from cryptography.fernet import Fernet

    env = {**django_env(url), "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    result = subprocess.run(
        [sys.executable, "-c", DECRYPT_ALL], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    return result.returncode != 0 and "DecryptionError" in result.stderr


def seed(url: str) -> None:
    env = django_env(url)
    run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env=env)
    run([sys.executable, "manage.py", "seed_demo"], env=env)


def drill(args: argparse.Namespace) -> int:
    base = args.database_url
    suffix = f"{os.getpid()}"
    source_name = f"{args.prefix}_source_{suffix}"
    target_name = f"{args.prefix}_restored_{suffix}"
    made: list[str] = []
    started = time.monotonic()
    try:
        if args.source_url:
            source = args.source_url
        else:
            source = create_database(base, source_name)
            made.append(source_name)
            print(f"seeding {source_name} (migrate + seed_demo)…", flush=True)
            seed(source)
        with tempfile.TemporaryDirectory() as tmp:
            dump = Path(tmp) / "portal.dump"
            run(["pg_dump", "--format=custom", "--no-owner", "--file", str(dump), "--dbname", source])
            print(f"pg_dump -Fc: {dump.stat().st_size:,} bytes", flush=True)
            target = create_database(base, target_name)
            made.append(target_name)
            run(["pg_restore", "--no-owner", "--exit-on-error", "--dbname", target, str(dump)])
        before, after = fingerprint(source), fingerprint(target)
        problems = [
            f"{table}: source {before[table]} restored {after.get(table)}"
            for table in before
            if after.get(table) != before[table]
        ] + [f"{table}: only in the restored copy" for table in after.keys() - before.keys()]
        readings = before.get(READINGS, (0, ""))
        print(f"tables compared: {len(before)}, rows: {sum(c for c, _ in before.values()):,}")
        restored = after.get(READINGS, (0, "-"))[1]
        print(f"readings: {readings[0]:,} rows, md5 {readings[1]} (restored copy: {restored})")
        decrypted = run([sys.executable, "-c", DECRYPT_ALL], env=django_env(target)).strip()
        print(f"encrypted values decrypted with FIELD_ENCRYPTION_KEYS in the restored copy: {decrypted}")
        if int(decrypted) and not wrong_key_fails(target):
            problems.append("encrypted values decrypted with an unrelated key: they are not encrypted")
        if readings[0] == 0 and not args.source_url:
            problems.append("the seeded database has no readings: nothing was compared")
        if problems:
            print("RESTORE DRILL FAILED:\n  " + "\n  ".join(problems))
            return 1
        print(f"restore drill passed in {time.monotonic() - started:.0f} s")
        return 0
    finally:
        if not args.keep:
            for name in made:
                drop_database(base, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal"),
        help="the server to make the throw-away databases on (its database name is ignored)",
    )
    parser.add_argument("--source-url", help="back up this database instead of seeding one (read only)")
    parser.add_argument("--prefix", default="portal_drill", help="name prefix of the throw-away databases")
    parser.add_argument("--keep", action="store_true", help="keep the databases the drill made")
    return drill(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
