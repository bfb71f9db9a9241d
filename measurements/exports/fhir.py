"""FHIR R4 Observations for one reading: the BP panel and, when measured, a heart-rate Observation.

Vital-signs profiles: BP panel LOINC 85354-9 with systolic 8480-6 and diastolic 8462-4 components in
mm[Hg] (UCUM); heart rate LOINC 8867-4 in /min. The subject is a pseudonymous logical reference;
the cuff and the Withings group id are identifiers. Irregular heartbeat appears only when known.
"""

from __future__ import annotations

from django.conf import settings

from .formatting import json_number
from .rows import Row

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
            "display": "Vital Signs",
        }
    ]
}


def _system(name: str) -> str:
    return f"{settings.PORTAL_BASE_URL}/fhir/{name}"


def _quantity(value, unit: str) -> dict:
    return {"value": json_number(value), "unit": unit, "system": UCUM, "code": unit}


def _component(code: str, display: str, value) -> dict:
    return {"code": {"coding": [{"system": LOINC, "code": code, "display": display}]}, "valueQuantity": value}


def observations(row: Row) -> list[dict]:
    (
        study,
        _site,
        code,
        _utc,
        local,
        sys,
        dia,
        pulse,
        irregular,
        source,
        model,
        grpid,
        attrib,
        flags,
        category,
        _w,
        _session,
        quality_flags,
        _guideline_category,
    ) = row.values
    subject = {
        "reference": f"Patient/{study}-{code}",
        "identifier": {"system": _system(f"sid/study/{study}/participant"), "value": code},
    }
    common: dict = {
        "status": "final",
        "category": [CATEGORY],
        "subject": subject,
        "effectiveDateTime": local,
    }
    meta: dict = {"source": f"{_system('source')}/{source}"}
    tags = [{"system": _system("CodeSystem/reading-flag"), "code": f} for f in (flags or "").split(";") if f]
    tags += [
        {"system": _system("CodeSystem/quality-flag"), "code": f}
        for f in (quality_flags or "").split(";")
        if f
    ]
    if attrib is not None:
        tags.append({"system": _system("CodeSystem/withings-attrib"), "code": str(attrib)})
    if tags:
        meta["tag"] = tags
    identifiers = []
    hashed = "-hash" if row.deidentified else ""  # keyed hashes, not the real ids (deidentify.py)
    if grpid is not None:
        identifiers.append({"system": _system(f"sid/withings-grpid{hashed}"), "value": str(grpid)})
    if row.device_id or model:
        device: dict = {}
        if row.device_id:
            device["identifier"] = {"system": _system(f"sid/withings-device{hashed}"), "value": row.device_id}
        if model:
            device["display"] = model
        common["device"] = device

    components = [
        _component("8480-6", "Systolic blood pressure", _quantity(sys, "mm[Hg]")),
        _component("8462-4", "Diastolic blood pressure", _quantity(dia, "mm[Hg]")),
    ]
    if irregular is not None:
        components.append(
            {
                "code": {
                    "coding": [{"system": _system("CodeSystem/reading"), "code": "irregular-heartbeat"}],
                    "text": "Irregular heartbeat detected",
                },
                "valueBoolean": irregular,
            }
        )
    bp = {
        "resourceType": "Observation",
        "id": f"bp-{row.resource_key or row.pk}",
        "meta": {**meta, "profile": ["http://hl7.org/fhir/StructureDefinition/bp"]},
        **({"identifier": identifiers} if identifiers else {}),
        **common,
        "code": {
            "coding": [
                {
                    "system": LOINC,
                    "code": "85354-9",
                    "display": "Blood pressure panel with all children optional",
                }
            ],
            "text": "Blood pressure",
        },
        **(
            {"interpretation": [{"text": f"ACC/AHA 2017: {category}"}, {"text": row.guideline_label}]}
            if category
            else {}
        ),
        "component": components,
    }
    result = [bp]
    if pulse is not None:
        result.append(
            {
                "resourceType": "Observation",
                "id": f"hr-{row.resource_key or row.pk}",
                "meta": {**meta, "profile": ["http://hl7.org/fhir/StructureDefinition/heartrate"]},
                **({"identifier": identifiers} if identifiers else {}),
                **common,
                "code": {
                    "coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}],
                    "text": "Heart rate",
                },
                "valueQuantity": _quantity(pulse, "/min"),
            }
        )
    return result
