"""Small Celery helpers shared by the apps' tasks modules."""

from __future__ import annotations

from collections.abc import Iterable


def fan_out(task, ids: Iterable[int]) -> int:
    """Beat scanners: queue one task per id (each task takes an id and is idempotent)."""
    ids = list(ids)
    for item in ids:
        task.delay(item)
    return len(ids)
