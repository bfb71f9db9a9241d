"""readings_quality_backfill [--study SLUG] [--batch N]: recompute the plausibility flags of stored
readings (after upgrading, or after changing PORTAL_PLAUSIBLE_PULSE_RANGE). Idempotent."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cohorts.models import Study
from measurements.readings.quality_backfill import BATCH, readings_quality_recompute


class Command(BaseCommand):
    help = (
        "Recompute the plausibility flags of stored readings in small batches (one short transaction "
        "each) and refresh the rollup of the days that changed. Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--study", help="only this study (slug)")
        parser.add_argument("--batch", type=int, default=BATCH, help=f"ids per batch (default {BATCH})")

    def handle(self, *args, study=None, batch=BATCH, **options):
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        study_id = None
        if study:
            study_id = Study.objects.filter(slug=study).values_list("pk", flat=True).first()
            if study_id is None:
                raise CommandError(f"No study with slug {study!r}.")
        changed = readings_quality_recompute(study_id=study_id, batch=batch)
        self.stdout.write(f"{changed} reading(s) had their plausibility flags changed.")
