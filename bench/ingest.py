"""Ingest benchmark: getmeas groups → parsed and upserted by our ingestion path, against
(a) a per-row ORM `update_or_create` loop and (b) PostgreSQL COPY of the same rows into a plain
table (the physical limit). Targets (docs/performance.md): ≥ 20× (a), ≥ 30 % of (b).

    .venv/bin/python bench/ingest.py [--rows 1000000] [--page 1000] [--sample 5000]

The update_or_create baseline runs on --sample rows (it would take ~half an hour for a million);
its rate is what the ratio uses. Everything runs in one process against BENCH_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from common import record_consents, setup_django, table, timed

START = 1_600_000_000


def make_groups(participant_index: int, count: int, first_grpid: int) -> list[dict]:
    """`count` BPM Connect-shaped groups (unit −2, types 9/10/11), deterministic."""
    rng = random.Random(participant_index)
    groups = []
    for i in range(count):
        date = START + i * 21_600 + rng.randrange(3600)
        sys_, dia, pulse = rng.randrange(105, 170), rng.randrange(60, 105), rng.randrange(50, 100)
        groups.append({
            "grpid": first_grpid + i, "attrib": 0, "date": date, "created": date + 120,
            "modified": date + 120, "category": 1, "deviceid": "a" * 40, "hash_deviceid": "a" * 40,
            "modelid": 45, "model": "BPM Connect", "comment": None,
            "measures": [
                {"value": dia * 100, "type": 9, "unit": -2, "algo": 0, "fm": 3},
                {"value": sys_ * 100, "type": 10, "unit": -2, "algo": 0, "fm": 3},
                {"value": pulse * 100, "type": 11, "unit": -2, "algo": 0, "fm": 3},
            ],
        })  # fmt: skip
    return groups


def participants(study_slug: str, count: int) -> list[int]:
    from cohorts.models import Participant, Study

    study, _ = Study.objects.get_or_create(slug=study_slug, defaults={"name": study_slug, "status": "active"})
    existing = dict(Participant.objects.filter(study=study).values_list("code", "pk"))
    missing = [
        Participant(study=study, code=f"I-{i:05d}", timezone="Europe/Paris", status="active")
        for i in range(count) if f"I-{i:05d}" not in existing
    ]  # fmt: skip
    Participant.objects.bulk_create(missing)
    ids = list(Participant.objects.filter(study=study).order_by("code").values_list("pk", flat=True)[:count])
    record_consents(ids)
    return ids


def clear(ids: list[int]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table_name in (
            "measurements_dailyadherence",
            "measurements_alert",
            "measurements_bloodpressurereading",
        ):
            cursor.execute(f"DELETE FROM {table_name} WHERE participant_id = ANY(%s)", [ids])


def our_path(pages: list[tuple[int, list[dict]]]) -> int:
    """What the sync does per page (withings.services.sync._store_page): parse, upsert, refresh the
    touched days' rollup and check for crises, in one transaction per page."""
    from django.db import transaction

    from measurements.readings import readings_store_api_page

    stored = 0
    for participant_id, groups in pages:
        with transaction.atomic():
            result = readings_store_api_page(
                participant_id=participant_id, groups=groups, source_timezone="Europe/Paris"
            ).upsert
        stored += result.inserted + result.updated + result.unchanged
    return stored


def update_or_create_path(pages: list[tuple[int, list[dict]]]) -> int:
    from measurements.models import BloodPressureReading
    from measurements.readings.columns import reading_values
    from measurements.readings.parse import parse_groups

    n = 0
    for participant_id, groups in pages:
        for r in parse_groups(groups).readings:
            values = reading_values(r)
            BloodPressureReading.objects.update_or_create(
                participant_id=participant_id,
                grpid=values.pop("grpid"),
                defaults={**values, "source_timezone": "Europe/Paris"},
            )
            n += 1
    return n


