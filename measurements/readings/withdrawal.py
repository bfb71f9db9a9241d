"""What a withdrawal does to the participant's readings (a `cohorts.hooks` withdrawal handler)."""

from __future__ import annotations

from django.db import transaction
from django.utils.timezone import now

from cohorts.enrollment import keeps_data_on_withdrawal
from cohorts.models import Participant
from cohorts.services import audit_record
from measurements.models import Alert, BloodPressureReading, DailyAdherence, Device


def readings_purge_on_withdrawal(participant_id: int) -> int:
    """Withdrawal hook: delete the participant's readings and devices if their consent says so."""
    participant = Participant.objects.get(pk=participant_id)
    if keeps_data_on_withdrawal(participant):
        audit_record(action="readings.kept_on_withdrawal", participant=participant, target=participant.code)
        return 0
    with transaction.atomic():
        deleted, _ = BloodPressureReading.objects.filter(participant_id=participant_id).delete()
        Device.objects.filter(participant_id=participant_id).delete()
        # Derived data goes too: the daily rollup holds BP sums, alert details hold values.
        DailyAdherence.objects.filter(participant_id=participant_id).delete()
        Alert.objects.filter(participant_id=participant_id, resolved_at__isnull=True).update(
            resolved_at=now(), resolution=Alert.Resolution.CLEARED
        )
        Alert.objects.filter(participant_id=participant_id).update(detail={})
        audit_record(
            action="readings.purged_on_withdrawal",
            participant=participant,
            target=participant.code,
            detail={"readings_deleted": deleted},
        )
    return deleted
