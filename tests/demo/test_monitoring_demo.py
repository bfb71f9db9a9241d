"""The demo shows monitoring at once: protocols, readings, adherence and alerts; idempotent."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from measurements.models import Alert, BloodPressureReading, DailyAdherence, StudyProtocol

pytestmark = pytest.mark.django_db


def test_seed_demo_adds_monitoring_data_once(settings):
    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    assert set(StudyProtocol.objects.values_list("study__slug", flat=True)) == {"demo", "pilot"}
    readings = BloodPressureReading.objects.count()
    assert readings > 500
    assert DailyAdherence.objects.filter(counted__gt=0).exists()
    assert DailyAdherence.objects.filter(expected__gt=0, counted=0).exists()  # missed days count
    kinds = set(Alert.objects.values_list("kind", flat=True))
    assert {Alert.Kind.CRISIS, Alert.Kind.NO_DATA, Alert.Kind.LINK_BROKEN, Alert.Kind.LOW_BATTERY} <= kinds
    alerts = Alert.objects.count()

    call_command("seed_demo", verbosity=0)
    assert BloodPressureReading.objects.count() == readings
    assert Alert.objects.count() == alerts
