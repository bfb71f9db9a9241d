"""Fuzzing the getmeas path: arbitrary JSON-ish envelopes through `read_page` (only
WithingsTransientError may escape), `parse_groups` (never raises, accounts for every group exactly
once) and the sync's page storing (an invalid group writes nothing; a valid one is stored once,
however often the page is replayed)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from measurements.models import BloodPressureReading
from measurements.readings.parse import int_or_none, parse_groups
from tests.factories import WithingsConnectionFactory
from withings.errors import WithingsTransientError
from withings.getmeas import read_page
from withings.services.sync import SyncResult, _store_page

FAST = settings(max_examples=400, deadline=None, derandomize=True)
SLOW = settings(
    max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 10, 11, 9, 2**63, 32503680000, True, False]),
)
scalars = st.one_of(
    st.none(), st.booleans(), numbers, st.text(max_size=20), st.sampled_from(["12", "1e3", "Europe/Paris"])
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
measure = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.sampled_from([9, 10, 11, "10"]), json_like),
        "value": st.one_of(numbers, json_like),
        "unit": st.one_of(numbers, json_like),
    },
)
group = st.fixed_dictionaries(
    {},
    optional={
        "grpid": st.one_of(numbers, json_like),
        "category": st.one_of(st.sampled_from([1, 2, "1"]), json_like),
        "date": st.one_of(st.integers(min_value=-(10**12), max_value=10**12), json_like),
        "measures": st.one_of(st.lists(st.one_of(measure, json_like), max_size=4), json_like),
        "attrib": st.one_of(numbers, json_like), "deviceid": st.one_of(st.text(max_size=80), json_like),
        "model": json_like, "modelid": json_like, "created": json_like, "modified": json_like,
    },
)  # fmt: skip
envelope = st.one_of(
    json_like,
    st.fixed_dictionaries({}, optional={
        "measuregrps": st.one_of(st.lists(st.one_of(group, json_like), max_size=5), json_like),
        "more": json_like, "offset": json_like, "updatetime": json_like, "timezone": json_like,
    }),
)  # fmt: skip


@FAST
@given(body=envelope)
def test_read_page_raises_only_transient_errors_and_parse_never_raises(body):
    try:
        page = read_page(body)
    except WithingsTransientError:
        return
    assert isinstance(page.groups, list)
    assert page.offset is None or isinstance(page.offset, int)
    result = parse_groups(page.groups)
    for reading in result.readings:
        assert reading.systolic.is_finite()
        assert abs(reading.systolic) < 10000
        assert abs(reading.diastolic) < 10000
        assert reading.measured_at.tzinfo is not None


# Groups close to real ones (most parse), so the accounting below also sees readings, not only skips.
BP_PAIR = [{"type": 9, "value": 80, "unit": 0}, {"type": 10, "value": 12000, "unit": -2}]
plausible_group = st.fixed_dictionaries(
    {
        "grpid": st.integers(min_value=1, max_value=10**12),
        "category": st.sampled_from([1, 1, 2, "1"]),
        "date": st.integers(min_value=-5, max_value=33 * 10**9),
        "measures": st.lists(
            st.fixed_dictionaries({
                "type": st.sampled_from([9, 10, 11, 1, "10"]),
                "value": st.one_of(st.integers(-(10**6), 10**6), numbers),
                "unit": st.integers(-3, 3),
            }),
            max_size=4,
        ).map(lambda extra: [*BP_PAIR, *extra]),
        "attrib": st.integers(0, 17),
    },
)  # fmt: skip


@FAST
@given(groups=st.one_of(json_like, st.lists(st.one_of(group, plausible_group, json_like), max_size=6)))
def test_parse_groups_never_raises_and_accounts_for_every_group_once(groups):
    result = parse_groups(groups)
    if not isinstance(groups, list):
        assert (result.readings, result.skipped, result.non_bp_grpids) == ([], Counter(malformed=1), set())
        return
    assert sum(result.skipped.values()) + len(result.readings) == len(groups)
    assert set(result.skipped) <= {"malformed", "not_a_measure", "not_blood_pressure"}
    assert len(result.non_bp_grpids) <= result.skipped["not_blood_pressure"]
    # Each reading comes from its own group, in the page's order: a real measure carrying 9 and 10.
    sources = iter(groups)
    for reading in result.readings:
        source = next(
            g for g in sources if isinstance(g, dict) and int_or_none(g.get("grpid")) == reading.grpid
        )
        assert int_or_none(source.get("category")) == 1
        assert {int_or_none(m.get("type")) for m in source["measures"] if isinstance(m, dict)} >= {9, 10}


@pytest.mark.django_db
@SLOW
@given(body=st.fixed_dictionaries({"measuregrps": st.lists(st.one_of(group, json_like), max_size=5)}))
def test_storing_a_fuzzed_page_writes_only_valid_readings_once(body):
    connection = WithingsConnectionFactory()
    try:
        page = read_page(body)
    except WithingsTransientError:
        assert not BloodPressureReading.objects.filter(participant=connection.participant).exists()
        return
    expected = {r.grpid for r in parse_groups(page.groups).readings}
    for _replay in range(2):
        _store_page(connection, page, SyncResult(), not_before=None)
    stored = list(
        BloodPressureReading.objects.filter(participant=connection.participant).values_list(
            "grpid", flat=True
        )
    )
    assert sorted(stored) == sorted(expected)
