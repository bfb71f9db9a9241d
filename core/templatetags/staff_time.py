"""Times on staff pages, each with its zone: ``{{ reading.measured_at|participant_time:participant }}``
→ "2026-03-29 03:30 CEST" (the zone's IANA name on hover), ``{{ job.created_at|utc_time }}`` →
"2026-03-29 01:30 UTC", ``{{ device.first_session_at|participant_date:participant }}`` → the
participant-local day. See `core.localtime`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils.safestring import SafeString

from core.localtime import zoned_date, zoned_time_html

register = template.Library()


@register.filter
def participant_time(value: dt.datetime | None, subject: Any) -> SafeString:
    return zoned_time_html(value, subject, empty="")


@register.filter
def utc_time(value: dt.datetime | None) -> SafeString:
    return zoned_time_html(value, None, empty="")


@register.filter
def participant_date(value: dt.datetime | None, subject: Any) -> str:
    return zoned_date(value, subject)
