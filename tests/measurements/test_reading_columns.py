"""One definition of a reading's columns (`readings.columns`): it covers the model and the parser,
and what it generates (the COPY line, the stage, the statement) lines up."""

from __future__ import annotations

import dataclasses

from measurements.models import BloodPressureReading
from measurements.readings.columns import (
    COLUMNS,
    CREATE_STAGE,
    DERIVED,
    NEW,
    STAGE_COLUMNS,
    UNSET,
    UPSERT_WITH,
    VALUE_FIELDS,
    copy_line,
    reading_values,
)
from measurements.readings.parse import ParsedReading, parse_group
from tests.measurements.test_parsing_and_upsert import bp_group

PER_PAGE = {"participant", "source", "source_timezone", "ingested_at", "updated_at"}


def test_every_field_of_a_reading_is_written_or_deliberately_left_unset():
    from_groups = {c.field for c in COLUMNS}
    assert not from_groups & PER_PAGE
    assert not (from_groups | PER_PAGE) & set(UNSET)
    model = {f.name for f in BloodPressureReading._meta.concrete_fields}
    assert not from_groups & set(DERIVED)
    assert from_groups | PER_PAGE | set(NEW) | set(UNSET) | set(DERIVED) == model


def test_the_columns_are_what_the_parser_gives_in_its_order():
    assert [c.field for c in COLUMNS] == [f.name for f in dataclasses.fields(ParsedReading)]


def test_a_parsed_reading_as_copy_line_stage_and_orm_values():
    reading, _ = parse_group(bp_group(grpid=7, attrib=2, modified=None))
    assert copy_line(reading).split("\t") == [
        "7", "1700000000", "143.00", "91.00", "72.00", "2", "a" * 40, "BPM Connect", "45",
        '{"9": {"value": 9100, "unit": -2}, "10": {"value": 14300, "unit": -2}, '
        '"11": {"value": 7200, "unit": -2}}',
        "1700000100", "\\N", "t", "f\n",
    ]  # fmt: skip
    assert len(STAGE_COLUMNS) == len(COLUMNS) == CREATE_STAGE.count(",") + 1
    values = reading_values(reading)
    assert values["source"] == BloodPressureReading.Source.MANUAL
    assert set(values) == {"source", *(c.field for c in COLUMNS), *DERIVED}
    assert values["quality_flags"] == 0  # 143/91, pulse 72: plausible
    assert set(VALUE_FIELDS) == set(values) - {"grpid"} | {"source_timezone"}


def test_the_statement_updates_every_value_and_flags_the_edit():
    assignments = UPSERT_WITH.split("DO UPDATE SET", 1)[1].split("WHERE", 1)[0]
    for field in VALUE_FIELDS:
        assert f"{field} = EXCLUDED.{field}" in assignments
    assert "grpid = " not in assignments
    assert "edited_upstream = true" in assignments
    assert "deleted_upstream = false" in assignments
