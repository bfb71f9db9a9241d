"""Peak memory and speed of the streamed export, per format, at two study sizes.

    .venv/bin/python bench/export_memory.py [--rows 100000 1000000] [--formats csv xlsx json fhir]

Uses its own PostgreSQL database (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/portal_bench;
created and migrated if missing), fills one study with N synthetic readings in SQL, then runs each export
in a fresh child process and reports its peak RSS (ru_maxrss) next to the RSS after Django started: flat
memory means the peak does not grow with N.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import setup_django

PARTICIPANTS = 200


def ensure_database() -> None:
    setup_django()  # creates and migrates the bench database


def fill(rows: int) -> int:
    """A study `bench-<rows>` with `rows` readings spread over PARTICIPANTS participants."""
    from django.db import connection

    from cohorts.models import Participant, Site, Study

    study, _ = Study.objects.get_or_create(slug=f"bench-{rows}", defaults={"name": f"Bench {rows}"})
    site, _ = Site.objects.get_or_create(study=study, code="s1", defaults={"name": "Site 1"})
    ids = []
    for i in range(PARTICIPANTS):
        participant, _ = Participant.objects.get_or_create(
            study=study,
            code=f"B-{i:04d}",
            defaults={"site": site, "timezone": "Europe/Paris", "status": "active"},
        )
        ids.append(participant.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM measurements_bloodpressurereading WHERE participant_id = ANY(%s)", [ids]
        )
        have = cursor.fetchone()[0]
        if have != rows:
            cursor.execute(
                "DELETE FROM measurements_bloodpressurereading WHERE participant_id = ANY(%s)", [ids]
            )
            cursor.execute(
                """
INSERT INTO measurements_bloodpressurereading
  (participant_id, measured_at, source_timezone, systolic, diastolic, pulse, irregular_heartbeat,
   source, grpid, attrib, device_id, device_model, device_model_id, raw, ingested_at, updated_at,
   ambiguous_user, manual_entry, edited_upstream, deleted_upstream, local_time_ambiguous)
SELECT (%(ids)s)[1 + (g %% %(n)s)], timestamptz '2020-01-01 00:00Z' + g * interval '37 seconds',
       'Europe/Paris', 100 + (g %% 80) + (g %% 2) * 0.5, 60 + (g %% 40), 50 + (g %% 50), NULL,
       'api', g, 0, repeat('a', 40), 'BPM Connect', 45, '{}', now(), now(),
       g %% 97 = 0, false, false, false, false
FROM generate_series(1, %(rows)s) AS g
                """,
                {"ids": ids, "n": len(ids), "rows": rows},
            )
            cursor.execute("ANALYZE measurements_bloodpressurereading")
    return study.pk


def run_one(study_id: int, fmt: str) -> dict:
    """In a child process: export once, report time and memory."""
    import resource
    import tempfile

    setup_django(migrate=False)
    from measurements.exports.package import write_package
    from measurements.exports.rows import ExportFilters, readings_for_export
    from measurements.exports.services import export_rows

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        qs = readings_for_export(study_id=study_id, filters=ExportFilters())
        rows = export_rows(qs, fmt)  # the export jobs' own choice (COPY for CSV on PostgreSQL)
        result = write_package(Path(tmp) / "bench.zip", fmt=fmt, rows=rows, manifest={"bench": True})
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "format": fmt,
        "rows": result.rows,
        "seconds": round(elapsed, 1),
        "rows_per_s": int(result.rows / elapsed) if elapsed else 0,
        "zip_mb": round(result.size / 2**20, 1),
        "rss_after_setup_mb": round(baseline / 1024, 1),
        "peak_rss_mb": round(peak / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--formats", nargs="+", default=["csv", "xlsx", "json", "fhir"])
    parser.add_argument("--child", nargs=2, metavar=("STUDY_ID", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(int(args.child[0]), args.child[1])))
        return
    ensure_database()
    heads = ("rows", "format", "seconds", "rows/s", "zip MB", "RSS setup", "peak RSS")
    print(" ".join(f"{h:>9}" for h in heads))
    for rows in args.rows:
        study_id = fill(rows)
        for fmt in args.formats:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(study_id), fmt],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            cols = ("rows", "format", "seconds", "rows_per_s", "zip_mb", "rss_after_setup_mb", "peak_rss_mb")
            print(" ".join(f"{r[c]:>9}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
