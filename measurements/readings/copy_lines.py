"""getmeas groups straight to COPY text lines: the bulk ingestion path (bench/ingest.py).

`parse.parse_group` builds exact `Decimal` values and aware datetimes for every group; at a million
groups that object work, and psycopg adapting it again for COPY, cost more than the database's own
insert. Here a group of the usual shape (plain ints where numbers are expected, strings where text is)
goes directly to one line of COPY text in the order of `columns.COLUMNS`: values as exact decimal
strings (value × 10^unit, by moving the decimal point of the integer — PostgreSQL parses them
exactly), instants as epoch seconds for ``to_timestamp`` in SQL. Anything else (strings for numbers,
floats, booleans, odd units, values out of range) goes through `parse_group`, the reference, so
leniency and rejection stay exactly its own; tests assert both give identical lines and stored rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .columns import NULL, copy_line, copy_text
from .parse import AMBIGUOUS_ATTRIB, MANUAL_ATTRIBS, PageSkips, ParsedReading, parse_group

MAX_EPOCH = 32503680000  # year 3000, as parse.instant_from_unix
#: Units the fast path formats itself; others (never seen from Withings) go to the reference parser.
MIN_UNIT, MAX_UNIT = -8, 4


class CopyRow(NamedTuple):
    grpid: int
    measured: int  # epoch seconds of `date`
    recency: int  # epoch seconds of `modified`, else of `date`: the newest version of a group wins
    line: str


@dataclass
class CopyParse(PageSkips):
    rows: list[CopyRow] = field(default_factory=list)


def decimal_text(value: int, unit: int) -> str | None:
    """value × 10^unit as an exact decimal string, or None when |result| ≥ 10000 (parse.MAX_ABS_VALUE)."""
    if unit >= 0:
        number = value * 10**unit
        return str(number) if -10000 < number < 10000 else None
    limit = 10000 * 10**-unit
    if not -limit < value < limit:
        return None
    digits = str(-value if value < 0 else value).rjust(1 - unit, "0")
    return ("-" if value < 0 else "") + digits[:unit] + "." + digits[unit:]


def _measure_text(value: int, unit: int) -> str | None:
    """`decimal_text`, memoised: a page repeats the same few dozen (value, unit) pairs."""
    key = (value, unit)
    text = _TEXTS.get(key)
    if text is None:
        if type(value) is not int or type(unit) is not int or not MIN_UNIT <= unit <= MAX_UNIT:
            return None
        text = decimal_text(value, unit)
        if text is None:
            return None
        if len(_TEXTS) < 100_000:
            _TEXTS[key] = text
    return text


def _text(value: str) -> str:
    """`copy_text`, memoised (device ids and model names repeat on every group)."""
    text = _STRINGS.get(value)
    if text is None:
        text = copy_text(value[:64])
        if len(_STRINGS) < 10_000:
            _STRINGS[value] = text
    return text


_TEXTS: dict[tuple, str] = {}
_STRINGS: dict[str, str] = {}


def _fast_line(group: dict) -> tuple[CopyRow | None, str] | None:
    """The usual shape → (row, "") or (None, reason); None when the reference parser must decide."""
    get = group.get
    category = get("category")
    if type(category) is not int:
        return None
    if category != 1:
        return None, "not_a_measure"
    grpid, date, measures = get("grpid"), get("date"), get("measures")
    if (
        type(grpid) is not int
        or type(date) is not int
        or not 0 < date < MAX_EPOCH
        or type(measures) is not list
    ):
        return None
    sys_ = dia = pulse = None
    raw = []
    for measure in measures:
        if type(measure) is not dict:
            return None
        mtype = measure.get("type")
        if mtype == 9 or mtype == 10 or mtype == 11:
            if type(mtype) is not int:
                return None  # True == 1 and 10.0 == 10: the reference decides
            value, unit = measure.get("value"), measure.get("unit")
            text = _measure_text(value, unit)
            if text is None:
                return None  # not plain ints, or out of range: the reference rejects it as malformed
            raw.append(f'"{mtype}": {{"value": {value}, "unit": {unit}}}')
            if mtype == 10:
                sys_ = text
            elif mtype == 9:
                dia = text
            else:
                pulse = text
        elif type(mtype) is not int:
            return None
    if sys_ is None or dia is None:
        return None, "not_blood_pressure"
    attrib = get("attrib")
    device = get("hash_deviceid") or get("deviceid") or ""
    model_id = get("modelid")
    if model_id is None:
        model_id = get("model_id")
    created, modified = get("created"), get("modified")
    model = get("model")
    if (
        (attrib is not None and type(attrib) is not int)
        or type(device) is not str
        or "\x00" in device  # NUL (PostgreSQL text cannot hold it): the reference drops it
        or (type(model) is str and "\x00" in model)
        or (model_id is not None and type(model_id) is not int)
        or (created is not None and (type(created) is not int or not 0 < created < MAX_EPOCH))
        or (modified is not None and (type(modified) is not int or not 0 < modified < MAX_EPOCH))
    ):
        return None
    line = (
        f"{grpid}\t{date}\t{sys_}\t{dia}\t{NULL if pulse is None else pulse}\t"
        f"{NULL if attrib is None else attrib}\t{_text(device)}\t"
        f"{_text(model) if isinstance(model, str) else ''}\t{NULL if model_id is None else model_id}\t"
        f"{{{', '.join(raw)}}}\t{NULL if created is None else created}\t"
        f"{NULL if modified is None else modified}\t"
        f"{'t' if attrib in MANUAL_ATTRIBS or not device else 'f'}\t"
        f"{'t' if attrib == AMBIGUOUS_ATTRIB else 'f'}\n"
    )
    return CopyRow(grpid, date, date if modified is None else modified, line), ""


def copy_row_of(r: ParsedReading) -> CopyRow:
    """A reference-parsed reading as the same kind of line."""
    measured = int(r.measured_at.timestamp())
    recency = measured if r.upstream_modified is None else int(r.upstream_modified.timestamp())
    return CopyRow(r.grpid, measured, recency, copy_line(r))


def parse_groups_copy(groups: Any) -> CopyParse:
    """Like `parse.parse_groups` (same readings, skip reasons and non-BP grpids), as COPY lines."""
    result = CopyParse()
    if not isinstance(groups, list):
        result.skipped["malformed"] += 1
        return result
    for group in groups:
        outcome = _fast_line(group) if type(group) is dict else None
        if outcome is None:
            reading, reason = parse_group(group)
            outcome = (copy_row_of(reading), "") if reading is not None else (None, reason)
        row, reason = outcome
        if row is not None:
            result.rows.append(row)
            continue
        result.skipped[reason] += 1
        if reason == "not_blood_pressure":
            result.non_bp_grpids.add(int(group["grpid"]))
    return result
