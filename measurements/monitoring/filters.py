"""List filters of the monitoring admin."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from cohorts.models import Participant

from .selectors import LINK_BROKEN


def choice_filter(name: str, *, title: str, parameter: str, choices: dict[str, tuple[str, Q]]) -> type:
    """A list filter offering `choices` (value → (label, condition)); any other value filters nothing."""

    def lookups(self, request, model_admin):
        return [(value, label) for value, (label, _condition) in choices.items()]

    def queryset(self, request, queryset):
        choice = choices.get(self.value())
        return queryset if choice is None else queryset.filter(choice[1])

    attributes = {"title": title, "parameter_name": parameter, "lookups": lookups, "queryset": queryset}
    return type(name, (admin.SimpleListFilter,), attributes)


_TARGET = Coalesce(F("study__protocol__adherence_target_percent"), Value(80))

LinkBrokenFilter = choice_filter(
    "LinkBrokenFilter",
    title="link",
    parameter="link",
    choices={
        "broken": ("Broken or failing", LINK_BROKEN),
        "ok": ("Linked", Q(link_status=Participant.LinkStatus.ACTIVE)),
    },
)
BelowTargetFilter = choice_filter(
    "BelowTargetFilter",
    title="last 7 days vs target",
    parameter="adherence",
    choices={
        "below": (
            "Below the study's target",
            Q(week_percent__lt=_TARGET) | Q(week_percent__isnull=True, week_expected=0),
        ),
        "met": ("At or above target", Q(week_percent__gte=_TARGET)),
    },
)
OpenAlertsFilter = choice_filter(
    "OpenAlertsFilter",
    title="open alerts",
    parameter="alerts",
    choices={"yes": ("With open alerts", Q(open_alerts__gt=0)), "no": ("None", Q(open_alerts=0))},
)
AlertStateFilter = choice_filter(
    "AlertStateFilter",
    title="state",
    parameter="state",
    choices={
        "open": ("Open", Q(resolved_at__isnull=True)),
        "unacknowledged": (
            "Open, not acknowledged",
            Q(resolved_at__isnull=True, acknowledged_at__isnull=True),
        ),
        "resolved": ("Resolved", Q(resolved_at__isnull=False)),
    },
)


class NoReadingForFilter(admin.SimpleListFilter):
    """Offers 2, 3, 7 and 14 days, and takes any number of days (capped) from the URL."""

    title = "no reading for"
    parameter_name = "silent"
    MAX_DAYS = 3650  # longer than any study: a larger value means the same, and cannot overflow

    def lookups(self, request, model_admin):
        return [(str(n), f"{n}+ days") for n in (2, 3, 7, 14)]

    def queryset(self, request, queryset):
        value = self.value() or ""
        if value.isascii() and value.isdigit():
            days = min(int(value), self.MAX_DAYS) if len(value) <= 5 else self.MAX_DAYS
            since = now() - dt.timedelta(days=days)
            return queryset.filter(Q(last_reading_at__lt=since) | Q(last_reading_at__isnull=True))
        return queryset
