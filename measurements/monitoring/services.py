"""Writes of the monitoring configuration: the study protocol and its versions.

A change of the protocol's rules (`ProtocolRules.RULE_FIELDS`) never rewrites history: it adds a
`StudyProtocolVersion` effective from a participant-local day, and the days before keep the version
they ran under. `protocol_change_impact` tells, before anything is saved, which participants and
days the new version would change and their expected readings before and after.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.timezone import now

from cohorts.models import Participant, Study
from cohorts.services import audit_record
from measurements.models import DailyAdherence, StudyProtocol, StudyProtocolVersion
from measurements.models.monitoring import ProtocolRules

from .adherence import protocol_days
from .protocol import day_expected, history_of, participant_period


def rules_changed(protocol: StudyProtocol) -> list[str]:
    """The rule fields of `protocol` (edited, unsaved) that differ from the latest version (else from
    the saved protocol); all of them for a protocol never saved."""
    latest = StudyProtocolVersion.objects.filter(study_id=protocol.study_id).order_by("-effective_from")
    current: ProtocolRules | None = latest.first()
    if current is None and protocol.pk:
        current = StudyProtocol.objects.filter(pk=protocol.pk).first()
    if current is None:
        return list(ProtocolRules.RULE_FIELDS)
    return [name for name in ProtocolRules.RULE_FIELDS if getattr(protocol, name) != getattr(current, name)]


def study_today(protocol: StudyProtocol) -> dt.date:
    return now().astimezone(ZoneInfo(protocol.study.default_timezone)).date()


def protocol_check_effective_from(*, protocol: StudyProtocol, effective_from: dt.date) -> None:
    """A new version starts after the last one started (versions are never reordered)."""
    last = StudyProtocolVersion.objects.filter(study_id=protocol.study_id).aggregate(Max("effective_from"))
    latest = last["effective_from__max"]
    if latest is not None and effective_from <= latest:
        raise ValidationError(
            {"effective_from": f"Must be after {latest}, when the current version took effect."}
        )


@dataclass(frozen=True)
class ProtocolImpact:
    effective_from: dt.date
    changed: list[str]
    participants: int
    days: int
    expected_before: int
    expected_after: int


def protocol_change_impact(*, protocol: StudyProtocol, effective_from: dt.date) -> ProtocolImpact:
    """What saving `protocol` (edited, unsaved) from `effective_from` would change, through each
    participant's today: the participants and days whose expected readings change, and the expected
    readings of those days before and after. Nothing is written."""
    stored: dict[int, dict[dt.date, int]] = defaultdict(dict)
    for participant_id, day, expected in DailyAdherence.objects.filter(
        study_id=protocol.study_id, day__gte=effective_from
    ).values_list("participant_id", "day", "expected"):
        stored[participant_id][day] = expected
    new = history_of(protocol, [])
    participants = days = before = after = 0
    for participant in Participant.objects.filter(study_id=protocol.study_id).select_related("study"):
        today = now().astimezone(ZoneInfo(participant.timezone)).date()
        mine = stored.get(participant.pk, {})
        period = participant_period(participant, protocol, participant.study)
        wanted = {d for d in protocol_days(participant, new, today) if d >= effective_from} | set(mine)
        changed = [d for d in wanted if mine.get(d, 0) != day_expected(protocol, period, d)]
        if changed:
            participants += 1
            days += len(changed)
            before += sum(mine.get(d, 0) for d in changed)
            after += sum(day_expected(protocol, period, d) for d in changed)
    return ProtocolImpact(effective_from, rules_changed(protocol), participants, days, before, after)


def _add_version(*, actor, protocol: StudyProtocol, effective_from: dt.date) -> StudyProtocolVersion:
    versions = StudyProtocolVersion.objects.filter(study_id=protocol.study_id)
    number = (versions.aggregate(Max("number"))["number__max"] or 0) + 1
    version = StudyProtocolVersion(
        study_id=protocol.study_id,
        number=number,
        effective_from=effective_from if number > 1 else StudyProtocolVersion.BEGINNING,
        created_by=actor,
        **protocol.rules(),
    )
    version.full_clean()
    version.save()
    return version


@transaction.atomic
def protocol_save(
    *, actor, protocol: StudyProtocol, changed: list[str] | None = None, effective_from: dt.date | None = None
) -> StudyProtocol:
    """Save a study's protocol (audited). A change of its rules adds a version effective from
    `effective_from` (default: the study's today) — the first recorded version applies from the
    beginning — and the study's adherence is recomputed after commit, each day under its version.
    A change of guideline sets the home threshold to the guideline's (categories follow at once:
    pages and exports classify with the protocol's guideline)."""
    stored = StudyProtocol.objects.filter(pk=protocol.pk).values_list("guideline", flat=True).first()
    if protocol.guideline != stored:  # a new guideline brings its home threshold
        profile = protocol.profile
        protocol.home_systolic_threshold = profile.home_systolic
        protocol.home_diastolic_threshold = profile.home_diastolic
    protocol.full_clean()
    Study.objects.select_for_update().filter(pk=protocol.study_id).first()  # one version at a time
    rules = rules_changed(protocol)
    detail: dict = {"changed": sorted(changed or [])}
    if protocol.guideline != stored:
        detail["guideline"] = protocol.guideline
    if rules:
        effective_from = effective_from or study_today(protocol)
        if not StudyProtocolVersion.objects.filter(study_id=protocol.study_id).exists() and protocol.pk:
            # The rules in force until now become version 1, so the days before keep them.
            previous = StudyProtocol.objects.get(pk=protocol.pk)
            _add_version(actor=None, protocol=previous, effective_from=StudyProtocolVersion.BEGINNING)
        protocol_check_effective_from(protocol=protocol, effective_from=effective_from)
        version = _add_version(actor=actor, protocol=protocol, effective_from=effective_from)
        detail |= {"version": version.number, "effective_from": str(version.effective_from)}
    protocol.save()
    audit_record(
        actor=actor, action="protocol.saved", study=protocol.study, target=protocol.study.slug, detail=detail
    )
    if rules:
        from measurements.tasks import adherence_rebuild_study

        study_id = protocol.study_id
        transaction.on_commit(lambda: adherence_rebuild_study.delay(study_id))
    return protocol
