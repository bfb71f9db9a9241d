"""The export columns, a contract other tools rely on (add columns, never rename or reorder them), and
their data dictionary, in one place.

One row per reading. Values are typed here (Decimal, bool, int, str, None = unknown); each writer
turns them into its own representation (see `formatting`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from measurements import quality
from measurements.classification import ACC_AHA_CATEGORIES, PROTOCOL_WINDOWS
from measurements.guidelines import PROFILES, all_codes

FLAG_NAMES = ("ambiguous_user", "manual_entry", "edited_upstream", "deleted_upstream", "local_time_ambiguous")
SOURCES = ("api", "csv", "manual")


@dataclass(frozen=True)
class Column:
    name: str
    meaning: str
    type: str
    unit: str = ""
    allowed_values: str = ""
    unknown: str = "empty cell (CSV/XLSX), null (JSON)"
    withings_source: str = ""
    fhir_element: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


NEVER_EMPTY = "never empty"
GUIDELINES_TEXT = " | ".join(f"{g.key} ({g.name} {g.version}): {g.summary()}" for g in PROFILES.values())
PORTAL = "portal (study records, not from Withings)"

COLUMNS: tuple[Column, ...] = (
    Column(
        "study",
        "Study slug",
        "text",
        unknown=NEVER_EMPTY,
        withings_source=PORTAL,
        fhir_element="Observation.subject.identifier.system",
    ),
    Column(
        "site",
        "Site code of the participant; empty when the participant has no site",
        "text",
        withings_source=PORTAL,
        fhir_element="(not exported)",
    ),
    Column(
        "participant",
        "Pseudonymous participant code (no names, e-mails or Withings ids are exported)",
        "text",
        unknown=NEVER_EMPTY,
        withings_source=PORTAL,
        fhir_element="Observation.subject (reference Patient/<study>-<code> and identifier)",
    ),
    Column(
        "measured_at",
        "When the reading was taken, UTC. XLSX has no time zones: there it is a date-time cell holding "
        "the UTC time (format yyyy-mm-dd hh:mm:ss)",
        "ISO 8601 date-time with Z; XLSX: date-time cell, UTC",
        unknown=NEVER_EMPTY,
        withings_source="getmeas measuregrps[].date (unix seconds); CSV export: Date (local wall-clock time) "
        "converted with the participant's time zone",
        fhir_element="Observation.effectiveDateTime (same instant)",
    ),
    Column(
        "measured_at_local",
        "When the reading was taken, in the participant's time zone. XLSX has no time zones: there it "
        "is a date-time cell holding the participant's wall-clock time, without the offset (the "
        "offset is measured_at_local minus measured_at)",
        "ISO 8601 date-time with UTC offset; XLSX: date-time cell, participant's wall-clock time",
        unknown=NEVER_EMPTY,
        withings_source="measured_at converted to the participant's IANA time zone",
        fhir_element="Observation.effectiveDateTime",
    ),
    Column(
        "systolic_mmhg",
        "Systolic blood pressure, exact as received (143, 143.5)",
        "decimal",
        unit="mmHg",
        unknown=NEVER_EMPTY,
        withings_source="meastype 10: value × 10^unit; CSV export: Systolic",
        fhir_element="component LOINC 8480-6 valueQuantity (mm[Hg])",
    ),
    Column(
        "diastolic_mmhg",
        "Diastolic blood pressure, exact as received",
        "decimal",
        unit="mmHg",
        unknown=NEVER_EMPTY,
        withings_source="meastype 9: value × 10^unit; CSV export: Diastolic",
        fhir_element="component LOINC 8462-4 valueQuantity (mm[Hg])",
    ),
    Column(
        "pulse_bpm",
        "Heart rate measured with the blood pressure",
        "decimal",
        unit="beats/min",
        withings_source="meastype 11 in the same group: value × 10^unit; CSV export: Heart rate",
        fhir_element="separate Observation LOINC 8867-4 valueQuantity (/min)",
    ),
    Column(
        "irregular_heartbeat",
        "Irregular heartbeat detected. BPM Connect does not expose its indicator (API nor CSV export), "
        "so it is unknown unless a source supplies it; never written as false when unknown",
        "boolean",
        allowed_values="true, false",
        withings_source="not provided by BPM Connect",
        fhir_element="component 'irregular-heartbeat' valueBoolean, only when known",
    ),
    Column(
        "source",
        "Where the reading came from: api (Withings API), csv (Withings 'Download my data' export), "
        "manual (entered by hand in Withings)",
        "text",
        allowed_values=", ".join(SOURCES),
        unknown=NEVER_EMPTY,
        withings_source="api: getmeas; csv: bp.csv of the export archive; manual: attrib 2/4 or no device",
        fhir_element="Observation.meta.source",
    ),
    Column(
        "device_model",
        "Cuff model; empty for manual entries and CSV imports",
        "text",
        withings_source="getmeas measuregrps[].model",
        fhir_element="Observation.device.display",
    ),
    Column(
        "withings_grpid",
        "Withings measure group id; empty for CSV imports",
        "integer",
        withings_source="getmeas measuregrps[].grpid",
        fhir_element="Observation.identifier (system .../withings-grpid)",
    ),
    Column(
        "attrib",
        "Withings attrib as received (0/8 this user's device, 1 ambiguous user, 2/4 manual, 5 auto; "
        "other values kept as received); empty for CSV imports",
        "integer",
        withings_source="getmeas measuregrps[].attrib",
        fhir_element="Observation.meta.tag",
    ),
    Column(
        "flags",
        "Quality flags, ';'-joined",
        "text",
        allowed_values=", ".join(FLAG_NAMES),
        unknown="empty cell / null: no flag",
        withings_source="ambiguous_user: attrib 1; manual_entry: attrib 2/4 or no device; edited_upstream/"
        "deleted_upstream: group re-sent with a newer modified; local_time_ambiguous: CSV Date fell in a "
        "DST gap or repeat",
        fhir_element="Observation.meta.tag",
    ),
    Column(
        "acc_aha_category",
        "2017 ACC/AHA category of this reading: normal <120 and <80; elevated 120–129 and <80; stage_1 "
        "130–139 or 80–89; stage_2 ≥140 or ≥90; crisis >180 and/or >120. Empty for an implausible "
        "reading (see quality_flags)",
        "text",
        allowed_values=", ".join(ACC_AHA_CATEGORIES),
        unknown="empty cell / null: implausible reading, not classified",
        withings_source="computed by the portal",
        fhir_element="Observation.interpretation (text)",
    ),
    Column(
        "protocol_window",
        "Measuring window from the participant-local hour: morning 04:00–11:59, evening 17:00–23:59",
        "text",
        allowed_values=", ".join(PROTOCOL_WINDOWS),
        unknown=NEVER_EMPTY,
        withings_source="computed by the portal",
        fhir_element="(not exported)",
    ),
    Column(
        "session_id",
        "Measurement session of this reading: the participant's readings less than the session gap "
        "apart (10 minutes unless configured otherwise; see the manifest's sessions.gap_minutes), each "
        "measured within the gap of the one before, e.g. a triple-mode burst or protocol duplicates. "
        "The id is the participant code and the session's first instant in UTC "
        "(<participant>-YYYYMMDDTHHMMSSZ). Sessions are formed from the readings in this file (a date "
        "filter can cut one). The sessions file lists each session's mean and reading count",
        "text",
        unknown="empty cell / null: the reading takes no part in sessions (deleted in Withings, or maybe "
        "another person)",
        withings_source="computed by the portal from measured_at",
        fhir_element="(not exported per reading; see the sessions file)",
    ),
    Column(
        "quality_flags",
        "Plausibility rules this reading breaks, ';'-joined; empty when plausible. An implausible "
        "reading is kept and exported but left out of averages, categories and alerts. Rules (HCSRN; "
        "NHS CVDPREVENT's lower bounds are the same): systolic_above_300, systolic_below_50, "
        "diastolic_above_160, diastolic_below_20, systolic_not_above_diastolic (systolic ≤ diastolic), "
        "pulse_pressure_below_20, pulse_pressure_above_100 (systolic − diastolic), pulse_out_of_range "
        "(pulse outside the portal's plausible range, 30–220 /min unless configured otherwise; see the "
        "manifest's plausible_pulse_range)",
        "text",
        allowed_values=", ".join(quality.CODES),
        unknown="empty cell / null: plausible",
        withings_source="computed by the portal from the values",
        fhir_element="Observation.meta.tag (system .../quality-flag), status entered-in-error not used",
    ),
    Column(
        "guideline_category",
        "Category of this reading under the study's blood-pressure guideline profile, named with its "
        "version in the manifest (guideline) with every category's thresholds. Profiles: " + GUIDELINES_TEXT,
        "text",
        allowed_values=", ".join(all_codes()),
        unknown="empty cell / null: implausible reading, not classified",
        withings_source="computed by the portal",
        fhir_element="Observation.interpretation (text: guideline, version and category label)",
    ),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
CONTRACT_COLUMNS = COLUMN_NAMES[:14]

DICTIONARY_FIELDS = (
    "name",
    "meaning",
    "unit",
    "type",
    "allowed_values",
    "unknown",
    "withings_source",
    "fhir_element",
)
