"""Shared set-up for the benchmarks: a separate PostgreSQL database, Django configured against it."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)


def setup_django(*, migrate: bool = True) -> None:
    """Create the bench database if missing, point Django at it, migrate."""
    import psycopg

    url = database_url()
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.setdefault("WITHINGS_SANDBOX", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_DEBUG", "false")  # no per-query debug bookkeeping
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def record_consents(participant_ids: list[int]) -> None:
    """A consent record for each benchmark participant: the portal stores readings only for
    participants who consented (no consent, no data)."""
    from cohorts.models import ConsentDocument, ConsentRecord, Participant

    participants = Participant.objects.filter(pk__in=participant_ids, consents__isnull=True)
    records = []
    for participant in participants:
        document, _ = ConsentDocument.objects.get_or_create(
            study_id=participant.study_id,
            version=1,
            defaults={"title": "Bench consent", "body": "Bench.", "statements": "I agree."},
        )
        records.append(
            ConsentRecord(
                participant=participant, document=document, version=1, text_sha256="0" * 64,
                rendered_text="Bench.", signature="Bench", keep_data_on_withdrawal=True,
            )
        )  # fmt: skip
    ConsentRecord.objects.bulk_create(records, batch_size=1000)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def table(rows: list[tuple], headers: tuple) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = lambda r: "  ".join(str(x).rjust(w) for x, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])
