"""Blood-pressure readings and the cuffs that took them."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from cohorts.models import Participant


class BloodPressureReading(models.Model):
    TENANT_PATHS = ("participant__study", "participant__site")

    class Source(models.TextChoices):
        API = "api", _("Withings API")
        CSV = "csv", _("Withings CSV export")
        MANUAL = "manual", _("Entered by hand")

    # No index of its own: the (participant, grpid) and (participant, measured_at) indexes serve every
    # lookup by participant, and each extra index is written for every ingested reading (bench/ingest.py).
    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="readings", db_index=False
    )
    measured_at = models.DateTimeField(help_text=_("When measured (UTC)."))
    source_timezone = models.CharField(
        max_length=64, blank=True, help_text=_("The time zone Withings reported (or the CSV was read in).")
    )
    # Exact values: value × 10^unit as received, never rounded through floats.
    systolic = models.DecimalField(max_digits=6, decimal_places=2)
    diastolic = models.DecimalField(max_digits=6, decimal_places=2)
    pulse = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    # Unknown unless a source says so: BPM Connect never reports it; never write False for unknown.
    irregular_heartbeat = models.BooleanField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices)
    grpid = models.BigIntegerField(null=True, blank=True, help_text=_("Withings measure group id."))
    attrib = models.IntegerField(null=True, blank=True, help_text=_("Withings attrib, as received."))
    device_id = models.CharField(max_length=64, blank=True)
    device_model = models.CharField(max_length=64, blank=True)
    device_model_id = models.IntegerField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True, help_text=_("Measures as received (value, unit)."))
    upstream_created = models.DateTimeField(null=True, blank=True)
    upstream_modified = models.DateTimeField(null=True, blank=True)
    ingested_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now, editable=False)
    # Flags
    ambiguous_user = models.BooleanField(default=False, help_text=_("attrib 1: maybe another person."))
    manual_entry = models.BooleanField(default=False)
    edited_upstream = models.BooleanField(default=False)
    deleted_upstream = models.BooleanField(default=False)
    local_time_ambiguous = models.BooleanField(
        default=False, help_text=_("CSV local time fell in a DST gap or repeat.")
    )
    duplicate_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    # Plausibility (measurements.quality): one bit per rule broken, 0 = plausible. Set by every
    # ingestion path; `readings_quality_backfill` recomputes stored rows.
    quality_flags = models.SmallIntegerField(
        default=0, db_default=0, help_text=_("Plausibility rules broken (bitmask); 0 = plausible.")
    )

    class Meta:
        ordering = ["-measured_at"]
        constraints = [
            # NULL grpids (CSV, manual) never conflict: PostgreSQL treats NULLs as distinct.
            models.UniqueConstraint(fields=["participant", "grpid"], name="reading_unique_grpid"),
        ]
        indexes = [
            models.Index(fields=["participant", "-measured_at"], name="reading_participant_time"),
            # The API's keyset pages walk readings in (measured_at, id) order (api/selectors.py).
            models.Index(fields=["measured_at", "id"], name="reading_time_id"),
            # Only CSV copies of API readings point somewhere: index those, not millions of NULLs.
            models.Index(
                fields=["duplicate_of"],
                condition=models.Q(duplicate_of__isnull=False),
                name="reading_duplicate_of",
            ),
            # Implausible readings are few: the study page counts them from this small index.
            models.Index(
                fields=["participant"],
                condition=~models.Q(quality_flags=0),
                name="reading_implausible",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.systolic:.0f}/{self.diastolic:.0f} at {self.measured_at:%Y-%m-%d %H:%M}Z"

    #: Each flag and the words staff read for it.
    FLAG_LABELS = {
        "ambiguous_user": "maybe another person",
        "manual_entry": "entered by hand",
        "edited_upstream": "edited in Withings",
        "deleted_upstream": "deleted in Withings",
        "local_time_ambiguous": "local time unclear (clock change)",
    }

    @property
    def flags(self) -> list[str]:
        return [name for name in self.FLAG_LABELS if getattr(self, name)]

    @property
    def flag_labels(self) -> list[str]:
        return [self.FLAG_LABELS[name] for name in self.flags]

    @property
    def plausible(self) -> bool:
        return self.quality_flags == 0

    @property
    def quality_labels(self) -> list[str]:
        from measurements.quality import labels

        return labels(self.quality_flags)


class Device(models.Model):
    """A participant's cuff as Withings describes it (getdevice)."""

    TENANT_PATHS = ("participant__study", "participant__site")

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="devices")
    device_id = models.CharField(max_length=64)
    device_type = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=64, blank=True)
    model_id = models.IntegerField(null=True, blank=True)
    battery = models.CharField(max_length=16, blank=True)
    # When getdevice first reported the battery "low" in the current episode (None once it is not):
    # one "charge your monitor" message per episode (messaging's rules key on it).
    battery_low_since = models.DateTimeField(null=True, blank=True, editable=False)
    timezone = models.CharField(max_length=64, blank=True)
    first_session_at = models.DateTimeField(null=True, blank=True)
    last_session_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["participant", "device_id"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "device_id"], name="device_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.model or 'device'} {self.device_id[:8]}"
