"""Streaming writers: rows in, bytes out, one row in memory at a time.

Each writer takes an iterator of `Row`s and a binary stream (a zip entry) and returns
(rows written, records written): records are rows for CSV/XLSX/JSON and resources for FHIR.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable
from typing import BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter

from .columns import COLUMN_NAMES
from .copy_csv import CopyCsvRows
from .fhir import observations
from .formatting import csv_cell, json_value, xlsx_cell
from .rows import Row

Writer = Callable[[Iterable[Row], BinaryIO], tuple[int, int]]


def _text(out: BinaryIO) -> io.TextIOWrapper:
    return io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)


def write_csv(rows: Iterable[Row], out: BinaryIO) -> tuple[int, int]:
    if isinstance(rows, CopyCsvRows):  # PostgreSQL formats the cells itself (copy_csv.py)
        count = rows.write_csv(out)
        return count, count
    text = _text(out)
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(COLUMN_NAMES)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(v) for v in row.values])
        count += 1
    text.flush()
    text.detach()
    return count, count


def write_json(rows: Iterable[Row], out: BinaryIO) -> tuple[int, int]:
    """A JSON array of objects, one per reading, keys in column order; unknown is null."""
    text = _text(out)
    text.write("[")
    count = 0
    for row in rows:
        record = dict(zip(COLUMN_NAMES, (json_value(v) for v in row.values), strict=True))
        text.write(("\n" if count == 0 else ",\n") + json.dumps(record, ensure_ascii=False))
        count += 1
    text.write("\n]\n")
    text.flush()
    text.detach()
    return count, count


def write_fhir(rows: Iterable[Row], out: BinaryIO) -> tuple[int, int]:
    """NDJSON: one Observation per line (the BP panel, then its heart rate when measured)."""
    text = _text(out)
    count = resources = 0
    for row in rows:
        for resource in observations(row):
            text.write(json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n")
            resources += 1
        count += 1
    text.flush()
    text.detach()
    return count, resources


#: How the two time columns read in a spreadsheet: ISO 8601 order, to the second.
XLSX_DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
XLSX_UTC_COLUMN = COLUMN_NAMES.index("measured_at")
XLSX_LOCAL_COLUMN = COLUMN_NAMES.index("measured_at_local")
XLSX_TIME_WIDTH = 20


def _xlsx_time(sheet, value: dt.datetime) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    cell.number_format = XLSX_DATETIME_FORMAT
    return cell


def write_xlsx(rows: Iterable[Row], out: BinaryIO) -> tuple[int, int]:
    """openpyxl's write-only mode keeps rows in a temporary file, not in memory.

    Excel cells have no time zone, so the time columns are date-time cells holding wall-clock
    times: `measured_at` in UTC, `measured_at_local` in the participant's zone (the offset is their
    difference). The header row is frozen.
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("readings")
    sheet.freeze_panes = "A2"
    for index in (XLSX_UTC_COLUMN, XLSX_LOCAL_COLUMN):
        sheet.column_dimensions[get_column_letter(index + 1)].width = XLSX_TIME_WIDTH
    sheet.append(list(COLUMN_NAMES))
    count = 0
    for row in rows:
        cells = [xlsx_cell(v) for v in row.values]
        cells[XLSX_UTC_COLUMN] = _xlsx_time(sheet, row.measured_at.astimezone(dt.UTC).replace(tzinfo=None))
        cells[XLSX_LOCAL_COLUMN] = _xlsx_time(sheet, row.local.replace(tzinfo=None))
        sheet.append(cells)
        count += 1
    workbook.save(out)
    return count, count


WRITERS: dict[str, tuple[Writer, str]] = {
    "csv": (write_csv, "readings.csv"),
    "xlsx": (write_xlsx, "readings.xlsx"),
    "json": (write_json, "readings.json"),
    "fhir": (write_fhir, "observations.ndjson"),
}
