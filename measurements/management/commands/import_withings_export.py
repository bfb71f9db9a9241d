"""import_withings_export SLUG CODE PATH [--timezone TZ] [--dry-run]: a Withings export into a participant."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cohorts.models import Participant
from measurements.imports.archive import MAX_ARCHIVE_BYTES, ImportFileError
from measurements.imports.services import withings_csv_import, withings_csv_plan


class Command(BaseCommand):
    help = "Import a participant's Withings 'Download my data' export (.zip or bp.csv). All or nothing."

    def add_arguments(self, parser):
        parser.add_argument("study", help="study slug")
        parser.add_argument("code", help="participant code")
        parser.add_argument("path", type=Path, help="the .zip archive or its bp.csv")
        parser.add_argument("--timezone", help="IANA zone the Date column is in (default: the participant's)")
        parser.add_argument("--dry-run", action="store_true", help="check and report, import nothing")

    def handle(self, *args, study, code, path, timezone=None, dry_run=False, **options):
        participant = Participant.objects.select_related("study").filter(study__slug=study, code=code).first()
        if participant is None:
            raise CommandError(f"No participant {code!r} in study {study!r}.")
        try:
            if path.stat().st_size > MAX_ARCHIVE_BYTES:
                raise CommandError(f"{path} is too large.")
            data = path.open("rb")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        try:
            with data:
                if dry_run:
                    plan = withings_csv_plan(participant=participant, data=data, timezone=timezone)
                else:
                    plan = withings_csv_import(
                        actor=None,
                        participant=participant,
                        data=data,
                        timezone=timezone,
                        filename=path.name,
                        via="command",
                    )
        except ImportFileError as exc:
            raise CommandError("Nothing imported. " + " ".join(exc.messages)) from exc
        counts = plan.counts()
        verb = "would be added" if dry_run else "added"
        self.stdout.write(
            f"{participant.code} ({plan.timezone}): {counts['added']} {verb}, "
            f"{counts['already_present']} already present, "
            f"{counts['duplicate_in_file']} repeated in the file, "
            f"{counts['before_participation']} before the participation start, "
            f"{counts['pulse_only']} pulse-only skipped, {counts['empty']} empty, "
            f"{counts['flagged_local_time']} flagged (local time in a DST gap or repeat)."
        )
        for reading in plan.flagged:
            self.stdout.write(f"  line {reading.line}: {reading.local:%Y-%m-%d %H:%M:%S} is {reading.dst}")
