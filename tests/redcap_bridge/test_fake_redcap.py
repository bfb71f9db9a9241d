"""The fake REDCap enforces REDCap's rules over HTTP (what the push tests rely on), with REDCap's words."""

from __future__ import annotations

import json

import pytest
import requests

from redcap_bridge.sandbox import FakeRedcap


def call(fake, token, **params):
    response = requests.post(fake.api_url, data={"token": token, "format": "json", **params}, timeout=10)
    return response.status_code, response.json()


def records(fake, token, rows, **params):
    return call(fake, token, content="record", data=json.dumps(rows), **params)


@pytest.fixture
def project(fake_redcap):
    return fake_redcap.state.add_project()


def test_an_unknown_token_gets_403_and_redcaps_json_error(fake_redcap, project):
    status, body = call(fake_redcap, "F" * 32, content="metadata")
    assert (status, body) == (403, {"error": "You do not have permissions to use the API"})


def test_an_import_is_counted_by_record_and_exported_back(fake_redcap, project):
    rows = [
        {
            "record_id": "A",
            "redcap_repeat_instrument": "home_bp",
            "redcap_repeat_instance": 1,
            "bp_sys": "120",
        },
        {
            "record_id": "A",
            "redcap_repeat_instrument": "home_bp",
            "redcap_repeat_instance": 2,
            "bp_sys": "121",
        },
        {"record_id": "B", "enrol_site": "north"},
    ]
    assert records(fake_redcap, project.token, rows, overwriteBehavior="normal") == (200, {"count": 2})
    status, exported = call(fake_redcap, project.token, content="record")
    assert status == 200
    assert [
        (r["record_id"], r["redcap_repeat_instance"], r["bp_sys"], r["enrol_site"]) for r in exported
    ] == [
        ("A", 1, "120", ""),
        ("A", 2, "121", ""),
        ("B", "", "", "north"),
    ]


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        (
            [{"record_id": "A", "nope": "1", "zzz": "2"}],
            "The following fields were not found in the project as real data fields: nope, zzz",
        ),
        ([{"enrol_site": "x"}], "The record ID field (record_id) is missing or blank in one or more rows"),
        (
            [{"record_id": "A", "redcap_repeat_instrument": "enrollment", "redcap_repeat_instance": 1}],
            'The instrument "enrollment" in redcap_repeat_instrument is not a repeating instrument',
        ),
        (
            [{"record_id": "A", "redcap_repeat_instrument": "home_bp", "redcap_repeat_instance": 40000}],
            'The value "40000" of redcap_repeat_instance for record "A" is not a valid instance number',
        ),
        (
            [
                {
                    "record_id": "A",
                    "redcap_repeat_instrument": "home_bp",
                    "redcap_repeat_instance": 1,
                    "wk_n": "1",
                }
            ],
            'The field "wk_n" is not on the repeating instrument "home_bp"',
        ),
        (
            [{"record_id": "A", "bp_sys": "120"}],
            'The field "bp_sys" is on the repeating instrument "home_bp"',
        ),
        (
            [
                {
                    "record_id": "A",
                    "redcap_repeat_instrument": "home_bp",
                    "redcap_repeat_instance": 1,
                    "bp_sys": "high",
                }
            ],
            '"A","bp_sys","high","The value you provided could not be validated',
        ),
    ],
)
def test_a_bad_import_is_refused_whole_with_redcaps_words(fake_redcap, project, rows, error):
    good = {"record_id": "OK", "enrol_site": "north"}
    status, body = records(fake_redcap, project.token, [good, *rows])
    assert status == 400
    assert body["error"].startswith(error)
    assert project.data == {}  # all or nothing: the good row was not kept either


def test_normal_overwrite_keeps_values_a_blank_would_erase(fake_redcap, project):
    row = {"record_id": "A", "redcap_repeat_instrument": "home_bp", "redcap_repeat_instance": 1}
    records(fake_redcap, project.token, [{**row, "bp_sys": "120", "bp_dia": "80"}])
    records(fake_redcap, project.token, [{**row, "bp_sys": "", "bp_dia": "81"}], overwriteBehavior="normal")
    assert project.data[("A", "", "home_bp", 1)] == {"bp_sys": "120", "bp_dia": "81"}
    records(fake_redcap, project.token, [{**row, "bp_sys": ""}], overwriteBehavior="overwrite")
    assert project.data[("A", "", "home_bp", 1)] == {"bp_sys": "", "bp_dia": "81"}


def test_a_longitudinal_project_requires_a_valid_event():
    state = FakeRedcap()
    project = state.add_project(events=["baseline_arm_1"])
    with pytest.raises(Exception, match="redcap_event_name are invalid: visit_9"):
        state.handle(
            {"token": [project.token], "content": ["record"], "format": ["json"],
             "data": [json.dumps([{"record_id": "A", "redcap_event_name": "visit_9"}])]}
        )  # fmt: skip
