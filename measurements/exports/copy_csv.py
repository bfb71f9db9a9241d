"""CSV through PostgreSQL's COPY: the database formats every cell, Python only moves bytes.

The same bytes as `writers.write_csv` (a test compares them), several times faster at a million rows
(bench/export.py). The export query (`rows.readings_for_export`, same filters and order) is wrapped
as a subquery; the outer SELECT formats what `rows.to_row` + `formatting.csv_cell` produce.

Formatting in SQL costs PostgreSQL ~3x the bare COPY of the same rows, and Python only moves bytes,
so one server process is the bound: groups of participants are copied on two connections at once
(one per core), each into a spooled temporary file that is appended to the output in order.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from typing import IO, BinaryIO

from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery

from cohorts.models import Participant, Study
from measurements import quality
from measurements.classification import EVENING_HOURS, MORNING_HOURS
from measurements.guidelines import Guideline, guideline
from measurements.sessions import session_start_sql

from .columns import COLUMN_NAMES, FLAG_NAMES
from .deidentify import DROPPED, RULES, Deidentifier
from .formatting import FORMULA_PREFIXES
from .rows import FIELDS

_INNER = ("pk", "study", "site", "code", "tz", "measured_at", "systolic", "diastolic", "pulse", "irregular",
          "source", "device_model", "device_id", "grpid", "attrib", *FLAG_NAMES, "quality_flags")  # fmt: skip
assert len(_INNER) == len(FIELDS)


# formatting.FORMULA_PREFIXES as code points, compared with ascii(cell): one integer per row instead of
# left() and seven text comparisons. (A PostgreSQL text value cannot hold NUL.)
_FORMULA_CODES = ", ".join(str(ord(prefix)) for prefix in FORMULA_PREFIXES if prefix != "\0")


def _neutralise(expr: str) -> str:
    """A text cell a spreadsheet would read as a formula gets a leading quote (formatting.neutralise)."""
    return f"CASE WHEN ascii({expr}) IN ({_FORMULA_CODES}) THEN '''' || {expr} ELSE {expr} END"


# The local time, UTC time and offset are computed once per row in two subqueries that OFFSET 0 keeps
# PostgreSQL from flattening (inlined, each use would convert the time zone again). Plain subqueries,
# not LATERAL joins: those cost a nested loop and a Memoize node per row (~120 ms of ~730 ms per
# 200k rows, EXPLAIN ANALYZE, 200 participants).
_LOCAL_TIMES = (
    "SELECT t.*, t.measured_at AT TIME ZONE coalesce(nullif(t.tz, ''), 'UTC') AS loc, "
    "t.measured_at AT TIME ZONE 'UTC' AS utc FROM ({sessions}) AS t OFFSET 0"
)
# De-identified: both times move by the participant's offset (whole days: hour and offset are kept).
_SHIFTED_LOCAL_TIMES = (
    "SELECT t.*, (t.measured_at AT TIME ZONE coalesce(nullif(t.tz, ''), 'UTC')) "
    "+ make_interval(days => o.days) AS loc, "
    "(t.measured_at AT TIME ZONE 'UTC') + make_interval(days => o.days) AS utc, o.days AS shift_days "
    "FROM ({sessions}) AS t "
    "JOIN unnest(%s::text[], %s::int[]) AS o(code, days) ON o.code = t.code "
    "OFFSET 0"
)
_OFFSETS = "SELECT t.*, t.loc - t.utc AS off, date_part('hour', t.loc) AS hour FROM ({local}) AS t OFFSET 0"
# Measurement sessions (`sessions`): two window passes over the export's own order (participant,
# measured_at, pk), right on the sorted export query: PostgreSQL sees its order there and sorts
# nothing again (one level up, behind the OFFSET 0 subqueries, it re-sorted every group: ~2x slower).
_SESSION_ELIGIBLE = "NOT t.deleted_upstream AND NOT t.ambiguous_user"


def _sessions(inner: str) -> str:
    new, start = session_start_sql(
        participant="t.code", at="t.measured_at", order="t.pk", eligible=_SESSION_ELIGIBLE
    )
    first = f"SELECT t.*, {new} AS session_new FROM ({inner}) AS t({', '.join(_INNER)})"  # noqa: S608
    return f"SELECT t.*, {start} AS session_start FROM ({first}) AS t"  # noqa: S608 (fixed SQL only)


_SESSION_ID = _neutralise(
    "t.code || '-' || to_char(t.session_start AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS\"Z\"')"
)
# De-identified: the id names the session's shifted start (deidentify.Deidentifier.session_id).
_SHIFTED_SESSION_ID = (
    "CASE WHEN t.session_start IS NOT NULL THEN "
    + _neutralise(
        "t.code || '-' || to_char((t.session_start AT TIME ZONE 'UTC') "
        "+ make_interval(days => t.shift_days), "
        '\'YYYYMMDD"T"HH24MISS"Z"\')'
    )
    + " END"
)
# Most readings have no flag: test the booleans first, build the list only for the others.
_FLAGS = (
    f"CASE WHEN {' OR '.join(f't.{f}' for f in FLAG_NAMES)} THEN concat_ws(';', "
    + ", ".join(f"CASE WHEN t.{f} THEN '{f}' END" for f in FLAG_NAMES)
    + ") END"
)
# Numbers go out as they are: COPY prints them with the output function a ::text cast would call
# (trim_scale(143.50) -> 143.5), without the cast's extra copy.
_FORMATTED = (
    "t.study",  # a slug: [a-z0-9-], never starting with "-" (models.slug_validator)
    _neutralise("t.site"),
    _neutralise("t.code"),
    "replace(date_trunc('second', t.utc)::text, ' ', 'T') || 'Z'",
    """replace(date_trunc('second', t.loc)::text, ' ', 'T')
        || CASE WHEN t.off < interval '0' THEN '-' || to_char(-t.off, 'HH24:MI')
                ELSE '+' || to_char(t.off, 'HH24:MI') END""",
    "trim_scale(t.systolic)",
    "trim_scale(t.diastolic)",
    "trim_scale(t.pulse)",
    "t.irregular::text",  # true/false (a bool's own output is t/f); unknown stays empty
    "t.source",  # one of api/csv/manual
    f"CASE WHEN t.device_model = '' THEN NULL ELSE {_neutralise('t.device_model')} END",
    "t.grpid",
    "t.attrib",
    _FLAGS,
    """CASE WHEN t.quality_flags <> 0 THEN NULL
        WHEN t.systolic > 180 OR t.diastolic > 120 THEN 'crisis'
        WHEN t.systolic >= 140 OR t.diastolic >= 90 THEN 'stage_2'
        WHEN t.systolic >= 130 OR t.diastolic >= 80 THEN 'stage_1'
        WHEN t.systolic >= 120 THEN 'elevated' ELSE 'normal' END""",
    f"""CASE WHEN t.hour BETWEEN {MORNING_HOURS.start} AND {MORNING_HOURS.stop - 1} THEN 'morning'
        WHEN t.hour BETWEEN {EVENING_HOURS.start} AND {EVENING_HOURS.stop - 1} THEN 'evening'
        ELSE 'other' END""",
    f"CASE WHEN t.session_start IS NOT NULL THEN {_SESSION_ID} END",
    quality.codes_sql("t.quality_flags"),
    # guideline_category: the study's guideline (`CopyCsvRows.sql`)
)
assert len(_FORMATTED) + 1 == len(COLUMN_NAMES)


def _guideline_category(profile: Guideline) -> str:
    category = profile.category_sql("t.systolic", "t.diastolic")
    return f"CASE WHEN t.quality_flags <> 0 THEN NULL ELSE {category} END"


# Groups copied at once, each on its own connection: the machines have two cores, and PostgreSQL
# formats the cells (one server process per COPY) while Python only moves bytes.
COPY_CONNECTIONS = 2
# A group's CSV stays in memory up to this size, then goes to a temporary file: memory stays flat.
SPOOL_IN_MEMORY = 4 * 2**20
ROWS_PER_WRITE = 1000
# Small enough that copying a spool out (and zipping it) overlaps with the COPYs of the next groups,
# and that progress is saved often; large enough that a COPY's fixed cost (~1 ms) does not matter.
PARTICIPANTS_PER_COPY = 25


def _crlf(rows: list) -> bytes:
    """COPY ends a row with LF, the CSV writer with CRLF. A quoted cell may hold an LF of its own, so the
    batch is rewritten at once (bytes.count and replace run in C) only when each of its LFs ends a row."""
    chunk = b"".join(rows)
    if chunk.count(b"\n") == len(rows):
        return chunk.replace(b"\n", b"\r\n")
    return b"".join(bytes(row[:-1]) + b"\r\n" for row in rows)


class CopyCsvRows:
    """A row source `writers.write_csv` hands the whole job to (PostgreSQL only).

    One COPY per group of participants, in participant-code order (the export's order), so that the
    progress can be saved between two COPYs: nothing else may run on the connection during one.
    Outside a transaction, `connections` groups are copied at once on connections of their own;
    inside one (other connections would not see its rows) they are copied on the caller's, in turn.
    """

    def __init__(
        self,
        qs: QuerySet,
        *,
        progress: Callable[[int], None] | None = None,
        every: int = 10_000,
        participants_per_copy: int = PARTICIPANTS_PER_COPY,
        connections: int = COPY_CONNECTIONS,
        deidentifier: Deidentifier | None = None,
        profile: Guideline | None = None,
    ):
        self.qs, self.progress, self.every = qs, progress, every
        self.deidentifier = deidentifier
        self._deid_arrays: tuple[list[str], list[int]] | None = None
        self.profile = profile or guideline(None)
        self.participants_per_copy = participants_per_copy
        self.connections = connections

    def close(self) -> None:
        pass

    def _offsets(self) -> tuple[list[str], list[int]]:
        """Every export participant's code and offset, passed to each COPY (joined on code): computed
        once, before the worker threads start (`_participant_groups`)."""
        if self._deid_arrays is None:
            assert self.deidentifier is not None
            codes = list(
                Participant.objects.filter(pk__in=self._participants()).values_list("code", flat=True)
            )
            self._deid_arrays = self.deidentifier.offsets(codes)
        return self._deid_arrays

    def sql(self, qs: QuerySet) -> tuple[str, tuple]:
        inner, params = qs.values_list(*FIELDS).query.sql_with_params()
        formatted = [*_FORMATTED, _guideline_category(self.profile)]
        if self.deidentifier is None:
            local = _LOCAL_TIMES.format(sessions=_sessions(inner))
            before, after = [], []
        else:
            local = _SHIFTED_LOCAL_TIMES.format(sessions=_sessions(inner))
            after = list(self._offsets())
            grpid, before = self.deidentifier.hash_sql("t.grpid", "grpid")
            formatted[COLUMN_NAMES.index("withings_grpid")] = grpid
            formatted[COLUMN_NAMES.index("session_id")] = _SHIFTED_SESSION_ID
            for name, rule in RULES.items():
                if rule == DROPPED:
                    formatted[COLUMN_NAMES.index(name)] = "NULL"
        columns = ", ".join(formatted)
        return (
            # Only fixed SQL here; the filters' values, codes, offsets and key stay parameters.
            f"COPY (SELECT {columns} FROM ({_OFFSETS.format(local=local)}) AS t) "  # noqa: S608
            "TO STDOUT (FORMAT csv)",
            (*before, *params, *after),
        )

    def _participants(self) -> list[int]:
        """The export's participants in its order, or more: one without readings in the export only adds
        nothing to its group's COPY. So: every participant of the studies the export has a reading of,
        found with one LIMIT 1 probe per study (PostgreSQL skips the other studies with a one-time
        filter), ~2 ms. The exact set, `pk__in=qs.values("participant_id")`, first hashes every reading
        of the export (~100 ms per 200k rows)."""
        first = self.qs.order_by().filter(participant__study_id=OuterRef("pk")).values("pk")[:1]
        studies = Study.objects.annotate(first=Subquery(first)).filter(first__isnull=False)
        participants = Participant.objects.filter(study__in=studies).order_by("code", "pk")
        return list(participants.values_list("pk", flat=True))

    def _participant_groups(self) -> list[list[int]]:
        """Participant ids in export order, cut into groups: at most `participants_per_copy` each, and
        at least one per connection when there are enough participants (else one would sit idle)."""
        ids = self._participants()
        if self.deidentifier is not None:
            self._offsets()
        size = max(1, min(self.participants_per_copy, -(-len(ids) // max(1, self.connections))))
        return [ids[start : start + size] for start in range(0, len(ids), size)]

    def _copy(self, group: list[int], out: IO[bytes]) -> int:
        """One COPY on this thread's connection; returns the rows written."""
        sql, params = self.sql(self.qs.filter(participant_id__in=group))
        count, batch = 0, []
        with connection.cursor() as cursor, cursor.cursor.copy(sql, params) as copy:
            for data in copy:  # one row per message
                batch.append(data)
                if len(batch) == ROWS_PER_WRITE:
                    out.write(_crlf(batch))
                    count += len(batch)
                    batch.clear()
        if batch:
            out.write(_crlf(batch))
            count += len(batch)
        return count

    def _spooled(self, group: list[int]) -> tuple[IO[bytes], int]:
        """In a worker thread: the group's CSV in a temporary file, on a connection of its own."""
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (returned)
        try:
            count = self._copy(group, spool)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool, count

    def _close_worker_connections(self, pool: ThreadPoolExecutor) -> None:
        """A worker keeps its connection from group to group (connecting costs more than a small COPY);
        one closing task per worker at the end, the barrier making each worker take exactly one."""
        barrier = threading.Barrier(self.connections)

        def close() -> None:
            connection.close()
            barrier.wait(timeout=60)

        for future in [pool.submit(close) for _ in range(self.connections)]:
            future.result()

    def _in_order(self, groups: list[list[int]]) -> Iterator[tuple[list[int], IO[bytes] | None, int]]:
        """(group, spool, rows) per group in order; no spool means: copy it here, on the caller's
        connection. At most `connections` + 1 groups are spooled ahead, so the disk used stays bounded."""
        if self.connections < 2 or len(groups) < 2 or connection.in_atomic_block:
            for group in groups:
                yield group, None, 0
            return
        with ThreadPoolExecutor(self.connections, thread_name_prefix="export-copy") as pool:
            pending: deque[tuple[Future, list[int]]] = deque()
            todo = iter(groups)
            try:
                for group in todo:
                    pending.append((pool.submit(self._spooled, group), group))
                    if len(pending) > self.connections:
                        break
                while pending:
                    future, group = pending.popleft()
                    spool, rows = future.result()
                    with spool:
                        yield group, spool, rows
                    nxt = next(todo, None)
                    if nxt is not None:
                        pending.append((pool.submit(self._spooled, nxt), nxt))
            finally:
                for future, _ in pending:  # on an error: drop what was not written
                    if not future.cancel() and future.exception() is None:
                        future.result()[0].close()
                self._close_worker_connections(pool)

    def write_csv(self, out: BinaryIO) -> int:
        out.write((",".join(COLUMN_NAMES) + "\r\n").encode())
        count = reported = 0
        # closing(): if writing fails, the workers are stopped and the spools removed right away.
        with closing(self._in_order(self._participant_groups())) as groups:
            for group, spool, rows in groups:
                if spool is None:
                    count += self._copy(group, out)
                else:
                    shutil.copyfileobj(spool, out, 2**20)
                    count += rows
                if self.progress is not None and count - reported >= self.every:
                    self.progress(count)
                    reported = count
        return count
