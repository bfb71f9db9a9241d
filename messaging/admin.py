"""The delivery log in the admin, per participant (filter on the participant) and per study: reason,
channel, status, provider id, attempts and times in the participant's zone. Never an address or a
number; the text itself only for the study's coordinators. Texts received: coordinators only."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.contrib import admin

from cohorts.admin_base import ReadOnlyTenantAdmin, may_act_in
from cohorts.scoping import EDITORS

from .models import InboundMessage, Message


def in_zone(instant: dt.datetime | None, zone: str) -> str:
    """An instant in the participant's zone, the zone named."""
    if instant is None:
        return "—"
    return f"{instant.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} ({zone})"


@admin.register(Message)
class MessageAdmin(ReadOnlyTenantAdmin):
    list_display = ["created", "participant", "reason", "channel", "status", "provider_id", "attempts",
                    "sent", "delivered", "error"]  # fmt: skip
    list_filter = ["status", "reason", "channel", ("study", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["participant", "participant__study", "study"]
    search_fields = ["participant__code", "provider_id"]
    date_hierarchy = "created_at"
    _fields = ["study", "participant", "reason", "dedupe_key", "channel", "template", "status",
               "provider_id", "attempts", "error", "local_day", "due", "created", "sent", "delivered",
               "sent_by"]  # fmt: skip

    def get_fields(self, request, obj=None):
        if obj is not None and may_act_in(request, obj.study_id, obj.participant.site_id, EDITORS):
            return [*self._fields, "subject", "body"]  # the text: the coordinators who may send one
        return self._fields

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def _zone(self, obj: Message) -> str:
        return obj.participant.timezone

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return in_zone(obj.created_at, self._zone(obj))

    @admin.display(description="due", ordering="due_at")
    def due(self, obj):
        return in_zone(obj.due_at, self._zone(obj))

    @admin.display(description="sent", ordering="sent_at")
    def sent(self, obj):
        return in_zone(obj.sent_at, self._zone(obj))

    @admin.display(description="delivered", ordering="delivered_at")
    def delivered(self, obj):
        return in_zone(obj.delivered_at, self._zone(obj))


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyTenantAdmin):
    view_roles = EDITORS
    list_display = ["received", "participant", "keyword", "text"]
    list_filter = ["keyword", ("study", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["participant", "participant__study"]
    search_fields = ["participant__code"]
    fields = ["study", "participant", "keyword", "received", "body", "provider_id"]
    readonly_fields = fields

    @admin.display(description="received", ordering="received_at")
    def received(self, obj):
        return in_zone(obj.received_at, obj.participant.timezone if obj.participant else "UTC")

    @admin.display(description="text")
    def text(self, obj):
        return obj.body if len(obj.body) <= 80 else obj.body[:79] + "…"


from . import admin_rules  # noqa: E402, F401 — registers the reminder rules, wording and one-off pages
