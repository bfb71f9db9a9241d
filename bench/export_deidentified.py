"""De-identification's cost on the export paths: 1M readings to CSV (the COPY path, shift and hashes in
SQL) and 100k to JSON (Python rows), full vs de-identified, in one run.

    .venv/bin/python bench/export_deidentified.py [--rows 1000000] [--json-rows 100000]

Own database (BENCH_DATABASE_URL, default portal_bench_api, shared with bench/api_pages.py).
"""

from __future__ import annotations

import argparse
import io
import os

from common import DEFAULT_URL, setup_django, table, timed

os.environ.setdefault("BENCH_DATABASE_URL", DEFAULT_URL.rsplit("/", 1)[0] + "/portal_bench_api")


class NullSink(io.RawIOBase):
    """Counts nothing, keeps nothing: the writers' output without a disk."""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return len(data)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json-rows", type=int, default=100_000)
    args = parser.parse_args()
    setup_django()
    from export_memory import fill

    from cohorts.models import Study
    from measurements.exports.deidentify import Deidentifier
    from measurements.exports.rows import ExportFilters, readings_for_export
    from measurements.exports.services import export_rows
    from measurements.exports.writers import write_csv, write_json

    results = []
    for rows, fmt, writer in ((args.rows, "csv", write_csv), (args.json_rows, "json", write_json)):
        study = Study.objects.get(pk=fill(rows))
        qs = readings_for_export(study_id=study.pk, filters=ExportFilters())
        key = Deidentifier.for_study(study)
        t_full, (n_full, _) = timed(lambda: writer(export_rows(qs, fmt), NullSink()))  # noqa: B023
        t_deid, (n_deid, _) = timed(lambda: writer(export_rows(qs, fmt, deidentifier=key), NullSink()))  # noqa: B023
        assert n_full == n_deid == rows
        results.append(
            (fmt, f"{rows:,}", f"{rows / t_full:,.0f}", f"{rows / t_deid:,.0f}", f"{t_deid / t_full:.2f}×")
        )
    print(table(results, ("format", "readings", "full rows/s", "de-identified rows/s", "time ratio")))


if __name__ == "__main__":
    main()
