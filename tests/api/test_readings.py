"""Readings page by page: every reading exactly once, CSV or JSON, filters, cursors, de-identified rights."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse

from cohorts.models import AuditEvent, Role
from measurements.exports.columns import COLUMN_NAMES
from measurements.exports.deidentify import Deidentifier
from measurements.models import BloodPressureReading
from tests.factories import MembershipFactory, ReadingFactory

pytestmark = pytest.mark.django_db
URL = reverse("api:readings", args=["alpha"])


def walk(api, params: dict) -> tuple[list[dict], int]:
    """Follow `next` to the end; returns every row and the number of pages."""
    rows, pages = [], 0
    response = api.get(URL, params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        rows += body["results"]
        pages += 1
        if body["next"] is None:
            assert "Link" not in response
            return rows, pages
        assert response["Link"] == f'<{body["next"]}>; rel="next"'
        response = api.get(body["next"].replace("http://testserver", ""))


def test_pages_walk_every_reading_exactly_once_in_time_order(world, as_user):
    rows, pages = walk(as_user(world.full), {"limit": 2})
    # Alpha has 4 + 3 = 7 readings (bravo's 2 never appear): pages of 2, 2, 2 and 1.
    assert len(rows) == 7
    assert pages == 4
    expected = list(
        BloodPressureReading.objects.filter(participant__study=world.study)
        .order_by("measured_at", "pk")
        .values_list("participant__code", "grpid")
    )
    assert [(r["participant"], r["withings_grpid"]) for r in rows] == expected
    assert len({r["withings_grpid"] for r in rows}) == 7
    # The two readings at 11:00 UTC (A-1 +5 h and A-2 +5 h) are both there, tie broken by id.
    assert [r["measured_at"] for r in rows].count("2025-04-01T11:00:00Z") == 2
    assert list(rows[0]) == list(COLUMN_NAMES)
    calls = AuditEvent.objects.filter(action="api.call", study=world.study).order_by("pk")
    assert [e.detail["rows"] for e in calls] == [2, 2, 2, 1]


def test_readings_arriving_while_paging_do_not_repeat_or_shift_pages(world, as_user):
    api = as_user(world.full)
    first = api.get(URL, {"limit": 3}).json()
    participant = BloodPressureReading.objects.filter(participant__code="A-1").first().participant
    ReadingFactory(participant=participant, measured_at=dt.datetime(2025, 3, 1, tzinfo=dt.UTC))  # before
    ReadingFactory(participant=participant, measured_at=dt.datetime(2025, 5, 1, tzinfo=dt.UTC))  # after
    rest, _ = walk_from(api, first["next"])
    seen = [r["withings_grpid"] for r in first["results"] + rest]
    assert len(seen) == len(set(seen)) == 8  # 7 + the later one; the earlier one was before the cursor


def walk_from(api, url):
    rows, pages = [], 0
    while url:
        body = api.get(url.replace("http://testserver", "")).json()
        rows += body["results"]
        pages += 1
        url = body["next"]
    return rows, pages


def test_csv_by_format_or_accept_header(world, as_user):
    api = as_user(world.full)
    for response in (
        api.get(URL, {"format": "csv", "limit": 5}),
        api.get(URL, {"limit": 5}, HTTP_ACCEPT="text/csv"),
    ):
        assert response["Content-Type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(response.content.decode())))
        assert table[0] == list(COLUMN_NAMES)
        assert len(table) == 6
        assert 'rel="next"' in response["Link"]


def test_site_and_date_filters(world, as_user):
    api = as_user(world.full)
    north, _ = walk(api, {"site": "north"})
    assert {r["participant"] for r in north} == {"A-1"}
    assert len(north) == 4
    # 2025-04-01 UTC holds 06, 11, 16, 21 (A-1) and 11, 13 (A-2); A-2's +30 h is on 04-02.
    day, _ = walk(api, {"since": "2025-04-01", "until": "2025-04-01"})
    assert len(day) == 6
    window, _ = walk(api, {"since": "2025-04-01T11:00:00Z", "until": "2025-04-01T16:00:00+00:00"})
    assert len(window) == 3  # 11:00 twice and 13:00; 16:00 is the exclusive end
    assert api.get(URL, {"site": "east"}).status_code == 400
    assert api.get(URL, {"since": "2025-04-01T11:00:00"}).status_code == 400  # no offset
    assert api.get(URL, {"limit": "0"}).status_code == 400


def test_site_restricted_manager_sees_their_site_only(world, as_user):
    site_manager = MembershipFactory(
        study=world.study, role=Role.DATA_MANAGER, site=world.study.sites.get(code="south")
    ).user
    rows, _ = walk(as_user(site_manager), {})
    assert {r["participant"] for r in rows} == {"A-2"}
    assert len(rows) == 3


def test_bad_or_foreign_cursor_is_400(world, as_user):
    api = as_user(world.full)
    assert api.get(URL, {"cursor": "garbage"}).status_code == 400
    nxt = api.get(URL, {"limit": 2}).json()["next"]
    cursor = nxt.split("cursor=")[1]
    assert api.get(URL, {"limit": 2, "site": "north", "cursor": cursor}).status_code == 400


def real_instants() -> set[str]:
    return {
        m.strftime("%Y-%m-%dT%H:%M:%SZ")
        for m in BloodPressureReading.objects.values_list("measured_at", flat=True)
    }


@pytest.mark.parametrize("who", ["limited_role", "limited_token", "asked"])
def test_deidentified_callers_get_deidentified_data(world, as_user, who):
    if who == "limited_role":
        api, params = as_user(world.limited), {}
    elif who == "limited_token":
        api, params = as_user(world.full, deidentified_only=True), {}
    else:
        api, params = as_user(world.full), {"deidentified": "true"}
    rows, _ = walk(api, {**params, "limit": 3})
    assert len(rows) == 7
    assert not real_instants() & {r["measured_at"] for r in rows}
    real_grpids = set(BloodPressureReading.objects.values_list("grpid", flat=True))
    assert not real_grpids & {r["withings_grpid"] for r in rows}
    assert {r["device_model"] for r in rows} == {None}
    key = Deidentifier.for_study(world.study)
    for r in rows:  # the same offset as in the study's de-identified exports
        real = BloodPressureReading.objects.get(
            grpid=next(g for g in real_grpids if key.hash_id("grpid", g) == r["withings_grpid"])
        )
        shifted = dt.datetime.fromisoformat(r["measured_at"].replace("Z", "+00:00"))
        assert shifted - real.measured_at == dt.timedelta(days=key.offset_days(r["participant"]))
    response = api.get(URL, params)
    assert response["X-Deidentified"] == "true"
    # Date filters would tell real dates: refused, nothing returned.
    refused = api.get(URL, {**params, "since": "2025-04-01"})
    assert refused.status_code == 400
    assert "results" not in refused.json()


def test_full_rights_get_real_data(world, as_user):
    rows, _ = walk(as_user(world.full), {})
    assert {r["measured_at"] for r in rows} == real_instants() - {
        m.strftime("%Y-%m-%dT%H:%M:%SZ")
        for m in BloodPressureReading.objects.filter(participant__study=world.other).values_list(
            "measured_at", flat=True
        )
    }
