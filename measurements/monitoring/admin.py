"""The coordinators' monitoring admin: participant changelist computed in SQL, participant page
with charts, alerts with acknowledgement, study page (heatmap, counts), daily worklist, protocol."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import BooleanField, Case, ExpressionWrapper, F, QuerySet, Value, When
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timezone import now

from cohorts.admin_base import ReadOnlyTenantAdmin, TenantAdmin, admin_page
from cohorts.scoping import EDITORS, scope_q
from core.localtime import zoned_time, zoned_time_html
from measurements.guidelines import Guideline, guideline
from measurements.models import Alert, MonitoredParticipant, StudyProtocol, StudyProtocolVersion

from . import alert_views, views
from .charts import battery_badge
from .confirmation import confirmation_annotations, confirmation_text
from .display import age as _ago
from .display import bp_value
from .filters import (
    AlertStateFilter,
    BelowTargetFilter,
    LinkBrokenFilter,
    NoReadingForFilter,
    OpenAlertsFilter,
)
from .forms import StudyProtocolForm
from .selectors import BROKEN_OR_FAILING, monitoring_annotate, protocol_average
from .services import protocol_save
from .severity import Severity, alert_severity


def category_badge(category: str | None, profile: Guideline | None = None):
    if category is None:
        return "—"
    labels = (profile or guideline(None)).labels
    return format_html('<span class="bp-cat bp-{}">{}</span>', category, labels[category])


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def _rows_for(queryset, ids: list[int]) -> list:
    by_pk = {row.pk: row for row in queryset.filter(pk__in=ids).order_by()}
    return [by_pk[pk] for pk in ids if pk in by_pk]


class AnnotatedPagePaginator(Paginator):
    """Two steps: the page's ids with only what the filters and the ordering need, then every
    column for those ids only. (One query with OFFSET would make PostgreSQL compute every column
    of every skipped row: page 50 of 10,000 participants cost 2.6 s that way.)"""

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        ids = list(self.object_list.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        return self._get_page(_rows_for(self.object_list, ids), number, self)


class MonitoringChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        if isinstance(self.result_list, QuerySet):  # a single page or "show all": same two steps
            ids = list(self.result_list.values_list("pk", flat=True))
            self.result_list = _rows_for(self.result_list, ids)


@admin.register(MonitoredParticipant)
class MonitoredParticipantAdmin(ReadOnlyTenantAdmin):
    """Read-only: one row per participant, every column an annotation (constant query count)."""

    changelist_title = "Participants — monitoring"

    list_display = [
        "code",
        "site_code",
        "status",
        "link",
        "last_reading",
        "last_values",
        "week",
        "week_adherence",
        "study_adherence",
        "protocol_avg",
        "battery_level",
        "cuff_sync",
        "alerts",
    ]
    list_filter = [
        ("study", admin.RelatedOnlyFieldListFilter),
        ("site", admin.RelatedOnlyFieldListFilter),
        "status",
        LinkBrokenFilter,
        BelowTargetFilter,
        NoReadingForFilter,
        OpenAlertsFilter,
    ]
    list_select_related = ["study", "site", "study__protocol"]
    search_fields = ["code"]
    ordering = ["study__name", "code"]
    list_per_page = 100
    show_full_result_count = False
    change_list_template = "admin/measurements/monitoring/change_list.html"

    def get_queryset(self, request):
        return monitoring_annotate(super().get_queryset(request))

    def get_changelist(self, request, **kwargs):
        return MonitoringChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        return AnnotatedPagePaginator(queryset, per_page, orphans, allow_empty_first_page)

    @admin.display(description="site", ordering="site__code")
    def site_code(self, p):
        return p.site.code if p.site_id else "—"

    @admin.display(description="link", ordering="link_status")
    def link(self, p):
        broken = p.link_status in BROKEN_OR_FAILING
        return format_html(
            '<span class="{}">{}</span>', "link-broken" if broken else "", p.get_link_status_display()
        )

    @admin.display(description="last reading", ordering=F("last_reading_at").desc(nulls_last=True))
    def last_reading(self, p):
        if p.last_reading_at is None:
            return "—"
        return format_html(
            '<span title="{}">{} ago</span>',
            zoned_time(p.last_reading_at, p),
            _ago(now() - p.last_reading_at),
        )

    @admin.display(description="values")
    def last_values(self, p):
        if p.last_systolic is None:
            return "—"
        return format_html(
            "{}/{} {}",
            f"{p.last_systolic:.0f}",
            f"{p.last_diastolic:.0f}",
            self._last_category(p),
        )

    @staticmethod
    def _last_category(p):
        if p.last_quality_flags:
            return format_html('<span class="bp-cat bp-implausible">{}</span>', "implausible")
        profile = guideline(getattr(p, "bp_guideline", None))
        return category_badge(profile.category(p.last_systolic, p.last_diastolic), profile)

    @admin.display(description="7 days", ordering="week_counted")
    def week(self, p):
        return f"{p.week_counted}/{p.week_expected}" if p.week_expected else "—"

    @admin.display(description="7-day %", ordering=F("week_percent").asc(nulls_first=True))
    def week_adherence(self, p):
        target = p.study.protocol.adherence_target_percent if _has_protocol(p) else 80
        below = p.week_percent is not None and p.week_percent < target
        return format_html(
            '<span class="{}">{}</span>', "below-target" if below else "", _percent(p.week_percent)
        )

    @admin.display(description="study %", ordering=F("study_percent").asc(nulls_first=True))
    def study_adherence(self, p):
        return _percent(p.study_percent)

    @admin.display(description="protocol avg")
    def protocol_avg(self, p):
        protocol = p.study.protocol if _has_protocol(p) else StudyProtocol()
        avg = protocol_average(
            readings=p.avg_n, systolic_sum=p.avg_sys_sum, diastolic_sum=p.avg_dia_sum, protocol=protocol
        )
        if avg.systolic is None:
            return "—"
        flag = "" if avg.valid else f" (n={avg.readings}, <{protocol.min_valid_readings})"
        cls = "above-threshold" if avg.above_threshold else ""
        return format_html('<span class="{}">{}{}</span>', cls, avg.label, flag)

    @admin.display(description="battery", ordering="battery")
    def battery_level(self, p):
        return battery_badge(p.battery)

    @admin.display(description="cuff sync", ordering=F("last_cuff_sync").desc(nulls_last=True))
    def cuff_sync(self, p):
        if p.last_cuff_sync is None:
            return "—"
        return format_html(
            '<span title="{}">{} ago</span>', zoned_time(p.last_cuff_sync, p), _ago(now() - p.last_cuff_sync)
        )

    @admin.display(description="alerts", ordering="open_alerts")
    def alerts(self, p):
        if not p.open_alerts:
            return "0"
        url = reverse("admin:measurements_alert_changelist") + f"?participant__id__exact={p.pk}&state=open"
        return format_html('<a class="open-alerts" href="{}">{}</a>', url, p.open_alerts)

    def get_urls(self):
        site = self.admin_site
        return [
            admin_page(site, "study/<slug:slug>/", views.study_page, "measurements_monitoring_study"),
            admin_page(site, "worklist/", views.worklist, "measurements_monitoring_worklist"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return views.participant_page(request, self.admin_site, self, object_id)

    def changelist_view(self, request, extra_context=None):
        from cohorts.models import Study
        from cohorts.scoping import scoped

        studies = scoped(Study.objects.all(), request.user).order_by("name").only("slug", "name")
        return super().changelist_view(request, {**(extra_context or {}), "monitoring_studies": studies})


def _has_protocol(p) -> bool:
    try:
        return p.study.protocol is not None
    except StudyProtocol.DoesNotExist:
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyTenantAdmin):
    """Most urgent first (see `severity`), then the longest waiting; the Acknowledge button sits in
    its own column beside the alert, and each alert opens on its own page (notes, acknowledgement)."""

    list_display = [
        "urgency",
        "participant_code",
        "alert_kind",
        "summary",
        "opened",
        "action",
        "state",
    ]
    list_display_links = None
    list_filter = [AlertStateFilter, "kind", ("study", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["participant", "study", "acknowledged_by", "safety_plan"]
    search_fields = ["participant__code"]
    date_hierarchy = None
    readonly_fields = [f.name for f in Alert._meta.fields]

    class Media:
        css = {"all": ["measurements/monitoring.css"]}

    def get_queryset(self, request):
        user = request.user
        may_act = (
            Value(True)
            if user.is_superuser
            else ExpressionWrapper(scope_q(Alert, user, EDITORS), output_field=BooleanField())
        )
        open_since = Case(When(resolved_at__isnull=True, then=F("opened_at")))
        return (
            super()
            .get_queryset(request)
            .annotate(severity=alert_severity(now()), waiting_since=open_since, may_act=may_act)
            .annotate(**confirmation_annotations())
        )

    def get_ordering(self, request):
        # Expressions, not names: ModelAdmin orders before `get_queryset` adds the annotations.
        return [F("severity").asc(), F("waiting_since").asc(nulls_last=True), "-opened_at"]

    @admin.display(description="urgency", ordering="severity")
    def urgency(self, alert):
        css = Severity.CSS.get(alert.severity, "")
        return format_html('<span class="sev-badge {}">{}</span>', css, Severity.LABELS[alert.severity])

    @admin.display(description="participant", ordering="participant__code")
    def participant_code(self, alert):
        url = reverse("admin:measurements_monitoredparticipant_change", args=[alert.participant_id])
        return format_html(
            '<a href="{}">{}</a><br><small>{}</small>', url, alert.participant.code, alert.study.name
        )

    @admin.display(description="alert", ordering="kind")
    def alert_kind(self, alert):
        url = reverse("admin:measurements_alert_change", args=[alert.pk])
        return format_html('<a href="{}">{}</a>', url, alert.get_kind_display())

    @admin.display(description="detail")
    def summary(self, alert):
        value = bp_value(alert)
        if not value:
            return alert.summary
        confirmation = confirmation_text(alert)
        if confirmation:
            return format_html("<strong>{}</strong><br><small>{}</small>", value, confirmation)
        return format_html("<strong>{}</strong>", value)

    @admin.display(description="opened", ordering="opened_at")
    def opened(self, alert):
        return format_html(
            "{} ago<br><small>{}</small>",
            _ago(now() - alert.opened_at),
            zoned_time_html(alert.opened_at, alert.participant),
        )

    @admin.display(description="action")
    def action(self, alert):
        if alert.acknowledged_at is not None:
            return format_html(
                "Acknowledged by {}<br><small>{}</small><br><small>{}</small>",
                alert.acknowledged_by,
                zoned_time_html(alert.acknowledged_at, alert.participant),
                alert.note,
            )
        if not alert.may_act:
            return "—"
        url = reverse("admin:measurements_alert_acknowledge", args=[alert.pk])
        return format_html(
            '<a class="button" href="{}">Acknowledge<span class="visually-hidden"> {} of {}</span></a>',
            url,
            alert.get_kind_display().lower(),
            alert.participant.code,
        )

    @admin.display(description="state", ordering="resolved_at")
    def state(self, alert):
        if alert.resolved_at is None:
            return format_html('<strong class="alert-open">{}</strong>', "open")
        return format_html(
            "{} {}", alert.get_resolution_display(), zoned_time_html(alert.resolved_at, alert.participant)
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return alert_views.alert_page(request, self.admin_site, self, object_id)

    def get_urls(self):
        return [
            admin_page(
                self.admin_site,
                "<int:pk>/acknowledge/",
                alert_views.alert_acknowledge_view,
                "measurements_alert_acknowledge",
            ),
            *super().get_urls(),
        ]


@admin.register(StudyProtocol)
class StudyProtocolAdmin(TenantAdmin):
    study_wide_edits = True  # the protocol is the study's: site-limited coordinators read it
    list_display = [
        "study",
        "kind",
        "expected_per_day",
        "duration_days",
        "home_thresholds",
        "crisis_thresholds",
    ]
    list_select_related = ["study"]
    fieldsets = [
        (None, {"fields": ["study", "kind", "readings_per_window", "readings_per_day", "duration_days",
                           "count_by"]}),
        ("Windows (participant-local time)", {"fields": ["morning_start", "morning_end",
                                                          "evening_start", "evening_end"]}),
        ("Guideline and protocol average", {"fields": ["guideline", "discard_first_day", "min_valid_readings",
                                                       "home_systolic_threshold", "home_diastolic_threshold",
                                                       "adherence_target_percent"]}),
        ("Alerts", {"fields": ["crisis_systolic", "crisis_diastolic", "no_data_days", "cuff_not_synced_days",
                               "low_battery_alerts"],
                    "description": "Severe and low readings are alerted by the study's safety plan (Safety "
                                   "plans): the crisis thresholds here only seed its first version."}),
    ]  # fmt: skip
    change_fieldset = ("Changing the rules (kind, readings, windows, duration, day 1, counting)",
                       {"fields": ["effective_from", "confirm"]})  # fmt: skip
    form = StudyProtocolForm
    change_form_template = "admin/measurements/studyprotocol/change_form.html"

    def get_fieldsets(self, request, obj=None):
        return [*self.fieldsets, self.change_fieldset] if obj is not None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return ["study"] if obj is not None else []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        versions = StudyProtocolVersion.objects.filter(study_id=obj.study_id) if obj is not None else []
        context = {**context, "protocol_versions": versions, "impact": context["adminform"].form.impact}
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="per day")
    def expected_per_day(self, protocol):
        return protocol.expected_per_day

    @admin.display(description="home threshold")
    def home_thresholds(self, protocol):
        return f"{protocol.home_systolic_threshold}/{protocol.home_diastolic_threshold}"

    @admin.display(description="crisis above")
    def crisis_thresholds(self, protocol):
        return f"{protocol.crisis_systolic}/{protocol.crisis_diastolic}"

    def save_model(self, request, obj, form, change):
        self.check_tenant_write(request, *self.tenant_ids(obj))
        protocol_save(
            actor=request.user,
            protocol=obj,
            changed=[name for name in form.changed_data if name not in ("effective_from", "confirm")],
            effective_from=form.cleaned_data.get("effective_from"),
        )
