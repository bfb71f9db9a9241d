"""Argument types shared by the management commands."""

from __future__ import annotations

import argparse
import datetime as dt


def iso_date(value: str) -> dt.date:
    """A ``YYYY-MM-DD`` argument; anything else is a usage error naming what was given (argparse
    prints it with the command's usage and exits 2, no traceback)."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD).") from exc