def upsert_only_path(pages: list[tuple[int, list[dict]]]) -> int:
    """The database side alone: COPY stage + INSERT … ON CONFLICT of already-parsed rows, no rollup."""
    from django.db import transaction

    from measurements.readings.copy_lines import parse_groups_copy
    from measurements.readings.store import _latest, _participant, _upsert

    parsed = [(_participant(pid)[0], _latest(parse_groups_copy(groups).rows)) for pid, groups in pages]
    n = 0
    for participant, latest in parsed:
        with transaction.atomic():
            _upsert(participant, latest, "Europe/Paris")
        n += len(latest)
    return n


def copy_path(rows: list[tuple]) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute(
            "CREATE TABLE bench_copy (participant_id bigint, grpid bigint, measured_at timestamptz, "
            "systolic numeric(6,2), diastolic numeric(6,2), pulse numeric(6,2), attrib int, device_id text, "
            "device_model text, device_model_id int, raw jsonb, upstream_created timestamptz, "
            "upstream_modified timestamptz)"
        )
        with cursor.cursor.copy("COPY bench_copy FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute("DROP TABLE bench_copy")
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--participants", type=int, default=500)
    parser.add_argument("--page", type=int, default=1000, help="groups per getmeas page")
    parser.add_argument("--sample", type=int, default=5000, help="rows for the update_or_create baseline")
    parser.add_argument("--profile", metavar="HTML", help="write a pyinstrument profile of our path")
    args = parser.parse_args()
    setup_django()
    import json

    from measurements.readings.parse import parse_groups

    per_participant = max(1, args.rows // args.participants)
    ids = participants("bench-ingest", args.participants)
    pages: list[tuple[int, list[dict]]] = []
    for index, pid in enumerate(ids):
        groups = make_groups(index, per_participant, first_grpid=10_000_000 + index * per_participant)
        pages += [(pid, groups[i : i + args.page]) for i in range(0, len(groups), args.page)]
    total = sum(len(g) for _, g in pages)
    print(f"{total:,} groups for {len(ids)} participants, pages of {args.page}")

    copy_rows = [
        (pid, r.grpid, r.measured_at, r.systolic, r.diastolic, r.pulse, r.attrib, r.device_id, r.device_model,
         r.device_model_id, json.dumps(r.raw), r.upstream_created, r.upstream_modified)
        for pid, groups in pages for r in parse_groups(groups).readings
    ]  # fmt: skip
    t_copy, _ = timed(lambda: copy_path(copy_rows))
    copy_rows.clear()

    clear(ids)
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    t_ours, stored = timed(lambda: our_path(pages))
    if args.profile:
        profiler.stop()
        Path(args.profile).write_text(profiler.output_html())
        print(profiler.output_text(unicode=False, color=False, show_all=False)[:6000])
    assert stored == total, (stored, total)
    t_again, _ = timed(lambda: our_path(pages))  # idempotent re-run: nothing changes
    clear(ids)
    t_db, _ = timed(lambda: upsert_only_path(pages))  # no monitoring rollup, no per-page transaction hooks

    sample_pages, left = [], args.sample
    for pid, groups in pages:
        if left <= 0:
            break
        sample_pages.append((pid, groups[:left]))
        left -= len(groups[:left])
    clear([pid for pid, _ in sample_pages])
    t_uoc, n_uoc = timed(lambda: update_or_create_path(sample_pages))
    clear(ids)

    rate = {
        "ours": total / t_ours,
        "ours, re-run (no change)": total / t_again,
        "  of which: parse + COPY stage + INSERT ON CONFLICT only": total / t_db,
        "update_or_create loop (a)": n_uoc / t_uoc,
        "COPY into a plain table (b)": total / t_copy,
    }
    print(table([(k, f"{v:,.0f}") for k, v in rate.items()], ("path", "rows/s")))
    vs_a = rate["ours"] / rate["update_or_create loop (a)"]
    vs_b = rate["ours"] / rate["COPY into a plain table (b)"]
    print(f"\nours vs update_or_create: {vs_a:.1f}x (target >= 20x)  {'OK' if vs_a >= 20 else 'MISSED'}")
    print(f"ours vs COPY:             {vs_b:.0%} (target >= 30%)  {'OK' if vs_b >= 0.30 else 'MISSED'}")


if __name__ == "__main__":
    main()
