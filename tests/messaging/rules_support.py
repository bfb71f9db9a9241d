"""Building blocks of the reminder-rule tests: live rules, participants with contact details, readings
and cuff syncs as they reach the portal, and the message log as (code, reason, key, due) rows."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

from django.core.management import call_command

from cohorts.models import Participant, ParticipantContact, Study
from measurements.models import Device, StudyProtocol
from messaging.models import Message, StudyMessaging
from tests.factories import ParticipantFactory, ReadingFactory, StudyFactory

UTC = dt.UTC
DEVICE = "cuff-" + "0" * 35


def local(when: str, zone: str) -> dt.datetime:
    """A participant-local wall-clock time ("2026-03-29 08:00") as a UTC instant."""
    return dt.datetime.fromisoformat(when).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def live_study(*, live_since: dt.datetime, slug: str = "replay", **rules) -> Study:
    """A study with a 14-day HBPM protocol (morning 06:00–11:00, evening 18:00–22:00) and live rules."""
    study = StudyFactory(slug=slug, name=f"Study {slug}", contact_phone="+441632960000")
    StudyProtocol.objects.create(
        study=study,
        morning_start=dt.time(6, 0),
        morning_end=dt.time(11, 0),
        evening_start=dt.time(18, 0),
        evening_end=dt.time(22, 0),
        duration_days=14,
    )
    StudyMessaging.objects.create(study=study, live_since=live_since, **rules)
    return study


def participant(
    study: Study,
    code: str,
    zone: str,
    *,
    start: dt.date,
    phone: str = "+447700900001",
    email: str = "",
    opt_in: bool = True,
    sms_opted_out_at: dt.datetime | None = None,
    **fields,
) -> Participant:
    p = ParticipantFactory(
        study=study,
        code=code,
        timezone=zone,
        start_date=start,
        link_status=Participant.LinkStatus.ACTIVE,
        **fields,
    )
    ParticipantContact.objects.create(
        participant=p,
        phone=phone,
        email=email,
        preferred_channel="sms" if phone else "email",
        reminders_opt_in=opt_in,
        sms_opted_out_at=sms_opted_out_at,
    )
    return p


def upload(p: Participant, *measured: dt.datetime, synced: dt.datetime) -> None:
    """Readings reaching the portal, and the cuff's last sync as getdevice then reports it."""
    for when in measured:
        ReadingFactory(participant=p, measured_at=when, source_timezone=p.timezone)
    Device.objects.update_or_create(
        participant=p, device_id=DEVICE, defaults={"battery": "high", "last_session_at": synced}
    )


def tick(at: dt.datetime, *, dry_run: bool = False, study: str | None = None) -> str:
    out = io.StringIO()
    options: dict[str, object] = {"at": at.isoformat(), "dry_run": dry_run, "stdout": out}
    if study:
        options["study"] = study
    call_command("tick", **options)
    return out.getvalue()


def log_rows() -> list[tuple[str, str, str, dt.datetime]]:
    """The message log as (participant code, reason, dedupe key, due instant), in order of due time."""
    rows = Message.objects.order_by("due_at", "participant__code", "dedupe_key")
    return [
        (m.participant.code, m.reason, m.dedupe_key, m.due_at) for m in rows.select_related("participant")
    ]
