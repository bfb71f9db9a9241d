"""The bulk page path (`readings.store`: COPY lines, one upsert statement, SQL rollup) against the
reference path (`parse_groups` + `readings_upsert_api` + the Python rollup): the same lines, the
same stored rows, rollups, alerts and counts — on odd and fuzzed groups, DST days and several zones,
replays, upstream edits that move a reading to another day, deletions and repeats within a page."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random

import pytest
from django.db import connection
from django.utils.timezone import now
from hypothesis import given, settings
from hypothesis import strategies as st

from measurements.models import Alert, BloodPressureReading, DailyAdherence
from measurements.readings.columns import STAGE, STAGE_COLUMNS
from measurements.readings.copy_lines import copy_row_of, decimal_text, parse_groups_copy
from measurements.readings.parse import parse_groups
from measurements.readings.store import _reference, readings_store_api_page
from tests.factories import ParticipantFactory, StudyFactory
from tests.security.test_fuzz_getmeas import group as fuzzed_group

RAW = STAGE_COLUMNS.index("raw")
NOT_BEFORE_EPOCH = 1711846800  # 2024-03-31 01:00 UTC, the night Paris moves to summer time


def _fields(line: str) -> list:
    """A COPY line's fields; the raw JSON parsed (jsonb keeps the last of repeated keys, as json)."""
    fields: list = line.rstrip("\n").split("\t")
    fields[RAW] = json.loads(fields[RAW].replace("\\\\", "\\"))
    return fields


def _same_parse(groups) -> None:
    fast, reference = parse_groups_copy(groups), parse_groups(groups)
    expected = [copy_row_of(r) for r in reference.readings]
    assert [(r.grpid, r.measured, r.recency) for r in fast.rows] == [
        (r.grpid, r.measured, r.recency) for r in expected
    ]
    assert [_fields(r.line) for r in fast.rows] == [_fields(r.line) for r in expected]
    assert fast.skipped == reference.skipped
    assert fast.non_bp_grpids == reference.non_bp_grpids


def plausible_group(draw_int, grpid: int, date: int) -> dict:
    """Withings-shaped groups with the variations real data has (docs/withings-api.md §2)."""
    measures = []
    for mtype in draw_int([[9, 10, 11], [9, 10], [10, 9, 11], [11], [9, 10, 10], [10, 11, 9, 1, 130]]):
        unit = draw_int([-2, -2, -2, 0, -1, -3, 1, -8, 4, 5, -9])
        value = draw_int([14300, 9100, 7200, 143, 91, 0, -5, 1, 99999, 10**12, 123456789])
        measures.append({"value": value, "type": mtype, "unit": unit, "algo": 0, "fm": 3})
    device = draw_int(["a" * 40, None, "", "b" * 70, "tab\there\\", 17, "nul\x00id"])
    return {
        "grpid": grpid,
        "attrib": draw_int([0, 0, 1, 2, 4, 5, 8, 17, 10000, None, True, "3"]),
        "date": date,
        "created": draw_int([date + 120, None, -5, "1700000000", 32503680000]),
        "modified": draw_int([date + 120, date + 500, None, 0, 1.5]),
        "category": draw_int([1, 1, 1, 2, "1", None]),
        "deviceid": device,
        "hash_deviceid": draw_int([device, None]),
        "modelid": draw_int([45, None, "45", False]),
        "model_id": draw_int([44, None]),
        "model": draw_int(["BPM Connect", None, 45, "x" * 80, "BPM\x00Connect"]),
        "measures": measures,
    }


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data())
def test_copy_lines_equal_the_reference_on_plausible_groups(data):
    def draw_int(options):
        return data.draw(st.sampled_from(options))

    groups = [plausible_group(draw_int, 1000 + i % 4, 1_700_000_000 + i * 3600) for i in range(6)]
    _same_parse(groups)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(groups=st.lists(fuzzed_group, max_size=6))
