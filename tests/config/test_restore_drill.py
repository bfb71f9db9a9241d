"""`make restore-drill` runs here too (so CI runs it): seed → pg_dump -Fc → pg_restore into a new
database → same row counts and checksums, readings included, and the encrypted values readable only
with FIELD_ENCRYPTION_KEYS. And the comparison does catch a changed reading."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("restore_drill", ROOT / "scripts" / "restore_drill.py")
assert spec is not None
assert spec.loader is not None
restore_drill = importlib.util.module_from_spec(spec)
spec.loader.exec_module(restore_drill)


def server_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/postgres"


@pytest.mark.django_db
def test_the_restore_drill_passes_and_its_checksum_catches_a_changed_reading(capsys):
    prefix = f"test_drill_{os.getpid()}"
    base = server_url()
    source = restore_drill.with_database(base, f"{prefix}_source_{os.getpid()}")
    restored = restore_drill.with_database(base, f"{prefix}_restored_{os.getpid()}")
    try:
        assert restore_drill.main(["--database-url", base, "--prefix", prefix, "--keep"]) == 0
        out = capsys.readouterr().out
        assert "restore drill passed" in out
        readings = restore_drill.fingerprint(restored)[restore_drill.READINGS]
        assert readings[0] > 0
        assert f"readings: {readings[0]:,} rows, md5 {readings[1]}" in out
        decrypted = int(out.split("in the restored copy: ")[1].split()[0])
        assert decrypted > 0  # tokens, contact details, TOTP secrets: and they needed the keys
        assert restore_drill.wrong_key_fails(restored)

        with psycopg.connect(restored, autocommit=True) as conn:
            conn.execute(
                f"UPDATE {restore_drill.READINGS} SET systolic = systolic + 1 "
                f"WHERE id = (SELECT min(id) FROM {restore_drill.READINGS})"
            )
        before, after = restore_drill.fingerprint(source), restore_drill.fingerprint(restored)
        assert after[restore_drill.READINGS][0] == before[restore_drill.READINGS][0]
        assert after[restore_drill.READINGS][1] != before[restore_drill.READINGS][1]
        assert {t for t in before if before[t] != after[t]} == {restore_drill.READINGS}
    finally:
        for url in (source, restored):
            restore_drill.drop_database(base, url.rsplit("/", 1)[1])
