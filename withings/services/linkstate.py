"""The participant's link state as the rest of the portal sees it: recorded on the participant
(cohorts), then the link alerts re-evaluated (measurements: raise once when broken, resolve when
linked again). Every withings code path that changes the link state goes through here."""

from __future__ import annotations

from cohorts.services import participant_record_link_status
from measurements.monitoring.alerts import alert_subscription_state, alerts_evaluate_link


def link_status_record(*, participant_id: int, link_status: str, reason: str = "") -> bool:
    changed = participant_record_link_status(
        participant_id=participant_id, link_status=link_status, reason=reason
    )
    alerts_evaluate_link(participant_id=participant_id)
    return changed


def subscription_state_report(*, participant_id: int, lost: bool, reason: str = "") -> None:
    alert_subscription_state(participant_id=participant_id, lost=lost, reason=reason)
