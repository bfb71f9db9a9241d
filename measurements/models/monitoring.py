"""Coordinator monitoring: the study protocol, the daily adherence rollup and alerts."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from cohorts.models import Participant, Study
from measurements.guidelines import Guideline, GuidelineChoice
from measurements.guidelines import guideline as guideline_profile


# Window defaults as functions: Django's fields.W161 check warns about a fixed time default whenever
# it runs within 10 s of that time of day (`check --deploy` at 04:00:05 would report it).
def default_morning_start() -> dt.time:
    return dt.time(4, 0)


def default_morning_end() -> dt.time:
    return dt.time(12, 0)


def default_evening_start() -> dt.time:
    return dt.time(17, 0)


def default_evening_end() -> dt.time:
    return dt.time(0, 0)


class ProtocolRules(models.Model):
    """The rules that decide what counts toward adherence (what a day expects, the windows, the
    duration). A change of these is a new `StudyProtocolVersion`: past days keep the version they ran
    under. Windows are participant-local wall-clock times, ``[start, end)``; an end of 00:00 means
    midnight."""

    RULE_FIELDS = (
        "kind",
        "readings_per_window",
        "readings_per_day",
        "morning_start",
        "morning_end",
        "evening_start",
        "evening_end",
        "duration_days",
        "discard_first_day",
        "count_by",
    )

    class Kind(models.TextChoices):
        HBPM = "hbpm", _("Home BP monitoring (readings per morning and evening window)")
        DAILY = "daily", _("N readings per day")

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.HBPM)
    readings_per_window = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    readings_per_day = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text=_("For 'N readings per day' protocols."),
    )
    morning_start = models.TimeField(default=default_morning_start)
    morning_end = models.TimeField(default=default_morning_end)
    evening_start = models.TimeField(default=default_evening_start)
    evening_end = models.TimeField(default=default_evening_end, help_text=_("00:00 means midnight."))
    duration_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        default=7,
        validators=[MinValueValidator(1)],
        help_text=_("Days from the participant's start. Empty: until the participant's or study's end."),
    )
    discard_first_day = models.BooleanField(
        default=True, help_text=_("Readings of day 1 are left out of the protocol average.")
    )

    class CountBy(models.TextChoices):
        READINGS = "readings", _("Readings (each reading counts)")
        SESSIONS = "sessions", _("Sessions (readings minutes apart, e.g. a triple-mode burst, count once)")

    count_by = models.CharField(
        max_length=8,
        choices=CountBy.choices,
        default=CountBy.READINGS,
        help_text=_(
            "What adherence counts. A session: the readings of a day less than the session gap apart "
            "(PORTAL_READING_SESSION_GAP_MINUTES, 10 by default), counted in the window of its first."
        ),
    )

    class Meta:
        abstract = True

    def clean(self) -> None:
        for name, start, end in (
            ("morning_end", self.morning_start, self.morning_end),
            ("evening_end", self.evening_start, self.evening_end),
        ):
            if end != dt.time(0, 0) and start is not None and end is not None and end <= start:
                raise ValidationError({name: _("A window must end after it starts.")})

    @property
    def expected_per_day(self) -> int:
        if self.kind == self.Kind.HBPM:
            return 2 * self.readings_per_window
        return self.readings_per_day

    def rules(self) -> dict:
        return {name: getattr(self, name) for name in self.RULE_FIELDS}


class StudyProtocol(ProtocolRules):
    """What a study asks of its participants now, and when the portal raises alerts. Its rules are
    also kept as versions (`StudyProtocolVersion`); the rollup of a day uses the version in force."""

    TENANT_PATHS = ("study", None)

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="protocol")
    min_valid_readings = models.PositiveSmallIntegerField(
        default=12, help_text=_("Readings needed (after the discard) for a valid protocol average.")
    )
    adherence_target_percent = models.PositiveSmallIntegerField(
        default=80, validators=[MaxValueValidator(100)]
    )
    guideline = models.CharField(
        max_length=16,
        choices=GuidelineChoice.choices,
        default=GuidelineChoice.ACC_AHA_2017,
        help_text=_(
            "The blood-pressure guideline whose categories, labels and home threshold the study's pages "
            "and exports use. Changing it sets the home threshold to the guideline's."
        ),
    )
    home_systolic_threshold = models.PositiveSmallIntegerField(default=135)
    home_diastolic_threshold = models.PositiveSmallIntegerField(default=85)
    crisis_systolic = models.PositiveSmallIntegerField(
        default=180, help_text=_("Alert when a reading is above this systolic value (mmHg)…")
    )
    crisis_diastolic = models.PositiveSmallIntegerField(
        default=120, help_text=_("…or above this diastolic value (mmHg).")
    )
    no_data_days = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1)])
    cuff_not_synced_days = models.PositiveSmallIntegerField(default=7, validators=[MinValueValidator(1)])
    low_battery_alerts = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "study protocol"

    def __str__(self) -> str:
        return f"Protocol of {self.study}"

    @property
    def profile(self) -> Guideline:
        return guideline_profile(self.guideline)


class StudyProtocolVersion(ProtocolRules):
    """The protocol's rules from `effective_from` (a participant-local day) until the next version.
    Append-only: an edit of the rules adds a version; the first one applies from the beginning."""

    TENANT_PATHS = ("study", None)
    #: `effective_from` of a study's first version: it applies to every day before the next one.
    BEGINNING = dt.date(1, 1, 1)

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="protocol_versions")
    number = models.PositiveSmallIntegerField()
    effective_from = models.DateField(help_text=_("First participant-local day the version applies to."))
    created_at = models.DateTimeField(default=now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["study", "effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["study", "number"], name="protocol_version_number"),
            models.UniqueConstraint(fields=["study", "effective_from"], name="protocol_version_from"),
        ]

    def __str__(self) -> str:
        return f"v{self.number}"

    @property
    def effective_label(self) -> str:
        return "from the start" if self.effective_from == self.BEGINNING else f"from {self.effective_from}"


class DailyAdherence(models.Model):
    """One participant-local day: readings per window, what counts toward the protocol, and sums
    for the protocol average. Maintained by `measurements.monitoring.adherence` after every upsert;
    a nightly task adds zero rows so missed days count."""

    TENANT_PATHS = ("study", "participant__site")

    # No single-column indexes: (participant, day) and (study, day) serve those lookups, and every
    # ingested page writes a few hundred of these rows.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+", db_index=False)
    participant = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="daily_adherence", db_index=False
    )
    day = models.DateField(help_text=_("Participant-local calendar day."))
    protocol_day = models.PositiveSmallIntegerField(null=True, blank=True, help_text=_("1 = first day."))
    morning = models.PositiveSmallIntegerField(default=0)
    evening = models.PositiveSmallIntegerField(default=0)
    other = models.PositiveSmallIntegerField(default=0)
    counted = models.PositiveSmallIntegerField(default=0, help_text=_("Counted toward the protocol."))
    expected = models.PositiveSmallIntegerField(default=0)
    # The protocol average: window readings of protocol days (day 1 discarded when configured).
    avg_count = models.PositiveSmallIntegerField(default=0)
    systolic_sum = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    diastolic_sum = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    # ACC/AHA category counts of the day's valid readings.
    normal = models.PositiveSmallIntegerField(default=0)
    elevated = models.PositiveSmallIntegerField(default=0)
    stage_1 = models.PositiveSmallIntegerField(default=0)
    stage_2 = models.PositiveSmallIntegerField(default=0)
    crisis = models.PositiveSmallIntegerField(default=0)
    # The protocol version in force that day (None: the study had no recorded version).
    protocol_version = models.ForeignKey(
        StudyProtocolVersion, on_delete=models.RESTRICT, null=True, blank=True, related_name="+",
        db_index=False,
    )  # fmt: skip
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["participant", "day"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "day"], name="daily_adherence_unique_day"),
            models.CheckConstraint(
                condition=models.Q(counted__lte=models.F("expected")), name="daily_adherence_capped"
            ),
        ]
        indexes = [models.Index(fields=["study", "day"], name="daily_adherence_study_day")]

    def __str__(self) -> str:
        return f"{self.participant_id} {self.day}: {self.counted}/{self.expected}"


class Alert(models.Model):
    """One episode of a condition needing a coordinator. At most one OPEN alert per participant
    and kind (a partial unique index), so a condition seen at every sync raises one alert."""

    TENANT_PATHS = ("study", "participant__site")

    class Kind(models.TextChoices):
        CRISIS = "crisis", _("Hypertensive crisis reading")
        NO_DATA = "no_data", _("No reading for several days")
        LINK_BROKEN = "link_broken", _("Withings link broken")
        SUBSCRIPTION_LOST = "subscription_lost", _("Withings notifications lost")
        LOW_BATTERY = "low_battery", _("Cuff battery low")
        CUFF_NOT_SYNCED = "cuff_not_synced", _("Cuff not synced")
        LOW_BP = "low_bp", _("Low blood pressure reading")

    #: Events: the episode ends when a coordinator acknowledges it. The others are states: they
    #: end by themselves when the condition clears (acknowledging records that someone saw it).
    EVENT_KINDS = frozenset({Kind.CRISIS, Kind.LOW_BP})

    class Outcome(models.TextChoices):
        CONTACTED = "contacted", _("Contacted the participant")
        ADVISED_CARE = "advised_care", _("Advised to seek care")
        NO_ACTION = "no_action", _("No action (reason in the note)")

    class Resolution(models.TextChoices):
        CLEARED = "cleared", _("Condition cleared")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="alerts")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    episode_key = models.CharField(max_length=64, help_text=_("What started the episode."))
    detail = models.JSONField(default=dict, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    opened_at = models.DateTimeField(default=now, db_index=True)
    last_seen_at = models.DateTimeField(default=now)
    notified_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    # Clinical safety (severe/low readings): the plan version it runs under, the reading, the first
    # (coordinators') deadline, and who holds it now — the step of the plan's chain and its deadline.
    safety_plan = models.ForeignKey(
        "measurements.SafetyPlan", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reading_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the alerting reading was taken.")
    )
    ack_deadline_at = models.DateTimeField(null=True, blank=True, help_text=_("The coordinators' deadline."))
    deadline_at = models.DateTimeField(null=True, blank=True, help_text=_("The current holder's deadline."))
    step = models.PositiveSmallIntegerField(
        default=0, help_text=_("The step of the escalation chain holding it.")
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "kind"],
                condition=models.Q(resolved_at__isnull=True),
                name="alert_one_open_episode",
            ),
        ]
        indexes = [
            models.Index(
                fields=["participant"], condition=models.Q(resolved_at__isnull=True), name="alert_open"
            ),
            models.Index(fields=["study", "-opened_at"], name="alert_study_opened"),
            models.Index(
                fields=["deadline_at"],
                condition=models.Q(
                    resolved_at__isnull=True, acknowledged_at__isnull=True, deadline_at__isnull=False
                ),
                name="alert_escalation_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} — {self.participant_id}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def summary(self) -> str:
        text = str(self.detail.get("value") or self.detail.get("since") or "")
        return f"{text} (seen {self.occurrences}×)" if self.occurrences > 1 else text


class AlertNote(models.Model):
    """A coordinator's note on an alert, after its acknowledgement (whose own note is `Alert.note`):
    the alert page shows them in order, as a thread. Written by `alert_note_add` only (audited)."""

    TENANT_PATHS = ("alert__study", "alert__participant__site")

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notes", db_index=False)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["alert", "created_at"], name="alert_note_thread")]
        constraints = [
            models.CheckConstraint(condition=~models.Q(text=""), name="alert_note_not_empty"),
        ]

    def __str__(self) -> str:
        return f"Note on alert {self.alert_id} by {self.author_id}"


class MonitoredParticipant(Participant):
    """Participant as the coordinators' monitoring admin shows it (adherence, alerts, charts)."""

    class Meta:
        proxy = True
        verbose_name = "monitored participant"
        verbose_name_plural = "monitored participants"
