"""Demo monitoring data: a protocol per demo study and synthetic readings for the seeded active
participants (the sandbox's deterministic generator), so the coordinator's admin shows adherence,
categories, alerts and charts at once. Demo only: imported by `seed_demo_monitoring`."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

from django.db import transaction
from django.utils.timezone import now

from cohorts.models import Participant, Study
from cohorts.services import participant_record_link_status
from measurements.models import StudyProtocol
from measurements.monitoring.adherence import adherence_fill_missing, adherence_rebuild_participant
from measurements.monitoring.alerts import alerts_evaluate
from measurements.readings.devices import devices_upsert
from measurements.readings.parse import parse_groups
from measurements.readings.upsert import readings_upsert_api
from withings.sandbox.generator import bp_group, generate_groups

PROTOCOLS = {
    # Continuous home monitoring: 2 readings per morning and evening window, every day.
    "demo": {"kind": StudyProtocol.Kind.HBPM, "duration_days": None},
    "pilot": {"kind": StudyProtocol.Kind.DAILY, "readings_per_day": 2, "duration_days": None},
}
GRPIDS_PER_PARTICIPANT = 100_000


def _seed(code: str) -> int:
    return int.from_bytes(hashlib.sha256(f"demo-monitoring:{code}".encode()).digest()[:4], "big")


def _story(index: int) -> dict:
    """Give a few participants something for the coordinator to act on."""
    return {
        2: {"stop_days": 5},  # stopped measuring: no-data alert, red calendar days
        3: {"crisis": True},  # a crisis reading yesterday
        5: {"link": Participant.LinkStatus.NEEDS_REAUTH},
        6: {"battery": "low"},
        7: {"missed_day_rate": 0.45},  # poor adherence, below target
    }.get(index, {})


def seed_monitoring(*, today: dt.date | None = None) -> dict[str, int]:
    counts = {"participants": 0, "readings": 0, "alerts": 0}
    current = now()
    for slug, spec in PROTOCOLS.items():
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            continue
        StudyProtocol.objects.get_or_create(study=study, defaults=spec)
        participants = Participant.objects.filter(study=study, status=Participant.Status.ACTIVE).order_by(
            "code"
        )
        for index, participant in enumerate(participants, start=1):
            story = _story(index)
            with transaction.atomic():
                counts["readings"] += _readings(participant, story, current)
                participant_record_link_status(
                    participant_id=participant.pk,
                    link_status=story.get("link", Participant.LinkStatus.ACTIVE),
                    reason="demo",
                )
            adherence_rebuild_participant(participant_id=participant.pk, today=today)
            counts["participants"] += 1
        adherence_fill_missing(study_id=study.pk, through=today)
        counts["alerts"] += alerts_evaluate(study_id=study.pk).raised
    return counts


def _readings(participant: Participant, story: dict, current: dt.datetime) -> int:
    start = participant.start_date or (current.date() - dt.timedelta(days=14))
    days = (current.date() - start).days + 1
    counter = itertools.count(participant.pk * GRPIDS_PER_PARTICIPANT + 1)
    device = hashlib.sha1(participant.code.encode()).hexdigest()  # noqa: S324 - a fake device id
    groups = generate_groups(
        start=dt.datetime.combine(start, dt.time(12), tzinfo=dt.UTC).timestamp(),
        days=days,
        seed=_seed(participant.code),
        next_grpid=lambda: next(counter),
        deviceid=device,
        timezone=participant.timezone,
        missed_day_rate=story.get("missed_day_rate", 0.08),
        crisis_rate=0.0,
    )
    cutoff = current - dt.timedelta(days=story.get("stop_days", 0))
    groups = [g for g in groups if g["date"] <= cutoff.timestamp()]
    if story.get("crisis"):
        when = int((current - dt.timedelta(hours=20)).timestamp())
        crisis = bp_group(186, 112, 88, date=when, grpid=participant.pk * GRPIDS_PER_PARTICIPANT + 99_999)
        crisis.update(created=when + 60, modified=when + 60, deviceid=device, hash_deviceid=device)
        groups.append(crisis)
    parsed = parse_groups(groups)
    result = readings_upsert_api(
        participant_id=participant.pk, readings=parsed.readings, source_timezone=participant.timezone
    )
    last = max((g["date"] for g in groups), default=int(current.timestamp()))
    devices_upsert(
        participant_id=participant.pk,
        devices=[
            {
                "type": "Blood Pressure Monitor",
                "model": "BPM Connect",
                "model_id": 45,
                "battery": story.get("battery", "high"),
                "hash_deviceid": device,
                "timezone": participant.timezone,
                "first_session_date": int(dt.datetime.combine(start, dt.time(8), tzinfo=dt.UTC).timestamp()),
                "last_session_date": last,
            }
        ],
    )
    return result.inserted