def test_copy_lines_equal_the_reference_on_fuzzed_groups(groups):
    _same_parse(groups)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(14300, -2, "143.00"), (143, 0, "143"), (5, -1, "0.5"), (-5, -3, "-0.005"), (0, -2, "0.00"),
     (143, 1, "1430"), (99999999, -4, "9999.9999"), (100000000, -4, None), (10000, 0, None),
     (-10000, 0, None)],
)  # fmt: skip
def test_decimal_text_is_exact(value, unit, text):
    assert decimal_text(value, unit) == text


# -- the stored result ----------------------------------------------------------------------------

pytestmark_db = pytest.mark.django_db
READING_FIELDS = [
    f.attname
    for f in BloodPressureReading._meta.concrete_fields
    if f.attname not in {"id", "participant_id", "ingested_at", "updated_at", "duplicate_of_id"}
]
ROLLUP_FIELDS = [
    f.attname
    for f in DailyAdherence._meta.concrete_fields
    if f.attname not in {"id", "participant_id", "study_id", "updated_at"}
]


def _state(participant) -> tuple:
    readings = sorted(
        BloodPressureReading.objects.filter(participant=participant).values_list(*READING_FIELDS),
        key=lambda row: row[READING_FIELDS.index("grpid")],
    )
    rollup = list(
        DailyAdherence.objects.filter(participant=participant).order_by("day").values_list(*ROLLUP_FIELDS)
    )
    alerts = list(
        Alert.objects.filter(participant=participant)
        .order_by("pk")
        .values_list("kind", "detail", "occurrences")
    )
    return readings, rollup, alerts


def _pages(zone_seed: str) -> list[list[dict]]:
    """Four pages: history around DST days, a replay, edits (one moved to another day, one deleted
    upstream, one repeated with two versions), and fresh readings including a crisis."""
    rng = random.Random(zone_seed)

    def draw(options):
        return rng.choice(options)

    dst_instants = [1711846800, 1711850400, 1710054000, 1712444400, 1730008800, 1730512800]  # 2024
    history = []
    for i in range(120):
        date = dst_instants[i % len(dst_instants)] + rng.randrange(-86400, 86400)
        group = plausible_group(draw, 5000 + i, date) if i % 3 == 0 else {
            "grpid": 5000 + i, "attrib": 0, "date": date, "created": date + 60, "modified": date + 60,
            "category": 1, "deviceid": "a" * 40, "hash_deviceid": "a" * 40, "modelid": 45,
            "model": "BPM Connect", "comment": None,
            "measures": [
                {"value": rng.randrange(60, 125) * 100, "type": 9, "unit": -2},
                {"value": rng.randrange(100, 190) * 100, "type": 10, "unit": -2},
                {"value": rng.randrange(50, 100) * 100, "type": 11, "unit": -2},
            ],
        }  # fmt: skip
        history.append(group)
    history[-1] = {**history[-2], "grpid": 4999, "date": NOT_BEFORE_EPOCH}  # on the back-fill's start
    plain = [g for g in history if g["modelid"] == 45 and g["attrib"] == 0 and g["category"] == 1][:6]
    moved = copy.deepcopy(plain[0])
    moved["date"] += 3 * 86400 + 7200
    moved["modified"] += 999
    emptied = copy.deepcopy(plain[1])
    emptied["measures"] = [{"value": 7000, "type": 11, "unit": -2}]
    emptied["modified"] += 999
    older, newer = copy.deepcopy(plain[2]), copy.deepcopy(plain[2])
    newer["modified"] += 5000
    newer["measures"][1]["value"] = 19900
    older["modified"] += 10
    tie_first, tie_last = copy.deepcopy(plain[4]), copy.deepcopy(plain[4])  # same `modified`: the later wins
    tie_first["modified"] = tie_last["modified"] = plain[4]["modified"] + 777
    tie_first["measures"][1]["value"], tie_last["measures"][1]["value"] = 11100, 11200
    edits = [moved, emptied, newer, older, plain[3], tie_first, tie_last]
    recent = int((now() - dt.timedelta(days=1)).timestamp())
    fresh = []
    # 190/90 (pulse pressure 100) is a plausible crisis; 195/90 would break the pulse-pressure rule.
    for i, (sys_, attrib) in enumerate([(15000, 0), (19000, 0), (21000, 1), (18200, 0)]):
        fresh.append({
            "grpid": 9000 + i, "attrib": attrib, "date": recent + i * 600, "created": recent + i * 600,
            "modified": recent + i * 600, "category": 1, "deviceid": "c" * 40, "modelid": 45,
            "measures": [{"value": 9000, "type": 9, "unit": -2}, {"value": sys_, "type": 10, "unit": -2}],
        })  # fmt: skip
    return [history, history, edits, fresh]


