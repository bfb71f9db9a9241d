"""List filters of the monitoring admin."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from cohorts.models import Participant

from .selectors import LINK_BROKEN


class LinkBrokenFilter(admin.SimpleListFilter):
    title = "link"
    parameter_name = "link"

    def lookups(self, request, model_admin):
        return [("broken", "Broken or failing"), ("ok", "Linked")]

    def queryset(self, request, queryset):
        if self.value() == "broken":
            return queryset.filter(LINK_BROKEN)
        if self.value() == "ok":
            return queryset.filter(link_status=Participant.LinkStatus.ACTIVE)
        return queryset


class BelowTargetFilter(admin.SimpleListFilter):
    title = "last 7 days vs target"
    parameter_name = "adherence"

    def lookups(self, request, model_admin):
        return [("below", "Below the study's target"), ("met", "At or above target")]

    def queryset(self, request, queryset):
        target = Coalesce(F("study__protocol__adherence_target_percent"), Value(80))
        if self.value() == "below":
            return queryset.filter(Q(week_percent__lt=target) | Q(week_percent__isnull=True, week_expected=0))
        if self.value() == "met":
            return queryset.filter(week_percent__gte=target)
        return queryset


class NoReadingForFilter(admin.SimpleListFilter):
    title = "no reading for"
    parameter_name = "silent"

    def lookups(self, request, model_admin):
        return [(str(n), f"{n}+ days") for n in (2, 3, 7, 14)]

    MAX_DAYS = 3650  # longer than any study: a larger value means the same, and cannot overflow

    def queryset(self, request, queryset):
        value = self.value() or ""
        if value.isascii() and value.isdigit():
            days = min(int(value), self.MAX_DAYS) if len(value) <= 5 else self.MAX_DAYS
            since = now() - dt.timedelta(days=days)
            return queryset.filter(Q(last_reading_at__lt=since) | Q(last_reading_at__isnull=True))
        return queryset


class OpenAlertsFilter(admin.SimpleListFilter):
    title = "open alerts"
    parameter_name = "alerts"

    def lookups(self, request, model_admin):
        return [("yes", "With open alerts"), ("no", "None")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(open_alerts__gt=0)
        if self.value() == "no":
            return queryset.filter(open_alerts=0)
        return queryset


class AlertStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("unacknowledged", "Open, not acknowledged"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "unacknowledged":
            return queryset.filter(resolved_at__isnull=True, acknowledged_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset
