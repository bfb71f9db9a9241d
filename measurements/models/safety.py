"""Clinical safety: a study's safety plan (versioned: an IRB approves it) and the escalations of a
severe-reading alert that nobody acknowledged in time.

The plan is append-only: editing it adds a version, and each alert keeps the version it ran under.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from cohorts.models import Study

from .monitoring import Alert

DEFAULT_SEVERE_MESSAGE = (
    "Your last blood pressure reading was very high. Sit quietly for 5 minutes and measure again. "
    "If you have chest pain, shortness of breath, weakness, numbness or trouble speaking, call "
    "emergency services now. The study team has been told and will contact you."
)
DEFAULT_LOW_MESSAGE = (
    "Your last blood pressure reading was low. Sit or lie down, drink some water and measure again. "
    "If you feel faint, confused or have chest pain, call emergency services now."
)


def default_work_start() -> dt.time:  # functions, not constants: Django's fields.W161
    return dt.time(9, 0)


def default_work_end() -> dt.time:
    return dt.time(17, 0)


def default_escalation() -> list[dict]:
    return [{"to": "clinician", "after_minutes": 120}, {"to": "operators", "after_minutes": 240}]


#: The same messages in Spanish and French (a plan may change them; blank falls back to English).
DEFAULT_MESSAGES: dict[str, dict[str, str]] = {
    "es": {
        "severe": (
            "Su última medición de presión arterial fue muy alta. Siéntese tranquilamente durante 5 "
            "minutos y vuelva a medirse. Si tiene dolor en el pecho, falta de aire, debilidad, "
            "entumecimiento o dificultad para hablar, llame ahora a los servicios de emergencia. Se ha "
            "avisado al equipo del estudio, que se pondrá en contacto con usted."
        ),
        "low": (
            "Su última medición de presión arterial fue baja. Siéntese o acuéstese, beba un poco de "
            "agua y vuelva a medirse. Si siente que se va a desmayar, se siente confundido/a o tiene "
            "dolor en el pecho, llame ahora a los servicios de emergencia."
        ),
    },
    "fr": {
        "severe": (
            "Votre dernière mesure de tension artérielle était très élevée. Asseyez-vous au calme "
            "pendant 5 minutes, puis mesurez à nouveau. Si vous avez une douleur dans la poitrine, du "
            "mal à respirer, une faiblesse, un engourdissement ou du mal à parler, appelez immédiatement "
            "les services d'urgence. L'équipe de l'étude a été prévenue et vous contactera."
        ),
        "low": (
            "Votre dernière mesure de tension artérielle était basse. Asseyez-vous ou allongez-vous, "
            "buvez un peu d'eau et mesurez à nouveau. Si vous vous sentez sur le point de vous évanouir, "
            "confus(e), ou si vous avez une douleur dans la poitrine, appelez immédiatement les services "
            "d'urgence."
        ),
    },
}


class SafetyPlan(models.Model):
    """One version of a study's safety plan. The newest version is in force."""

    TENANT_PATHS = ("study", None)

    class Audience(models.TextChoices):
        COORDINATORS = "coordinators", _("Site coordinators")
        CLINICIAN = "clinician", _("The study's designated clinician or PI")
        OPERATORS = "operators", _("The portal's operators")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="safety_plans")
    version = models.PositiveIntegerField(editable=False)
    approval_reference = models.CharField(
        max_length=120,
        blank=True,
        help_text=_("The IRB/ethics approval of this text, e.g. 'IRB-2026-014 amend. 3'."),
    )
    severe_systolic = models.PositiveSmallIntegerField(
        default=180,
        validators=[MinValueValidator(120), MaxValueValidator(300)],
        help_text=_("Severe reading: systolic above this (mmHg)…"),
    )
    severe_diastolic = models.PositiveSmallIntegerField(
        default=120,
        validators=[MinValueValidator(70), MaxValueValidator(200)],
        help_text=_("…or diastolic above this (mmHg)."),
    )
    severe_message = models.TextField(default=DEFAULT_SEVERE_MESSAGE)
    low_systolic = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(50), MaxValueValidator(120)],
        help_text=_("Optional: a low reading is systolic below this (mmHg), e.g. 90. Empty: no low alerts."),
    )
    low_message = models.TextField(blank=True, default=DEFAULT_LOW_MESSAGE)
    severe_message_es = models.TextField(
        blank=True, default=DEFAULT_MESSAGES["es"]["severe"], help_text=_("Spanish; blank: English is sent.")
    )
    low_message_es = models.TextField(
        blank=True, default=DEFAULT_MESSAGES["es"]["low"], help_text=_("Spanish; blank: English is sent.")
    )
    severe_message_fr = models.TextField(
        blank=True, default=DEFAULT_MESSAGES["fr"]["severe"], help_text=_("French; blank: English is sent.")
    )
    low_message_fr = models.TextField(
        blank=True, default=DEFAULT_MESSAGES["fr"]["low"], help_text=_("French; blank: English is sent.")
    )
    ack_minutes = models.PositiveIntegerField(
        default=240,
        validators=[MinValueValidator(5), MaxValueValidator(7 * 24 * 60)],
        help_text=_("The site coordinators acknowledge within this many minutes."),
    )
    working_hours_only = models.BooleanField(
        default=False,
        help_text=_("Count deadlines only in working hours (Monday–Friday) in the study's time zone."),
    )
    work_start = models.TimeField(default=default_work_start)
    work_end = models.TimeField(default=default_work_end)
    escalation = models.JSONField(
        default=default_escalation,
        blank=True,
        help_text=_(
            'The chain after the coordinators, in order: [{"to": "clinician", "after_minutes": 120}, '
            '{"to": "operators", "after_minutes": 240}]. Each step has its own deadline, counted from '
            "the previous one."
        ),
    )
    confirm_window_minutes = models.PositiveSmallIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text=_("A re-measurement within this many minutes is shown beside the first reading."),
    )
    message_participant = models.BooleanField(
        default=True,
        help_text=_("Send the participant the message by their channel (SMS or e-mail) at once."),
    )
    safety_ignores_quiet_hours = models.BooleanField(
        default=True,
        help_text=_("Safety messages are sent in quiet hours too. Off: held until quiet hours end."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["study", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["study", "version"], name="safety_plan_version_unique"),
            models.CheckConstraint(
                condition=models.Q(work_end__gt=models.F("work_start")), name="safety_plan_work_hours"
            ),
        ]

    def __str__(self) -> str:
        return f"Safety plan v{self.version} of {self.study}"

    def clean(self) -> None:
        if self.work_start is not None and self.work_end is not None and self.work_end <= self.work_start:
            raise ValidationError({"work_end": _("Working hours must end after they start.")})
        if self.low_systolic is not None and not self.low_message.strip():
            raise ValidationError(
                {"low_message": _("Write the message a participant gets for a low reading.")}
            )
        if not self.severe_message.strip():
            raise ValidationError(
                {"severe_message": _("Write the message a participant gets for a severe reading.")}
            )
        self.escalation = validate_escalation(self.escalation)

    def participant_message(self, *, low: bool, language: str) -> str:
        """The message a participant gets for a low (or severe) reading, in their language when the
        plan has it, else in English."""
        kind = "low" if low else "severe"
        translated = getattr(self, f"{kind}_message_{language}", "") if language != "en" else ""
        return translated.strip() or getattr(self, f"{kind}_message")

    def steps(self) -> list[tuple[str, int]]:
        """The whole chain: (audience, minutes to acknowledge) per step, the coordinators first."""
        return [(self.Audience.COORDINATORS, self.ack_minutes)] + [
            (s["to"], int(s["after_minutes"])) for s in self.escalation or []
        ]

    def is_severe(self, systolic, diastolic) -> bool:
        return systolic > self.severe_systolic or diastolic > self.severe_diastolic

    def is_low(self, systolic) -> bool:
        return self.low_systolic is not None and systolic < self.low_systolic


def validate_escalation(value) -> list[dict]:
    """The escalation chain, checked: a list of {"to": audience, "after_minutes": 5…10080}."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError({"escalation": _("Write a list of steps.")})
    audiences = {SafetyPlan.Audience.CLINICIAN, SafetyPlan.Audience.OPERATORS}
    steps = []
    for i, step in enumerate(value, start=1):
        if not isinstance(step, dict) or set(step) != {"to", "after_minutes"}:
            raise ValidationError({"escalation": _(f'Step {i}: write {{"to": …, "after_minutes": …}}.')})
        if step["to"] not in audiences:
            raise ValidationError({"escalation": _(f"Step {i}: 'to' is 'clinician' or 'operators'.")})
        minutes = step["after_minutes"]
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not 5 <= minutes <= 7 * 24 * 60:
            raise ValidationError(
                {"escalation": _(f"Step {i}: 'after_minutes' is a whole number, 5 to 10080.")}
            )
        steps.append({"to": str(step["to"]), "after_minutes": minutes})
    return steps


class AlertEscalation(models.Model):
    """One step of an alert's chain that was notified: step 0 (the coordinators) when it opened, the
    next when the previous deadline passed unacknowledged. (alert, step) is unique: two workers
    escalating the same alert insert one row, so nobody is notified twice."""

    TENANT_PATHS = ("alert__study", "alert__participant__site")

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="escalations", db_index=False)
    step = models.PositiveSmallIntegerField()
    audience = models.CharField(max_length=16, choices=SafetyPlan.Audience.choices)
    deadline_at = models.DateTimeField(
        help_text=_("This step acknowledges by then, or the next is notified.")
    )
    notified_at = models.DateTimeField(default=now)
    emails = models.PositiveSmallIntegerField(default=0)
    texts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["alert", "step"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "step"], name="alert_escalation_once_per_step")
        ]

    def __str__(self) -> str:
        return f"Alert {self.alert_id} step {self.step} ({self.audience})"
