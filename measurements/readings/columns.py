"""A reading's columns from a getmeas group, defined once.

`COLUMNS` lists what a group gives a `BloodPressureReading`, in the order of a COPY line: the model
field (also the `ParsedReading` attribute), the stage table's column and SQL type, how a parsed value
is written as COPY text, and the SQL that turns a staged value into the stored one. Everything that
writes API readings derives from it: the ORM path's field lists (`upsert`, what the SQLite demo
runs), the staging table, the reference COPY line of a parsed reading, and the upsert statement
(`store` and `upsert` on PostgreSQL). `copy_lines` formats the usual group shape by hand for speed,
in this order; tests compare its lines with `copy_line`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from measurements import quality
from measurements.models import BloodPressureReading

from .parse import ParsedReading

NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """A string as a COPY text field."""
    return value.translate(_COPY_ESCAPES)


def _int(value: int | None) -> str:
    return NULL if value is None else str(value)


def _epoch(value: dt.datetime | None) -> str:
    return NULL if value is None else str(int(value.timestamp()))


def _decimal(value: Decimal | None) -> str:
    return NULL if value is None else format(value, "f")


def _json(value: dict) -> str:
    return copy_text(json.dumps(value))


def _flag(value: bool) -> str:
    return "t" if value else "f"


@dataclass(frozen=True)
class Column:
    field: str
    stage: str
    stage_type: str
    text: Callable[[Any], str]
    load: str = "{}"

    def loaded(self, table: str = "") -> str:
        """SQL of the stored value from the staged one (of `table`, e.g. "s.", when given)."""
        return self.load.format(table + self.stage)


COLUMNS: tuple[Column, ...] = (
    Column("grpid", "grpid", "bigint", _int),
    Column("measured_at", "measured", "bigint", _epoch, "to_timestamp({})"),
    Column("systolic", "systolic", "numeric", _decimal),
    Column("diastolic", "diastolic", "numeric", _decimal),
    Column("pulse", "pulse", "numeric", _decimal),
    Column("attrib", "attrib", "integer", _int),
    Column("device_id", "device_id", "text", copy_text),
    Column("device_model", "device_model", "text", copy_text),
    Column("device_model_id", "device_model_id", "integer", _int),
    Column("raw", "raw", "jsonb", _json),
    Column("upstream_created", "created", "bigint", _epoch, "to_timestamp({})"),
    Column("upstream_modified", "modified", "bigint", _epoch, "to_timestamp({})"),
    Column("manual_entry", "manual_entry", "boolean", _flag),
    Column("ambiguous_user", "ambiguous_user", "boolean", _flag),
)
BY_FIELD = {column.field: column for column in COLUMNS}
KEY = "grpid"
#: The columns of a COPY line and of the stage table, in order.
STAGE_COLUMNS = tuple(column.stage for column in COLUMNS)
#: Fields computed from a reading's values when it is written (`quality`: the plausibility flags).
DERIVED = ("quality_flags",)
#: What a new version of a stored group replaces: its values, the source, the source's zone and what
#: is derived from the values.
VALUE_FIELDS = ("source", "source_timezone", *(c.field for c in COLUMNS if c.field != KEY), *DERIVED)
#: Flags of a stored reading whose group changed upstream.
EDITED = {"edited_upstream": True, "deleted_upstream": False}
#: Flags of a new reading.
NEW = {"edited_upstream": False, "deleted_upstream": False, "local_time_ambiguous": False}
#: Fields an API reading leaves to their defaults: unknown from Withings (irregular_heartbeat),
#: or set by other paths (duplicate_of, by the CSV import).
UNSET = ("id", "irregular_heartbeat", "duplicate_of")


def source_of(reading: ParsedReading) -> str:
    return BloodPressureReading.Source.MANUAL if reading.manual_entry else BloodPressureReading.Source.API


def reading_values(reading: ParsedReading) -> dict[str, Any]:
    """The model fields a parsed reading sets, its source and plausibility included (the ORM path)."""
    return {
        "source": source_of(reading),
        **{c.field: getattr(reading, c.field) for c in COLUMNS},
        "quality_flags": quality.flags_of(reading.systolic, reading.diastolic, reading.pulse),
    }


def copy_line(reading: ParsedReading) -> str:
    """A parsed reading as one line of COPY text in `STAGE_COLUMNS` order."""
    return "\t".join(c.text(getattr(reading, c.field)) for c in COLUMNS) + "\n"


# -- PostgreSQL: the stage and the upsert statement ----------------------------------------------

TABLE = BloodPressureReading._meta.db_table
STAGE = "_stage_api_readings"
CREATE_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} "
    f"({', '.join(f'{c.stage} {c.stage_type}' for c in COLUMNS)}) ON COMMIT DELETE ROWS"
)
STAGE_EXISTS = f"SELECT to_regclass('pg_temp.{STAGE}') IS NOT NULL"
COPY_STAGE = f"COPY {STAGE} ({', '.join(STAGE_COLUMNS)}) FROM STDIN"

_SOURCE_SQL = (
    f"CASE WHEN {BY_FIELD['manual_entry'].loaded()} THEN '{BloodPressureReading.Source.MANUAL.value}' "
    f"ELSE '{BloodPressureReading.Source.API.value}' END"
)
_INSERT = (
    ("participant_id", "%(participant)s"),
    ("source", _SOURCE_SQL),
    ("source_timezone", "%(source_timezone)s"),
    *((c.field, c.loaded()) for c in COLUMNS),
    (
        "quality_flags",
        quality.flags_sql(*(BY_FIELD[f].loaded() for f in ("systolic", "diastolic", "pulse"))),
    ),
    ("ingested_at", "%(stamp)s"),
    ("updated_at", "%(stamp)s"),
    *((field, str(value).lower()) for field, value in NEW.items()),
)
_ASSIGN = ", ".join(
    [f"{field} = EXCLUDED.{field}" for field in (*VALUE_FIELDS, "updated_at")]
    + [f"{field} = {str(value).lower()}" for field, value in EDITED.items()]
)
_MODIFIED = BY_FIELD["upstream_modified"]
# All parts of one statement see the rows as they were before it: `moved` reads the stored versions
# that `up` replaces, and `emptied` leaves the stage empty for the next page of the same transaction.
# `up` returns (inserted, measured_at, systolic, diastolic, ambiguous_user, quality_flags) of every row
# written. Its parameters include `quality.sql_params()`.
UPSERT_WITH = f"""
WITH moved AS (
    SELECT r.measured_at FROM {TABLE} r JOIN {STAGE} s ON s.{KEY} = r.{KEY}
    WHERE r.participant_id = %(participant)s AND r.{KEY} BETWEEN %(low)s AND %(high)s
        AND r.{_MODIFIED.field} IS DISTINCT FROM {_MODIFIED.loaded("s.")}
), up AS (
    INSERT INTO {TABLE} AS t ({", ".join(field for field, _ in _INSERT)})
    SELECT {", ".join(sql for _, sql in _INSERT)}
    FROM {STAGE}
    ON CONFLICT (participant_id, {KEY}) DO UPDATE SET {_ASSIGN}
    WHERE t.{_MODIFIED.field} IS DISTINCT FROM EXCLUDED.{_MODIFIED.field}
    RETURNING (xmax = 0) AS inserted, measured_at, systolic, diastolic, ambiguous_user, quality_flags
), emptied AS (
    DELETE FROM {STAGE}
)
"""  # noqa: S608 (identifiers only: the model's table and fields, the stage's constant name)
