"""Argument types shared by the management commands."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import CommandError


def iso_date(value: str) -> dt.date:
    """A ``YYYY-MM-DD`` argument, or a clear error naming what was given."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from exc
