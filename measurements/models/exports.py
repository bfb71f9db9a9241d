"""Export jobs (one per requested package) and the admin entry point for CSV imports."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from cohorts.models import Participant, Site, Study
from core.fields import EncryptedTextField


class ExportJob(models.Model):
    """A requested export package of one study: filters, state, progress and the stored file.

    `site` is set when the requester was limited to one site: the job then holds that site's rows
    only, and only staff of that site (or of the whole study) may see and download it.
    """

    TENANT_PATHS = ("study", "site")

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "XLSX (Excel)"
        JSON = "json", "JSON"
        FHIR = "fhir", "FHIR R4 (NDJSON)"

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Running")
        DONE = "done", _("Ready")
        FAILED = "failed", _("Failed")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="export_jobs")
    site = models.ForeignKey(
        Site,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Set when the requester is limited to one site."),
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    format = models.CharField(max_length=8, choices=Format.choices)
    filters = models.JSONField(default=dict, blank=True)
    pseudonymised = models.BooleanField(default=True)
    deidentified = models.BooleanField(
        default=False,
        help_text=_(
            "Dates shifted per participant, device ids and Withings group ids hashed, free text dropped."
        ),
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    rows_total = models.PositiveBigIntegerField(null=True, blank=True)
    rows_done = models.PositiveBigIntegerField(default=0)
    file = models.CharField(max_length=255, blank=True, help_text=_("Path below MEDIA_ROOT."))
    file_size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    #: when its task was (last) queued: the scanner re-queues a job whose task died, once per period.
    queued_at = models.DateTimeField(default=now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["study", "-created_at"], name="exportjob_study_created")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(format__in=["csv", "xlsx", "json", "fhir"]), name="exportjob_format_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_format_display()} export of {self.study.slug} ({self.created_at:%Y-%m-%d %H:%M})"

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(99, int(self.rows_done * 100 / self.rows_total))

    @property
    def filename(self) -> str:
        return f"{self.study.slug}-{self.format}-{self.created_at:%Y%m%dT%H%M%SZ}.zip"


class StudyExportKey(models.Model):
    """The secret behind a study's de-identified exports: per-participant date offsets and the keyed
    hashes of device ids and group ids derive from it (HMAC-SHA256), so they are stable across the
    study's exports and nobody can recompute them without it. Encrypted at rest; never shown."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="+")
    secret = EncryptedTextField(editable=False)
    created_at = models.DateTimeField(default=now, editable=False)

    def __str__(self) -> str:
        return f"de-identification key of {self.study_id}"


class WithingsCsvImport(Participant):
    """Admin entry point: coordinators pick a participant and upload their Withings export."""

    class Meta:
        proxy = True
        verbose_name = _("Withings CSV import")
        verbose_name_plural = _("Withings CSV imports")
