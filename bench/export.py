"""Export benchmark: a study's readings to CSV through our export path, against
(a) django-import-export's default queryset export (a ModelResource) and
(b) PostgreSQL `COPY (SELECT …) TO STDOUT` of the same rows (the physical limit).
Targets (docs/performance.md): ≥ 5× (a), ≥ 40 % of (b). Peak memory: bench/export_memory.py.

    .venv/bin/python bench/export.py [--rows 1000000] [--sample 100000]

(a) runs on --sample rows (it holds the whole dataset in memory; ~4.7k rows/s here): its rate is
what the ratio uses. "ours (CSV)" is the CSV stream the export job writes into its package;
"ours (package)" adds the zip (deflate), dictionary, manifest and checksums.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import setup_django, table, timed


class NullSink:
    """A binary stream that counts bytes (no disk in the measurement)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=100_000)
    args = parser.parse_args()
    setup_django()
    from django.db import connection
    from export_memory import fill
    from import_export import resources

    from measurements.exports.package import write_package
    from measurements.exports.rows import ExportFilters, readings_for_export
    from measurements.exports.services import export_rows
    from measurements.exports.writers import write_csv
    from measurements.models import BloodPressureReading

    study_id = fill(args.rows)
    qs = readings_for_export(study_id=study_id, filters=ExportFilters())
    total = qs.count()
    print(f"{total:,} readings in study {study_id}")

    sink = NullSink()
    t_ours, _ = timed(lambda: write_csv(export_rows(qs, "csv"), sink))
    with tempfile.TemporaryDirectory() as tmp:
        t_package, result = timed(
            lambda: write_package(Path(tmp) / "x.zip", fmt="csv", rows=export_rows(qs, "csv"), manifest={})
        )
    assert result.rows == total

    class DefaultResource(resources.ModelResource):
        class Meta:
            model = BloodPressureReading
            fields = ("participant", "measured_at", "systolic", "diastolic", "pulse", "irregular_heartbeat",
                      "source", "device_model", "grpid", "attrib")  # fmt: skip

    sample = min(args.sample, total)
    subset = BloodPressureReading.objects.filter(pk__in=qs.values("pk")[:sample]).order_by("pk")
    t_ie, _ = timed(lambda: len(DefaultResource().export(queryset=subset).csv))

    copy_sql = """
        COPY (SELECT s.slug, site.code, p.code, r.measured_at, r.systolic, r.diastolic, r.pulse,
                     r.irregular_heartbeat, r.source, r.device_model, r.grpid, r.attrib
              FROM measurements_bloodpressurereading r JOIN cohorts_participant p ON p.id = r.participant_id
              JOIN cohorts_study s ON s.id = p.study_id LEFT JOIN cohorts_site site ON site.id = p.site_id
              WHERE p.study_id = %s ORDER BY p.code, r.measured_at, r.id) TO STDOUT (FORMAT csv)
    """

    def copy_out() -> int:
        n = 0
        with connection.cursor() as cursor, cursor.cursor.copy(copy_sql, [study_id]) as copy:
            for data in copy:
                sink.write(data)
                n += 1
        return n

    t_copy, n_copy = timed(copy_out)
    assert n_copy == total
    rate = {
        "ours (CSV)": total / t_ours,
        "ours (package: zip, dictionary, manifest)": total / t_package,
        "django-import-export default (a)": sample / t_ie,
        "COPY (SELECT …) TO STDOUT (b)": total / t_copy,
    }
    print(table([(k, f"{v:,.0f}") for k, v in rate.items()], ("path", "rows/s")))
    vs_a = rate["ours (CSV)"] / rate["django-import-export default (a)"]
    vs_b = rate["ours (CSV)"] / rate["COPY (SELECT …) TO STDOUT (b)"]
    print(f"\nours vs django-import-export: {vs_a:.1f}x (target >= 5x)   {'OK' if vs_a >= 5 else 'MISSED'}")
    print(f"ours vs COPY:                 {vs_b:.0%} (target >= 40%)  {'OK' if vs_b >= 0.40 else 'MISSED'}")


if __name__ == "__main__":
    main()
