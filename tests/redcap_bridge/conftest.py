"""The fake REDCap over real HTTP (`fake_redcap`), and a study with a configured project."""

from __future__ import annotations

import pytest

from redcap_bridge.sandbox import start_fake_redcap


@pytest.fixture
def fake_redcap():
    running = start_fake_redcap()
    yield running
    running.stop()


READING_MAP = {
    "measured_at_local": "bp_datetime",
    "systolic": "bp_sys",
    "diastolic": "bp_dia",
    "pulse": "bp_pulse",
    "source": "bp_source",
    "irregular_heartbeat": "bp_irregular",
}
SUMMARY_MAP = {
    "period_start": "wk_start",
    "period_end": "wk_end",
    "readings_count": "wk_n",
    "days_with_readings": "wk_days",
    "mean_systolic": "wk_sys",
    "mean_diastolic": "wk_dia",
}


def configure(
    study, fake, *, mode="readings", instrument="home_bp", field_map=None, prefix="BP-", token=None
):
    """A checked and saved REDCap project for `study` against the fake (through the services)."""
    from redcap_bridge.models import RedcapProject
    from redcap_bridge.services import redcap_project_check, redcap_project_save

    remote = fake.state.add_project() if token is None else None
    token = token or remote.token
    field_map = field_map if field_map is not None else (READING_MAP if mode == "readings" else SUMMARY_MAP)
    check = redcap_project_check(
        api_url=fake.api_url, token=token, mode=mode, instrument=instrument, event="", field_map=field_map
    )
    assert check.problems == []
    project = RedcapProject(
        study=study, api_url=fake.api_url, token=token, record_prefix=prefix, mode=mode,
        instrument=instrument, field_map=field_map,
    )  # fmt: skip
    redcap_project_save(actor=None, project=project, check=check, changed=["api_url"], token_changed=True)
    return project, remote
