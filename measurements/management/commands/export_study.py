"""export_study SLUG --format csv|xlsx|json|fhir --output PATH [--since DATE] [--until DATE] ..."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from cohorts.models import Study
from core.cli import iso_date
from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_download_record, export_job_create, export_job_run
from measurements.models import ExportJob


class Command(BaseCommand):
    help = "Write a study's export package (data file, data dictionary, manifest; zipped) to PATH. Audited."

    def add_arguments(self, parser):
        parser.add_argument("study", help="study slug")
        parser.add_argument("--format", required=True, choices=ExportJob.Format.values)
        parser.add_argument("--output", required=True, type=Path, help="where to write the .zip")
        parser.add_argument(
            "--since",
            type=iso_date,
            help="first day, YYYY-MM-DD, a whole UTC day (as in measured_at), inclusive",
        )
        parser.add_argument(
            "--until",
            type=iso_date,
            help="last day, YYYY-MM-DD, a whole UTC day (as in measured_at), inclusive",
        )
        parser.add_argument("--site", action="append", default=[], help="site code (repeatable)")
        parser.add_argument("--status", action="append", default=[], help="participant status (repeatable)")
        parser.add_argument(
            "--deidentified",
            action="store_true",
            help="shift dates per participant, hash device and group ids, drop free text",
        )

    def handle(
        self,
        *args,
        study,
        format,
        output,
        since=None,
        until=None,
        site=(),
        status=(),
        deidentified=False,
        **options,
    ):
        study_obj = Study.objects.filter(slug=study).first()
        if study_obj is None:
            raise CommandError(f"No study {study!r}.")
        if output.is_dir():
            raise CommandError(f"{output} is a directory: give a file name ending in .zip.")
        filters = ExportFilters(since=since, until=until, sites=tuple(site), statuses=tuple(status))
        try:
            job = export_job_create(
                actor=None,
                study=study_obj,
                fmt=format,
                filters=filters,
                run=False,
                via="command",
                deidentified=deidentified,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        job = export_job_run(job_id=job.pk)
        source = export_download_record(actor=None, job=job, via="command")
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, output)
        self.stdout.write(f"dates: {filters.dates_text()}")
        self.stdout.write(f"{job.rows_done} readings → {output} (sha256 {job.sha256})")
