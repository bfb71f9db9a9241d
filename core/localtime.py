"""Times shown to staff: in the participant's time zone with the zone named, or in UTC, labelled.

Django renders a datetime in the active zone (UTC for staff) without saying which; a participant's
07:28 showed as 06:28. Everything on staff pages goes through `zoned_time` / `zoned_time_html`
(templates: the ``staff_time`` library; admin lists: `zoned_column`), so a time always carries its
zone. `subject` is a zone name, anything with a ``timezone`` attribute (a participant), or None (UTC).
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.utils.html import format_html
from django.utils.safestring import SafeString

UTC_NAME = "UTC"
DATETIME_FORMAT = "%Y-%m-%d %H:%M"
DATE_FORMAT = "%Y-%m-%d"


def zone_name(subject: Any) -> str:
    """The IANA name of `subject`'s zone ("UTC" when it has none)."""
    if subject is None:
        return UTC_NAME
    name = subject if isinstance(subject, str) else getattr(subject, "timezone", None)
    return name or UTC_NAME


def in_zone(value: dt.datetime, subject: Any) -> dt.datetime:
    return value.astimezone(ZoneInfo(zone_name(subject)))


def zone_label(local: dt.datetime) -> str:
    """The abbreviation in force at `local` ("CET", "CEST", "UTC"); zones without one get their
    offset ("UTC-03")."""
    abbreviation = local.strftime("%Z")
    if abbreviation[:1] in "+-":
        return f"UTC{abbreviation}"
    return abbreviation


def zoned_time(value: dt.datetime | None, subject: Any = None, *, fmt: str = DATETIME_FORMAT) -> str:
    """ "2026-03-29 03:30 CEST": `value` in `subject`'s zone, with the zone's abbreviation; "" for None."""
    if not value:  # None, or a template's missing variable
        return ""
    local = in_zone(value, subject)
    return f"{local.strftime(fmt)} {zone_label(local)}"


def zoned_date(value: dt.datetime | None, subject: Any = None) -> str:
    """The participant-local calendar day of an instant ("" for None)."""
    return in_zone(value, subject).strftime(DATE_FORMAT) if value else ""


def zoned_time_html(value: dt.datetime | None, subject: Any = None, *, empty: str = "—") -> SafeString:
    """`zoned_time` in a ``<time>`` element: the ISO instant with its offset, the IANA name on hover."""
    if not value:
        return format_html("{}", empty)
    local = in_zone(value, subject)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(timespec="seconds"),
        zone_name(subject),
        zoned_time(value, subject),
    )


def zoned_column(
    field: str, *, zone: str | None, description: str | None = None
) -> Callable[[Any, Any], SafeString]:
    """An admin ``list_display`` column showing `field` in the zone found at the dotted path `zone`
    of the row (e.g. ``"participant"`` for a row's participant; the row itself when ""), else UTC."""

    def column(_model_admin, obj) -> SafeString:
        subject = obj if zone == "" else (operator.attrgetter(zone)(obj) if zone else None)
        return zoned_time_html(getattr(obj, field), subject)

    return admin.display(description=description or field.replace("_", " "), ordering=field)(column)
