"""Admin pages of the coordinators' monitoring (mounted by `monitoring.admin`): participant page,
study page, daily worklist, alert acknowledgement. Reads through `scoped()`; writes through services."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.timezone import now

from cohorts.admin_base import may_act_in
from cohorts.models import AuditEvent, Participant, Study
from cohorts.scoping import EDITORS, scoped, user_can
from measurements.guidelines import guideline_filters
from measurements.models import Alert, BloodPressureReading, DailyAdherence, Device
from measurements.monitoring.adherence import VALID_READINGS
from measurements.monitoring.charts import (
    ADHERENCE_LEGEND,
    adherence_cell,
    battery_badge,
    bp_trend_svg,
)
from measurements.monitoring.confirmation import confirmation_annotations, confirmation_text
from measurements.monitoring.protocol import (
    participant_period,
    participant_start,
    protocol_for_study,
    protocol_history,
    version_of,
    window_of,
)
from measurements.monitoring.safety_figures import duration_label, safety_figures
from measurements.monitoring.selectors import adherence_calendar, participant_adherence
from measurements.monitoring.worklist import worklist_items
from measurements.quality import PLAUSIBLE

CHART_DAYS = 90
HEATMAP_DAYS = 28
READINGS_PER_PAGE = 50
WORKLIST_LIMIT = 500


def _context(admin_site, request, **extra):
    return {**admin_site.each_context(request), **extra}


def participant_page(request, admin_site, model_admin, object_id):
    participant = model_admin.get_object(request, object_id)
    if participant is None or not model_admin.has_view_permission(request, participant):
        raise Http404
    study = participant.study
    protocol = protocol_for_study(study.pk)
    rules = protocol_history(study.pk)
    tz = ZoneInfo(participant.timezone)
    summary = participant_adherence(participant=participant, protocol=protocol)
    profile = protocol.profile
    readings = BloodPressureReading.objects.filter(participant=participant).order_by("-measured_at")
    since = now() - dt.timedelta(days=CHART_DAYS)
    chart_points = list(
        readings.filter(VALID_READINGS, PLAUSIBLE, measured_at__gte=since).values_list(
            "measured_at", "systolic", "diastolic"
        )
    )
    page = Paginator(readings, READINGS_PER_PAGE).get_page(request.GET.get("page"))
    table = []
    for r in page.object_list:
        category = profile.category(r.systolic, r.diastolic) if r.plausible else None
        local = r.measured_at.astimezone(tz)
        table.append(
            {
                "reading": r,
                "window": window_of(local, rules.for_day(local.date())),
                "category": category,
                "category_label": profile.labels.get(category or "", ""),
            }
        )
    history = AuditEvent.objects.filter(participant=participant).filter(
        Q(action__startswith="participant.link_status") | Q(action__startswith="withings.")
        | Q(action__startswith="alert.") | Q(action__startswith="participant.withdr")
    ).select_related("actor")[:50]  # fmt: skip
    alerts = list(
        Alert.objects.filter(participant=participant)
        .select_related("acknowledged_by", "safety_plan")
        .annotate(**confirmation_annotations())[:50]
    )
    for alert in alerts:
        alert.confirmation = confirmation_text(alert)
    return TemplateResponse(
        request,
        "admin/measurements/monitoring/participant.html",
        _context(
            admin_site,
            request,
            title=f"Participant {participant.code}",
            participant=participant,
            study=study,
            protocol=protocol,
            guideline=profile,
            period=participant_period(participant, protocol, study),
            protocol_start=participant_start(participant, study),
            protocol_version=version_of(rules.for_day(summary.today)),
            summary=summary,
            chart=bp_trend_svg(chart_points, protocol, tz),
            chart_rows=[(t.astimezone(tz), sys, dia) for t, sys, dia in sorted(chart_points)],
            chart_days=CHART_DAYS,
            weeks=adherence_calendar(days=summary.days, today=summary.today),
            adherence_legend=ADHERENCE_LEGEND,
            page=page,
            table=table,
            devices=[(d, battery_badge(d.battery)) for d in Device.objects.filter(participant=participant)],
            history=history,
            alerts=alerts,
            can_acknowledge=user_can(request.user, participant, EDITORS),
            opts=model_admin.model._meta,
        ),
    )


def study_page(request, admin_site, slug: str):
    study = get_object_or_404(scoped(Study.objects.all(), request.user), slug=slug)
    participants = scoped(Participant.objects.filter(study=study), request.user)
    today = now().date()
    first = today - dt.timedelta(days=HEATMAP_DAYS - 1)
    days = [first + dt.timedelta(days=i) for i in range(HEATMAP_DAYS)]
    page = Paginator(participants.order_by("code").only("pk", "code", "status"), 50).get_page(
        request.GET.get("page")
    )
    ids = [p.pk for p in page.object_list]
    cells = {
        (r.participant_id, r.day): r
        for r in DailyAdherence.objects.filter(participant_id__in=ids, day__gte=first, day__lte=today).only(
            "participant_id", "day", "counted", "expected", "morning", "evening", "other"
        )
    }
    heatmap = [
        {
            "participant": p,
            "cells": [adherence_cell(d, cells.get((p.pk, d)), today) for d in days],
        }
        for p in page.object_list
    ]
    by_status = dict(participants.order_by().values_list("status").annotate(n=Count("pk")))
    by_link = dict(participants.order_by().values_list("link_status").annotate(n=Count("pk")))
    window_start = today - dt.timedelta(days=30)
    profile = protocol_for_study(study.pk).profile
    recent = scoped(BloodPressureReading.objects.filter(participant__study=study), request.user).filter(
        VALID_READINGS, measured_at__gte=dt.datetime.combine(window_start, dt.time.min, tzinfo=dt.UTC)
    )
    # The study's guideline classifies: one aggregate over the recent readings (none per category).
    categories = recent.filter(PLAUSIBLE).aggregate(
        **{c.code: Count("pk", filter=profile_q) for c, profile_q in guideline_filters(profile)}
    )
    # From the partial index of implausible readings (small), scoped like every other count here.
    implausible = recent.exclude(PLAUSIBLE).count()
    open_alerts = dict(
        scoped(Alert.objects.filter(study=study, resolved_at__isnull=True), request.user)
        .order_by()
        .values_list("kind")
        .annotate(n=Count("pk"))
    )
    figures = safety_figures(scoped(Alert.objects.filter(study=study), request.user), at=now())
    return TemplateResponse(
        request,
        "admin/measurements/monitoring/study.html",
        _context(
            admin_site,
            request,
            title=f"Monitoring — {study.name}",
            study=study,
            days=days,
            heatmap=heatmap,
            adherence_legend=ADHERENCE_LEGEND,
            page=page,
            by_status=[(label, by_status.get(value, 0)) for value, label in Participant.Status.choices],
            by_link=[(label, by_link.get(value, 0)) for value, label in Participant.LinkStatus.choices],
            categories=[(c.code, c.label, categories.get(c.code) or 0) for c in profile.categories],
            guideline=profile,
            implausible=implausible,
            open_alerts=[(label, open_alerts.get(value, 0)) for value, label in Alert.Kind.choices],
            window_start=window_start,
            safety=figures,
            safety_median=duration_label(figures.median),
            safety_p90=duration_label(figures.p90),
        ),
    )


def worklist(request, admin_site):
    """Everyone needing attention today, across the coordinator's studies."""
    items = worklist_items(user=request.user, limit=WORKLIST_LIMIT)
    people = [item.participant for item in items]
    actable = {p.pk for p in people if may_act_in(request, p.study_id, p.site_id)}
    return TemplateResponse(
        request,
        "admin/measurements/monitoring/worklist.html",
        _context(
            admin_site,
            request,
            title="Today's worklist",
            items=items,
            actable=actable,
            truncated=len(items) == WORKLIST_LIMIT,
        ),
    )
