"""getmeas groups → readings: exact values, only real BP groups, idempotent upsert (real data too)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from measurements.models import BloodPressureReading
from measurements.readings.parse import measure_value, parse_group, parse_groups
from measurements.readings.upsert import readings_upsert_api
from tests.factories import ParticipantFactory
from tests.fixtures.shared_data import SHARED_FIXTURES


def bp_group(grpid=1, sys=(14300, -2), dia=(9100, -2), pulse=(7200, -2), **extra):
    measures = [
        {"value": dia[0], "type": 9, "unit": dia[1], "algo": 0, "fm": 3},
        {"value": sys[0], "type": 10, "unit": sys[1], "algo": 0, "fm": 3},
    ]
    if pulse:
        measures.append({"value": pulse[0], "type": 11, "unit": pulse[1], "algo": 0, "fm": 3})
    group = {
        "grpid": grpid,
        "attrib": 0,
        "date": 1700000000,
        "created": 1700000100,
        "modified": 1700000100,
        "category": 1,
        "deviceid": "a" * 40,
        "hash_deviceid": "a" * 40,
        "modelid": 45,
        "model": "BPM Connect",
        "comment": None,
        "measures": measures,
    }
    group.update(extra)
    return group


def test_value_times_ten_to_the_unit_exactly():
    assert measure_value(14300, -2) == Decimal("143")
    assert measure_value(143, 0) == Decimal("143")
    assert measure_value(1432, -1) == Decimal("143.2")
    with pytest.raises(ValueError):  # noqa: PT011
        measure_value(True, 0)
    with pytest.raises(ValueError):  # noqa: PT011
        measure_value(10**30, 0)


def test_group_without_both_pressures_is_not_a_reading():
    lone_pulse = bp_group()
    lone_pulse["measures"] = [m for m in lone_pulse["measures"] if m["type"] == 11]
    assert parse_group(lone_pulse) == (None, "not_blood_pressure")
    assert parse_group(bp_group(category=2)) == (None, "not_a_measure")
    assert parse_group({"grpid": "x"})[1] == "not_a_measure"
    assert parse_group(bp_group(date="soon")) == (None, "malformed")
    assert parse_group(bp_group(sys=("high", 0))) == (None, "malformed")
    assert parse_group(["not", "a", "dict"]) == (None, "malformed")


def test_flags_model_id_spellings_and_unknown_attrib():
    reading, _ = parse_group(bp_group(attrib=1, modelid=None, model_id=45))
    assert reading.ambiguous_user is True
    assert reading.device_model_id == 45
    manual, _ = parse_group(bp_group(attrib=2, deviceid=None, hash_deviceid=None, model=None))
    assert manual.manual_entry is True
    assert manual.device_id == ""
    odd, _ = parse_group(bp_group(attrib=10000))
    assert odd.attrib == 10000
    assert odd.ambiguous_user is False


@pytest.mark.django_db
def test_upsert_is_idempotent_and_updates_modified_groups_with_a_flag():
    participant = ParticipantFactory()
    groups = [bp_group(grpid=i, date=1700000000 + i * 3600) for i in range(1, 6)]
    first = readings_upsert_api(participant_id=participant.pk, readings=parse_groups(groups).readings)
    assert (first.inserted, first.updated, first.unchanged) == (5, 0, 0)
    again = readings_upsert_api(participant_id=participant.pk, readings=parse_groups(groups).readings)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)
    edited = copy.deepcopy(groups[2])
    edited["modified"] += 500
    edited["measures"][1]["value"] = 15100
    # The same group twice (repeated across pages): counted once, the newest version wins.
    result = readings_upsert_api(
        participant_id=participant.pk,
        readings=parse_groups([groups[2], edited, groups[2]]).readings,
    )
    assert (result.inserted, result.updated) == (0, 1)
    row = BloodPressureReading.objects.get(participant=participant, grpid=3)
    assert row.systolic == Decimal("151")
    assert row.edited_upstream is True
    assert BloodPressureReading.objects.filter(participant=participant).count() == 5
    assert BloodPressureReading.objects.filter(edited_upstream=True).count() == 1


@pytest.mark.django_db
def test_measures_deleted_upstream_flag_the_reading():
    participant = ParticipantFactory()
    readings_upsert_api(participant_id=participant.pk, readings=parse_groups([bp_group(grpid=9)]).readings)
    emptied = bp_group(grpid=9, modified=1700009999)
    emptied["measures"] = []
    parsed = parse_groups([emptied])
    result = readings_upsert_api(
        participant_id=participant.pk, readings=parsed.readings, non_bp_grpids=parsed.non_bp_grpids
    )
    assert result.deleted == 1
    row = BloodPressureReading.objects.get(grpid=9)
    assert row.deleted_upstream is True
    assert row.systolic == Decimal("143")


@pytest.mark.django_db
@pytest.mark.shared_fixture("measurement_list.json")
def test_real_groups_give_741_device_and_53_manual_readings_with_exact_values():
    groups = json.loads((SHARED_FIXTURES / "measurement_list.json").read_text())
    participant = ParticipantFactory()
    parsed = parse_groups(groups)
    result = readings_upsert_api(participant_id=participant.pk, readings=parsed.readings)
    assert result.inserted == 794
    stored = BloodPressureReading.objects.filter(participant=participant)
    assert stored.filter(manual_entry=False).count() == 741
    assert stored.filter(manual_entry=True).count() == 53
    assert stored.filter(ambiguous_user=True).count() == 1
    assert stored.filter(irregular_heartbeat__isnull=False).count() == 0
    by_grpid = {r.grpid: r for r in stored}
    for group in groups:
        types = {m["type"]: m for m in group["measures"]}
        if group["grpid"] not in by_grpid:
            assert not (9 in types and 10 in types)  # only non-BP groups were skipped
            continue
        row = by_grpid[group["grpid"]]
        for mtype, field in ((10, "systolic"), (9, "diastolic"), (11, "pulse")):
            m = types[mtype]
            assert getattr(row, field) == Decimal(m["value"]).scaleb(m["unit"])
    again = readings_upsert_api(participant_id=participant.pk, readings=parse_groups(groups).readings)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 794)
