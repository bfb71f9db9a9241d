"""A malformed date on a command line is a usage error naming the value; nothing is written."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("export_study", ["demo", "--format", "csv", "--output", "{out}", "--since", "2026-13-01"]),
        ("redcap_push", ["demo", "--since", "2026-13-01"]),
    ],
)
def test_a_bad_date_is_refused_with_its_value(command, args, tmp_path):
    out = tmp_path / "package.zip"
    with pytest.raises(CommandError, match=r"'2026-13-01' is not a date \(YYYY-MM-DD\)"):
        call_command(command, *[a.format(out=out) for a in args])
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
