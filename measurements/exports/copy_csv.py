"""CSV through PostgreSQL's COPY: the database formats every cell, Python only moves bytes.

The same bytes as `writers.write_csv` (a test compares them), several times faster at a million rows
(bench/export.py). The export query (`rows.readings_for_export`, same filters and order) is wrapped
as a subquery; the outer SELECT formats what `rows.to_row` + `formatting.csv_cell` produce.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from django.db import connection
from django.db.models import QuerySet

from cohorts.models import Participant
from measurements.classification import EVENING_HOURS, MORNING_HOURS

from .columns import COLUMN_NAMES, FLAG_NAMES
from .rows import FIELDS

_INNER = ("pk", "study", "site", "code", "tz", "measured_at", "systolic", "diastolic", "pulse", "irregular",
          "source", "device_model", "device_id", "grpid", "attrib", *FLAG_NAMES)  # fmt: skip
assert len(_INNER) == len(FIELDS)


def _neutralise(expr: str) -> str:
    """A text cell a spreadsheet would read as a formula gets a leading quote (formatting.neutralise)."""
    return (
        f"CASE WHEN left({expr}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r', E'\\n') "
        f"THEN '''' || {expr} ELSE {expr} END"
    )


# The local time and its UTC offset are computed once per row (OFFSET 0 keeps PostgreSQL from
# inlining the lateral subquery into every expression that uses them).
_LOCAL_JOIN = (
    "CROSS JOIN LATERAL (SELECT t.measured_at AT TIME ZONE coalesce(nullif(t.tz, ''), 'UTC') AS loc, "
    "t.measured_at AT TIME ZONE 'UTC' AS utc OFFSET 0) AS l "
    "CROSS JOIN LATERAL (SELECT l.loc - l.utc AS off, extract(hour FROM l.loc) AS hour OFFSET 0) AS o"
)
_FLAGS = "concat_ws(';', " + ", ".join(f"CASE WHEN t.{f} THEN '{f}' END" for f in FLAG_NAMES) + ")"
_FORMATTED = (
    "t.study",  # a slug: [a-z0-9-], never starting with "-" (models.slug_validator)
    _neutralise("t.site"),
    _neutralise("t.code"),
    "replace(date_trunc('second', l.utc)::text, ' ', 'T') || 'Z'",
    """replace(date_trunc('second', l.loc)::text, ' ', 'T')
        || CASE WHEN o.off < interval '0' THEN '-' || to_char(-o.off, 'HH24:MI')
                ELSE '+' || to_char(o.off, 'HH24:MI') END""",
    "trim_scale(t.systolic)::text",
    "trim_scale(t.diastolic)::text",
    "trim_scale(t.pulse)::text",
    "CASE t.irregular WHEN true THEN 'true' WHEN false THEN 'false' END",
    "t.source",  # one of api/csv/manual
    _neutralise("nullif(t.device_model, '')"),
    "t.grpid::text",
    "t.attrib::text",
    f"nullif({_FLAGS}, '')",
    """CASE WHEN t.systolic > 180 OR t.diastolic > 120 THEN 'crisis'
        WHEN t.systolic >= 140 OR t.diastolic >= 90 THEN 'stage_2'
        WHEN t.systolic >= 130 OR t.diastolic >= 80 THEN 'stage_1'
        WHEN t.systolic >= 120 THEN 'elevated' ELSE 'normal' END""",
    f"""CASE WHEN o.hour BETWEEN {MORNING_HOURS.start} AND {MORNING_HOURS.stop - 1} THEN 'morning'
        WHEN o.hour BETWEEN {EVENING_HOURS.start} AND {EVENING_HOURS.stop - 1} THEN 'evening'
        ELSE 'other' END""",
)
assert len(_FORMATTED) == len(COLUMN_NAMES)


class CopyCsvRows:
    """A row source `writers.write_csv` hands the whole job to (PostgreSQL only).

    One COPY per group of participants, in participant-code order (the export's order), so that the
    progress can be saved between two COPYs: nothing else may run on the connection during one.
    """

    def __init__(
        self,
        qs: QuerySet,
        *,
        progress: Callable[[int], None] | None = None,
        every: int = 10_000,
        participants_per_copy: int = 100,
    ):
        self.qs, self.progress, self.every = qs, progress, every
        self.participants_per_copy = participants_per_copy

    def close(self) -> None:
        pass

    def sql(self, qs: QuerySet) -> tuple[str, tuple]:
        inner, params = qs.values_list(*FIELDS).query.sql_with_params()
        columns = ", ".join(_FORMATTED)
        return (
            # Only fixed SQL here; the filters' values stay parameters of the inner query.
            f"COPY (SELECT {columns} FROM ({inner}) AS t({', '.join(_INNER)}) {_LOCAL_JOIN}) "  # noqa: S608
            "TO STDOUT (FORMAT csv)",
            params,
        )

    def _participant_groups(self):
        ids = list(
            Participant.objects.filter(pk__in=self.qs.values("participant_id"))
            .order_by("code", "pk")
            .values_list("pk", flat=True)
        )
        for start in range(0, len(ids), self.participants_per_copy):
            yield ids[start : start + self.participants_per_copy]

    def write_csv(self, out: BinaryIO) -> int:
        out.write((",".join(COLUMN_NAMES) + "\r\n").encode())
        count = reported = 0
        for group in self._participant_groups():
            sql, params = self.sql(self.qs.filter(participant_id__in=group))
            with connection.cursor() as cursor, cursor.cursor.copy(sql, params) as copy:
                # COPY sends one row per message: turn its \n into the CSV writer's \r\n.
                for data in copy:
                    out.write(bytes(data[:-1]) + b"\r\n")
                    count += 1
            if self.progress is not None and count - reported >= self.every:
                self.progress(count)
                reported = count
        return count
