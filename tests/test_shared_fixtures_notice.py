"""Tests that need ../shared/fixtures say so when it is absent: skipped with the file as the reason and
listed at the end of the run (tests/fixtures/shared_data.py), never passing silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.shared_data import SHARED_FIXTURES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def isolated(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini(
        "[pytest]\nmarkers =\n    shared_fixture(*files): reads ../shared/fixtures/withings/<file>\n"
    )
    return pytester


def run(pytester):
    return pytester.runpytest_subprocess(
        "-p", "tests.fixtures.shared_data", "-p", "no:django", "-p", "no:cacheprovider"
    )


def test_a_test_whose_shared_fixture_is_absent_is_skipped_and_listed_at_the_end(isolated):
    isolated.makepyfile(
        test_reads="""
        import pytest

        @pytest.mark.shared_fixture("no-such-recording.json")
        def test_needs_a_recording():
            raise AssertionError("must not run")

        def test_plain():
            pass
        """
    )
    result = run(isolated)

    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*shared fixtures absent*",
            f"1 test(s) need the recorded Withings data in {SHARED_FIXTURES} and were NOT run:",
            "  test_reads.py::test_needs_a_recording",
        ]
    )


def test_no_notice_when_every_shared_fixture_is_present(isolated):
    present = next(SHARED_FIXTURES.glob("*"), None)
    if present is None:
        pytest.skip(f"{SHARED_FIXTURES} is absent here (the other test covers that case)")
    isolated.makepyfile(
        test_reads=f"""
        import pytest

        @pytest.mark.shared_fixture({present.name!r})
        def test_needs_a_recording():
            pass
        """
    )
    result = run(isolated)

    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*shared fixtures absent*")
