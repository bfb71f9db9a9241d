"""The registry behind ``manage.py tick``: every time-driven rule of the portal, run as of an instant.

Apps register a job in their ``AppConfig.ready`` (messaging registers its reminder rules; alert
deadlines and nightly rollups can join later). ``tick_run`` calls each job with the same instant, so a
replay with ``--at`` sees one consistent moment. Every job must be idempotent for a given instant —
running the same instant twice does nothing new — because beat, a retry and an operator's manual run
may all overlap. core imports no app: jobs know their own models; this module only orders and calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TickRequest:
    at: dt.datetime
    study: str | None = None  # a study slug: only that study's rules
    dry_run: bool = False  # decide and report, write nothing


@dataclass(frozen=True)
class TickLine:
    """One line of a job's report: what it did (or would do) for one study."""

    job: str
    study: str
    what: str
    count: int
    samples: tuple[str, ...] = field(default=())


TickJob = Callable[[TickRequest], list[TickLine]]
_jobs: dict[str, TickJob] = {}


def tick_register(name: str, job: TickJob) -> None:
    """Add a job (the name is its key: registering again replaces it, so reloading is harmless)."""
    _jobs[name] = job


def tick_jobs() -> dict[str, TickJob]:
    return dict(_jobs)


def tick_run(request: TickRequest) -> list[TickLine]:
    """Run every registered job for the instant, in registration order."""
    if request.at.tzinfo is None:
        raise ValueError("tick needs an aware instant")
    lines: list[TickLine] = []
    for job in _jobs.values():
        lines.extend(job(request))
    return lines
