"""The same decision one participant at a time (a few queries each): what SQLite runs (the zero-setup
demo), and the baseline ``make bench-tick`` measures the set-based statement against."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Max, Q

from cohorts.models import Participant
from measurements.models import BloodPressureReading, Device
from messaging.models import Message, StudyMessaging

from .candidates import (
    CAP_DAYS,
    CAPPED,
    ELIGIBLE_STATUSES,
    Candidate,
    Rules,
    State,
    apply_caps,
    participant_candidates,
    pick_channel,
)
from .windows import StudyWindows


def rules_of(sm: StudyMessaging) -> Rules:
    return Rules(
        prompts=sm.prompts,
        no_data_reminders=sm.no_data_reminders,
        no_data_days=sm.no_data_days,
        sync_grace_hours=sm.sync_grace_hours,
        relink_reminders=sm.relink_reminders,
        low_battery_reminders=sm.low_battery_reminders,
        quiet_start=sm.quiet_start,
        quiet_end=sm.quiet_end,
        max_per_day=sm.max_per_day,
        max_per_week=sm.max_per_week,
    )


def participant_state(p: Participant, at: dt.datetime) -> State:
    last_reading = (
        BloodPressureReading.objects.filter(participant=p, measured_at__lte=at)
        .order_by("-measured_at")
        .values_list("measured_at", flat=True)
        .first()
    )
    devices = Device.objects.filter(participant=p)
    low = (
        devices.filter(battery="low", battery_low_since__isnull=False)
        .order_by("-battery_low_since", "device_id")
        .values_list("device_id", "battery_low_since")
        .first()
    )
    return State(
        participant_id=p.pk,
        study_id=p.study_id,
        code=p.code,
        timezone=p.timezone,
        start_date=p.start_date,
        end_date=p.end_date,
        link_status=p.link_status,
        link_status_changed_at=p.link_status_changed_at,
        channel=pick_channel(p.contact),
        language=p.contact.language,
        last_reading_at=last_reading,
        last_sync_at=devices.aggregate(last=Max("last_session_at"))["last"],
        low_battery_device=low[0] if low else None,
        low_battery_since=low[1] if low else None,
    )


def decide_per_participant(
    *, at: dt.datetime, windows: dict[int, StudyWindows], rules: dict[int, Rules], limit: int | None = None
) -> list[Candidate]:
    participants = (
        Participant.objects.filter(
            study_id__in=list(windows),
            status__in=ELIGIBLE_STATUSES,
            withdrawn_at__isnull=True,
            contact__reminders_opt_in=True,
        )
        .select_related("contact")
        .order_by("pk")
    )
    out: list[Candidate] = []
    for p in participants[:limit] if limit else participants:
        due = participant_candidates(participant_state(p, at), rules[p.study_id], windows[p.study_id], at)
        if not due:
            continue
        logged = set(
            Message.objects.filter(participant=p, dedupe_key__in=[c.dedupe_key for c in due]).values_list(
                "dedupe_key", flat=True
            )
        )
        fresh = [c for c in due if c.dedupe_key not in logged]
        if not fresh:
            continue
        today = fresh[0].local_day
        counts = Message.objects.filter(
            participant=p,
            local_day__gt=today - dt.timedelta(days=CAP_DAYS),
            local_day__lte=today,
            reason__in=CAPPED,
        ).aggregate(day=Count("pk", filter=Q(local_day=today)), week=Count("pk"))
        out.extend(
            apply_caps(fresh, today_count=counts["day"], week_count=counts["week"], rules=rules[p.study_id])
        )
    return out
