"""What the portal can send (the sources of each mode), how a value is written for a REDCap field of a
given type, and the check of a field map against the project's metadata."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .models import RedcapProject


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # datetime, date, int, number, bool, text
    label: str


READING_SOURCES = (
    Source("measured_at_local", "datetime", "When measured, participant's local time"),
    Source("measured_at_utc", "datetime", "When measured, UTC"),
    Source("systolic", "number", "Systolic (mmHg)"),
    Source("diastolic", "number", "Diastolic (mmHg)"),
    Source("pulse", "number", "Pulse (bpm)"),
    Source("irregular_heartbeat", "bool", "Irregular heartbeat (blank when unknown)"),
    Source("source", "text", "Source (api, csv, manual)"),
    Source("device_model", "text", "Device model"),
    Source("timezone", "text", "Participant's time zone"),
)
SUMMARY_SOURCES = (
    Source("period_start", "date", "First day of the period (participant's local date)"),
    Source("period_end", "date", "Last day of the period"),
    Source("readings_count", "int", "Readings in the period"),
    Source("days_with_readings", "int", "Days with at least one reading"),
    Source("mean_systolic", "number", "Mean systolic (mmHg, 1 decimal)"),
    Source("mean_diastolic", "number", "Mean diastolic (mmHg, 1 decimal)"),
    Source("mean_pulse", "number", "Mean pulse (bpm, 1 decimal)"),
)
SOURCES = {RedcapProject.Mode.READINGS: READING_SOURCES, RedcapProject.Mode.SUMMARY: SUMMARY_SOURCES}

# (field_type, validation) REDCap fields that each kind of source may fill.
_TEXTISH = ("text", "notes")
_ACCEPTS = {
    "datetime": lambda ftype, v: (
        ftype in _TEXTISH and v in ("", "datetime_ymd", "datetime_seconds_ymd", "date_ymd")
    ),
    "date": lambda ftype, v: ftype in _TEXTISH and v in ("", "date_ymd"),
    "int": lambda ftype, v: ftype in _TEXTISH and v in ("", "integer", "number"),
    "number": lambda ftype, v: ftype in _TEXTISH and v in ("", "integer", "number"),
    "bool": lambda ftype, v: ftype in ("yesno", "truefalse") or (ftype in _TEXTISH and v == ""),
    "text": lambda ftype, v: ftype in _TEXTISH and v == "",
}


def sources_for(mode: str) -> dict[str, Source]:
    return {s.name: s for s in SOURCES[mode]}


def format_value(value, kind: str, validation: str) -> str:
    """The cell REDCap expects for `value` in a field with `validation` ('' for none)."""
    if value is None:
        return ""
    if kind == "datetime":
        if validation == "date_ymd":
            return value.strftime("%Y-%m-%d")
        if validation == "datetime_ymd":
            return value.strftime("%Y-%m-%d %H:%M")
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if kind == "date":
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if kind in ("int", "number"):
        number = Decimal(value)
        if validation == "integer" or kind == "int":
            return str(number.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        text = format(number.normalize(), "f")
        return text
    if kind == "bool":
        return "1" if value else "0"
    return str(value)


def check_field_map(
    *,
    mode: str,
    instrument: str,
    event: str,
    field_map: dict[str, str],
    metadata: list[dict],
    instruments: list[dict],
    repeating: list[dict],
    events: list[str] | None,
) -> tuple[list[str], dict[str, str]]:
    """Problems of the configuration against REDCap's own description of the project (empty: fine),
    and {field: validation} of the mapped fields."""
    problems: list[str] = []
    forms = {row["instrument_name"] for row in instruments}
    if instrument not in forms:
        problems.append(f"The project has no instrument “{instrument}” (it has: {', '.join(sorted(forms))}).")
    if event:
        if events is None:
            problems.append(f"The project is not longitudinal: leave the event empty (not “{event}”).")
        elif event not in events:
            problems.append(f"The project has no event “{event}” (it has: {', '.join(events)}).")
    elif events:
        problems.append(f"The project is longitudinal: name the event (one of: {', '.join(events)}).")
    repeating_here = {
        row["form_name"] for row in repeating if not event or row.get("event_name", "") in ("", event)
    }
    if instrument in forms and instrument not in repeating_here:
        problems.append(
            f"“{instrument}” is not a repeating instrument{f' in the event {event}' if event else ''}: "
            "make it repeating in REDCap (Project Setup → Repeating instruments) or choose another."
        )
    if not field_map:
        problems.append("Map at least one value to a REDCap field.")
    by_name = {row["field_name"]: row for row in metadata}
    record_field = metadata[0]["field_name"] if metadata else ""
    sources = sources_for(mode)
    types: dict[str, str] = {}
    seen: dict[str, str] = {}
    for source_name, field_name in sorted(field_map.items()):
        source = sources.get(source_name)
        if source is None:
            problems.append(f"“{source_name}” is not something the portal can send in this mode.")
            continue
        if field_name in seen:
            problems.append(
                f"The field “{field_name}” is mapped twice ({seen[field_name]} and {source_name})."
            )
            continue
        seen[field_name] = source_name
        row = by_name.get(field_name)
        if row is None:
            problems.append(f"The project has no field “{field_name}” (mapped from {source_name}).")
            continue
        if field_name == record_field:
            problems.append(
                f"“{field_name}” is the record id field: the portal fills it with the participant's record."
            )
            continue
        if row["form_name"] != instrument:
            problems.append(
                f"The field “{field_name}” is on the instrument “{row['form_name']}”, not on “{instrument}”."
            )
            continue
        validation = row.get("text_validation_type_or_show_slider_number", "") or ""
        if not _ACCEPTS[source.kind](row["field_type"], validation):
            problems.append(
                f"The field “{field_name}” ({row['field_type']}{', ' + validation if validation else ''}) "
                f"cannot hold {source.label.lower()}."
            )
            continue
        types[field_name] = validation
    return problems, types
