"""Writes of the monitoring configuration."""

from __future__ import annotations

from django.db import transaction

from cohorts.services import audit_record
from measurements.models import StudyProtocol


@transaction.atomic
def protocol_save(*, actor, protocol: StudyProtocol, changed: list[str] | None = None) -> StudyProtocol:
    """Save a study's protocol (audited) and recompute the study's adherence after commit."""
    protocol.full_clean()
    protocol.save()
    audit_record(
        actor=actor,
        action="protocol.saved",
        study=protocol.study,
        target=protocol.study.slug,
        detail={"changed": sorted(changed or [])},
    )
    from measurements.tasks import adherence_rebuild_study

    study_id = protocol.study_id
    transaction.on_commit(lambda: adherence_rebuild_study.delay(study_id))
    return protocol
