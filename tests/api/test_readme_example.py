"""The README's Python example, run as written against a live server (only the address and token swapped)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api.conftest import make_token

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.django_db(transaction=True)
def test_python_example_pulls_every_reading(world, live_server, monkeypatch, settings):
    settings.API_PAGE_SIZE = 2  # several pages
    section = README.read_text().split("## API for analysts", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace("https://portal.example.org", live_server.url).replace(
        "/studies/demo/", "/studies/alpha/"
    )
    monkeypatch.setenv("PORTAL_TOKEN", make_token(world.full))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    # since=2025-01-01: every one of alpha's 7 readings (4 of A-1, 3 of A-2).
    assert len(namespace["rows"]) == 7
    assert {r["participant"] for r in namespace["rows"]} == {"A-1", "A-2"}
