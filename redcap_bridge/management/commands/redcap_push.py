"""redcap_push SLUG [--dry-run] [--since DATE] [--resend]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cohorts.models import Study
from core.cli import iso_date
from redcap_bridge.models import RedcapProject, RedcapPushLog
from redcap_bridge.services import redcap_push


class Command(BaseCommand):
    help = "Push a study's readings (or period summaries) to its REDCap project. Idempotent; audited."

    def add_arguments(self, parser):
        parser.add_argument("study", help="study slug")
        parser.add_argument("--dry-run", action="store_true", help="say what would be sent, send nothing")
        parser.add_argument(
            "--since", type=iso_date, help="only readings measured from this UTC day (YYYY-MM-DD) on"
        )
        parser.add_argument(
            "--resend", action="store_true", help="send rows REDCap already has too (changes nothing there)"
        )

    def handle(self, *args, study, dry_run=False, since=None, resend=False, **options):
        study_obj = Study.objects.filter(slug=study).first()
        if study_obj is None:
            raise CommandError(f"No study {study!r}.")
        project = RedcapProject.objects.filter(study=study_obj).first()
        if project is None:
            raise CommandError(
                f"The study {study!r} has no REDCap project: add one in the admin (REDCap projects)."
            )
        log = redcap_push(
            project_id=project.pk, trigger="command", dry_run=dry_run, since=since, resend=resend
        )
        verb = "would send" if log.status == RedcapPushLog.Status.DRY_RUN else "sent"
        self.stdout.write(
            f"{log.get_status_display()}: {verb} {log.rows_sent} rows in {log.batches} batches "
            f"({log.rows_unchanged} unchanged, REDCap counted {log.records_reported} records, "
            f"{log.retries} retries, {log.duration_seconds} s)."
        )
        if log.status in (
            RedcapPushLog.Status.FAILED,
            RedcapPushLog.Status.PARTIAL,
            RedcapPushLog.Status.SKIPPED,
        ):
            raise CommandError(log.error)
