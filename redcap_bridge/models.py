"""A study's REDCap project (where readings are pushed), what was pushed, and the push log."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from cohorts.models import Participant, Study
from core.fields import EncryptedTextField

# REDCap field, instrument and event names: lower-case letters, digits and underscores.
redcap_name = RegexValidator(r"^[a-z][a-z0-9_]{0,99}$", _("A REDCap name: lower-case letters, digits, '_'."))


class RedcapProject(models.Model):
    """Where one study's readings go in REDCap, and how (one per study)."""

    TENANT_PATHS = ("study", None)

    class Mode(models.TextChoices):
        READINGS = "readings", _("Every reading as an instance of a repeating instrument")
        SUMMARY = "summary", _("One summary per protocol period (repeating instrument, instance = period)")

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="redcap_project")
    api_url = models.URLField(
        "API URL", max_length=300, help_text=_("The REDCap server's API address, ending in /api/.")
    )
    # The project's API token: encrypted at rest, never shown back (the form asks for it again).
    token = EncryptedTextField()
    record_prefix = models.CharField(
        max_length=40,
        blank=True,
        validators=[RegexValidator(r"^[A-Za-z0-9_-]*$", _("Letters, digits, '_' and '-' only."))],
        help_text=_("Record id = this prefix + the participant's code (e.g. 'BP-' gives 'BP-K7Q2')."),
    )
    event = models.CharField(
        max_length=100,
        blank=True,
        validators=[redcap_name],
        help_text=_("Longitudinal projects: the unique event name the data go into. Empty: classic project."),
    )
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.READINGS)
    instrument = models.CharField(
        max_length=100, validators=[redcap_name], help_text=_("The repeating instrument's name (form_name).")
    )
    period_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(366)],
        help_text=_("Summary mode: days per period, counted from the participant's start."),
    )
    # {source name: REDCap field name}, checked against the project's metadata when saved.
    field_map = models.JSONField(default=dict, blank=True)
    # {REDCap field name: validation type} as REDCap reported when the map was checked.
    field_types = models.JSONField(default=dict, blank=True, editable=False)
    record_id_field = models.CharField(max_length=100, blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    auto_push = models.BooleanField(default=False, help_text=_("Push on a schedule (see push interval)."))
    push_every_hours = models.PositiveSmallIntegerField(
        default=24, validators=[MinValueValidator(1), MaxValueValidator(24 * 7)]
    )
    batch_size = models.PositiveIntegerField(
        default=500,
        validators=[MinValueValidator(1), MaxValueValidator(5000)],
        help_text=_("Rows per import call."),
    )
    # A lease: set while a push runs, so two never overlap (a crashed push's lease expires).
    push_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_push_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        verbose_name = "REDCap project"

    def __str__(self) -> str:
        return f"REDCap project of {self.study.slug}"


class RedcapPushedRow(models.Model):
    """One repeat instance the portal owns in REDCap: its number is given once and kept for good, so
    a re-push writes the same instance; `sent_hash` lets a push skip what REDCap already has."""

    TENANT_PATHS = ("project__study", None)

    project = models.ForeignKey(RedcapProject, on_delete=models.CASCADE, related_name="rows")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    # "reading:<id>" or "period:<n>" — what the instance holds.
    source_key = models.CharField(max_length=64)
    record = models.CharField(max_length=100)
    instrument = models.CharField(max_length=100)
    instance = models.PositiveIntegerField()
    sent_hash = models.CharField(max_length=64, blank=True)
    pushed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "instrument", "source_key"], name="redcap_row_source"),
            models.UniqueConstraint(
                fields=["project", "record", "instrument", "instance"], name="redcap_row_instance"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record} {self.instrument} #{self.instance}"


class RedcapPushLog(models.Model):
    """One push (or dry run): what it sent, what REDCap answered (its own error text), how long."""

    TENANT_PATHS = ("study", None)

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        OK = "ok", _("Succeeded")
        PARTIAL = "partial", _("Partly pushed (see error)")
        FAILED = "failed", _("Failed")
        DRY_RUN = "dry_run", _("Dry run (nothing sent)")
        SKIPPED = "skipped", _("Skipped (another push was running)")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(RedcapProject, on_delete=models.SET_NULL, null=True, related_name="logs")
    trigger = models.CharField(max_length=16, help_text=_("command, schedule or admin"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    since = models.DateField(null=True, blank=True)
    rows_considered = models.PositiveIntegerField(default=0)
    rows_unchanged = models.PositiveIntegerField(default=0)
    rows_sent = models.PositiveIntegerField(default=0)
    records_reported = models.PositiveIntegerField(
        default=0, help_text=_("REDCap's own count of records, summed over the batches.")
    )
    batches = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text=_("REDCap's own error text (never the token)."))
    started_at = models.DateTimeField(default=now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "REDCap push"
        verbose_name_plural = "REDCap pushes"
        indexes = [models.Index(fields=["study", "-started_at"])]

    def __str__(self) -> str:
        return f"REDCap push {self.started_at:%Y-%m-%d %H:%M} ({self.get_status_display()})"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 2)