@pytestmark_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the bulk path is PostgreSQL's")
@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])
def test_bulk_page_path_stores_exactly_what_the_reference_stores(zone):
    study = StudyFactory(start_date=dt.date(2024, 3, 1))
    fast, reference = (ParticipantFactory(study=study, timezone=zone) for _ in range(2))
    not_before = dt.datetime.fromtimestamp(NOT_BEFORE_EPOCH, tz=dt.UTC)
    for index, groups in enumerate(_pages(zone)):
        kwargs = {"source_timezone": zone, "not_before": not_before if index == 0 else None}
        got = readings_store_api_page(participant_id=fast.pk, groups=groups, **kwargs)
        want = _reference(reference.pk, groups, kwargs["source_timezone"], kwargs["not_before"])
        assert got == want, index
        if index == 0:
            assert 0 < got.skipped["before_participation"] < 100
        with connection.cursor() as cursor:  # the stage is empty for the next page of this transaction
            cursor.execute(f"SELECT count(*) FROM {STAGE}")
            assert cursor.fetchone()[0] == 0
    assert _state(fast) == _state(reference)
    readings, rollup, alerts = _state(fast)
    assert len(readings) > 60
    assert len(rollup) > 5
    assert sum(1 for r in readings if r[READING_FIELDS.index("edited_upstream")]) == 4
    assert sum(1 for r in readings if r[READING_FIELDS.index("deleted_upstream")]) == 1
    assert [(kind, detail["count"]) for kind, detail, _ in alerts] == [("crisis", 2)]


@pytestmark_db
def test_a_replayed_page_changes_nothing():
    participant = ParticipantFactory(timezone="Europe/Paris")
    groups = _pages("replay")[0]
    first = readings_store_api_page(participant_id=participant.pk, groups=groups, source_timezone="UTC")
    before = _state(participant)
    again = readings_store_api_page(participant_id=participant.pk, groups=groups, source_timezone="UTC")
    assert first.upsert.inserted > 60
    assert (again.upsert.inserted, again.upsert.updated) == (0, 0)
    assert again.upsert.unchanged == first.upsert.inserted
    assert _state(participant) == before


@pytestmark_db
def test_a_nul_in_upstream_text_is_dropped_not_a_page_that_fails_for_ever():
    """PostgreSQL text cannot hold NUL: the page would raise on every retry of the sync."""
    participant = ParticipantFactory(timezone="Europe/Paris")
    group = {
        "grpid": 77, "attrib": 0, "date": 1_700_000_000, "created": 1_700_000_100, "category": 1,
        "deviceid": "cuff\x00id", "model": "BPM\x00 Connect", "modelid": 45,
        "measures": [{"value": 14300, "type": 10, "unit": -2}, {"value": 9100, "type": 9, "unit": -2}],
    }  # fmt: skip
    stored = readings_store_api_page(participant_id=participant.pk, groups=[group], source_timezone="UTC")
    assert stored.upsert.inserted == 1
    reading = BloodPressureReading.objects.get(participant=participant)
    assert (reading.device_id, reading.device_model) == ("cuffid", "BPM Connect")


def test_json_infinity_in_a_group_is_malformed_not_a_crash():
    groups = [{"grpid": float("inf"), "category": 1}, {"grpid": 1, "date": float("-inf"), "category": 1}]
    assert parse_groups(groups).skipped == {"malformed": 2}
    assert parse_groups_copy(groups).skipped == {"malformed": 2}
