"""Average home blood pressure per participant and protocol period, for the export package.

The same figure as the participant page's "Protocol average (home)" (`selectors.protocol_average`):
the daily rollup's averaged readings summed over the participant's days — readings of the protocol
period in its windows (any time for "N per day" protocols), day 1 left out when the protocol says so
(ESH: 7 days, day 1 discarded), plausible ones only — valid from `min_valid_readings` (12) on. One
aggregate query for the whole study, the periods computed in memory.

Written as `home_bp_averages.csv` in every package, and in a FHIR package also as
`average_home_bp.ndjson`: one HL7 CardX "Average Self-Measured Blood Pressure" Observation (profile
average-smbp, LOINC 96607-7 with mean systolic 96608-5 and mean diastolic 96609-3, the number of
readings averaged in the NumberOfMeasurements extension) per participant with a valid average.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

from django.conf import settings
from django.db.models import QuerySet, Sum

from cohorts.models import Participant, Study
from measurements.guidelines import Guideline
from measurements.models import DailyAdherence, StudyProtocol
from measurements.monitoring.protocol import participant_period
from measurements.sessions import mean

from .columns import NEVER_EMPTY, Column
from .formatting import csv_cell, json_number

CSV_NAME = "home_bp_averages.csv"
FHIR_NAME = "average_home_bp.ndjson"
CARDX = "http://hl7.org/fhir/uv/cardx-htn-mng/StructureDefinition"
_PORTAL = "computed by the portal from the daily rollup"
COLUMNS: tuple[Column, ...] = (
    Column("study", "Study slug", "text", unknown=NEVER_EMPTY, withings_source=_PORTAL, fhir_element="-"),
    Column(
        "participant", "Pseudonymous participant code", "text", unknown=NEVER_EMPTY,
        withings_source=_PORTAL, fhir_element="Observation.subject",
    ),
    Column(
        "period_start", "First day of the participant's protocol period (participant-local)",
        "ISO 8601 date", unknown="empty: no period (not enrolled yet)", withings_source=_PORTAL,
        fhir_element="Observation.effectivePeriod.start",
    ),
    Column(
        "period_end", "Last day of the protocol period (participant-local)", "ISO 8601 date",
        unknown="empty: open-ended", withings_source=_PORTAL, fhir_element="Observation.effectivePeriod.end",
    ),
    Column(
        "reading_count", "Readings averaged: plausible, in the period and windows, day 1 left out when "
        "the protocol discards it", "integer", unknown=NEVER_EMPTY, withings_source=_PORTAL,
        fhir_element="extension NumberOfMeasurements",
    ),
    Column(
        "systolic_mean_mmhg", "Mean systolic of those readings, to 0.1 (half up)", "decimal", unit="mmHg",
        unknown="empty: no reading averaged", withings_source=_PORTAL, fhir_element="component LOINC 96608-5",
    ),
    Column(
        "diastolic_mean_mmhg", "Mean diastolic of those readings, to 0.1 (half up)", "decimal",
        unit="mmHg", unknown="empty: no reading averaged", withings_source=_PORTAL,
        fhir_element="component LOINC 96609-3",
    ),
    Column(
        "valid", "Enough readings for a valid average (the protocol's minimum, 12 by default)",
        "boolean", allowed_values="true, false", unknown=NEVER_EMPTY, withings_source=_PORTAL,
        fhir_element="-",
    ),
    Column(
        "above_home_threshold", "Valid average at or above the study guideline's home threshold "
        "(manifest: guideline.home_threshold_mmhg)", "boolean", allowed_values="true, false",
        unknown="empty: not valid", withings_source=_PORTAL, fhir_element="Observation.interpretation",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class HomeAverage:
    study: str
    participant: str
    period_start: dt.date | None
    period_end: dt.date | None
    readings: int
    systolic: Decimal | None
    diastolic: Decimal | None
    valid: bool
    above: bool | None


def home_averages(
    *, study: Study, protocol: StudyProtocol, profile: Guideline, participants: QuerySet[Participant]
) -> Iterator[HomeAverage]:
    sums = {
        row["participant_id"]: row
        for row in DailyAdherence.objects.filter(participant__in=participants)
        .order_by()
        .values("participant_id")
        .annotate(n=Sum("avg_count"), sys=Sum("systolic_sum"), dia=Sum("diastolic_sum"))
    }
    for participant in participants.order_by("code", "pk"):
        row = sums.get(participant.pk) or {"n": 0, "sys": 0, "dia": 0}
        count = row["n"] or 0
        systolic, diastolic = mean(row["sys"] or 0, count), mean(row["dia"] or 0, count)
        valid = count >= protocol.min_valid_readings and count > 0
        above = profile.above_home(systolic, diastolic) if valid else None
        period = participant_period(participant, protocol, study)
        yield HomeAverage(
            study.slug, participant.code, period.start, period.end, count, systolic, diastolic, valid, above
        )


def write_csv(averages: Iterator[HomeAverage], out: BinaryIO) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([c.name for c in COLUMNS])
    count = 0
    for a in averages:
        values = (a.study, a.participant, a.period_start, a.period_end, a.readings, a.systolic, a.diastolic,
                  a.valid, a.above)  # fmt: skip
        writer.writerow([csv_cell(v) for v in values])
        count += 1
    text.flush()
    text.detach()
    return count


def _system(name: str) -> str:
    return f"{settings.PORTAL_BASE_URL}/fhir/{name}"


def _mean_component(code: str, display: str, value: Decimal) -> dict:
    return {
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "valueQuantity": {
            "value": json_number(value),
            "unit": "mm[Hg]",
            "system": "http://unitsofmeasure.org",
            "code": "mm[Hg]",
        },
    }


def observation(a: HomeAverage, profile: Guideline) -> dict:
    """The CardX Average SMBP Observation of a valid average."""
    effective: dict = {}
    if a.period_start is not None:
        effective["start"] = a.period_start.isoformat()
    if a.period_end is not None:
        effective["end"] = a.period_end.isoformat()
    resource: dict = {
        "resourceType": "Observation",
        "id": f"avg-{a.study}-{a.participant}",
        "meta": {"profile": [f"{CARDX}/average-smbp"]},
        "extension": [{"url": f"{CARDX}/NumberOfMeasurementsExt", "valueInteger": a.readings}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "96607-7",
                    "display": "Blood pressure panel mean systolic and mean diastolic",
                }
            ],
            "text": "Average home blood pressure",
        },
        "subject": {
            "reference": f"Patient/{a.study}-{a.participant}",
            "identifier": {"system": _system(f"sid/study/{a.study}/participant"), "value": a.participant},
        },
        "component": [
            _mean_component("96608-5", "Systolic blood pressure mean", a.systolic or Decimal(0)),
            _mean_component("96609-3", "Diastolic blood pressure mean", a.diastolic or Decimal(0)),
        ],
        "interpretation": [
            {
                "text": f"{profile.name} {profile.version} home threshold "
                f"{profile.home_systolic}/{profile.home_diastolic}: {'at or above' if a.above else 'below'}"
            }
        ],
    }
    if effective:
        resource["effectivePeriod"] = effective
    return resource


def write_fhir(averages: Iterator[HomeAverage], profile: Guideline, out: BinaryIO) -> int:
    count = 0
    for a in averages:
        if not a.valid:
            continue
        line = json.dumps(observation(a, profile), ensure_ascii=False, separators=(",", ":")) + "\n"
        out.write(line.encode())
        count += 1
    return count
