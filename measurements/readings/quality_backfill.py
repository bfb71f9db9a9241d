"""Recompute stored readings' plausibility flags (`measurements.quality`): after the column was added
(existing rows read 0) or after `PORTAL_PLAUSIBLE_PULSE_RANGE` changed.

Safe on large tables: primary-key ranges of `batch` rows, each range one short transaction that
rewrites only the rows whose flags change (no long lock, no table rewrite, resumable by re-running:
a second run changes nothing). The days of the rows that changed get their rollup recomputed, so
averages and categories follow.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable

from django.db import connection, transaction
from django.db.models import Max, Min

from measurements import quality
from measurements.models import BloodPressureReading
from measurements.monitoring.adherence import adherence_refresh_instants

BATCH = 5000
TABLE = BloodPressureReading._meta.db_table
FLAGS = quality.flags_sql("systolic", "diastolic", "pulse")
# Only fixed SQL: the table, its columns and the rules' expressions; values are parameters.
RECOMPUTE = f"""
UPDATE {TABLE} SET quality_flags = {FLAGS}
WHERE id >= %(low)s AND id < %(high)s AND quality_flags <> {FLAGS} {{study}}
RETURNING participant_id, measured_at
"""  # noqa: S608
STUDY = "AND participant_id IN (SELECT id FROM cohorts_participant WHERE study_id = %(study)s)"


def readings_quality_recompute(
    *, study_id: int | None = None, batch: int = BATCH, progress: Callable[[int, int], None] | None = None
) -> int:
    """Set every stored reading's flags from the current rules; returns the readings changed."""
    qs = BloodPressureReading.objects.all()
    if study_id is not None:
        qs = qs.filter(participant__study_id=study_id)
    bounds = qs.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return 0
    sql = RECOMPUTE.format(study=STUDY if study_id is not None else "")
    changed = 0
    for low in range(bounds["low"], bounds["high"] + 1, batch):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    sql, {"low": low, "high": low + batch, "study": study_id, **quality.sql_params()}
                )
                rows = cursor.fetchall()
            touched: dict[int, list[dt.datetime]] = defaultdict(list)
            for participant_id, measured_at in rows:
                touched[participant_id].append(measured_at)
            for participant_id, instants in touched.items():
                adherence_refresh_instants(participant_id=participant_id, instants=instants)
        changed += len(rows)
        if progress is not None:
            progress(min(low + batch, bounds["high"] + 1) - bounds["low"], changed)
    return changed
