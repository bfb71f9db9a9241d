"""Participant messaging: per-study rules and templates, and the delivery log.

Every outgoing message is one ``Message`` row before anything is sent; its ``(participant,
dedupe_key)`` is unique, so a rule evaluated twice for the same reason and window — two scheduler
runs, two racing workers — creates one row and sends at most one message.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from cohorts.models import Participant, ParticipantContact, Study
from core.fields import EncryptedTextField

Channel = ParticipantContact.Channel


def default_quiet_start() -> dt.time:  # functions, not constants: see fields.W161 in monitoring.py
    return dt.time(21, 0)


def default_quiet_end() -> dt.time:
    return dt.time(8, 0)


class Reason(models.TextChoices):
    STATUS_LINK = "status_link", _("Private link")
    PROMPT = "prompt", _("Measurement prompt")
    NO_DATA = "no_data", _("No readings reminder")
    SYNC_NUDGE = "sync_nudge", _("Bring the monitor near Wi-Fi")
    RELINK = "relink", _("Link broken: link again")
    LOW_BATTERY = "low_battery", _("Charge the monitor")
    WITHDRAWAL = "withdrawal", _("Withdrawal confirmation")
    ONE_OFF = "one_off", _("Message from the study team")
    HELP = "help", _("Reply to HELP")
    OPT_OUT = "opt_out", _("Reply to STOP")
    OPT_IN = "opt_in", _("Reply to START")
    SAFETY = "safety", _("Safety message (severe reading)")


class StudyMessaging(models.Model):
    """A study's reminder rules. Nothing automatic is sent until a coordinator has previewed the
    rules and set them live (``live_since``)."""

    TENANT_PATHS = ("study", None)

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="messaging")
    live_since = models.DateTimeField(null=True, blank=True, help_text=_("Empty: rules not live yet."))
    prompts = models.BooleanField(default=True, help_text=_("Prompt at the start of each window."))
    no_data_reminders = models.BooleanField(default=True)
    no_data_days = models.PositiveSmallIntegerField(default=2, validators=[MinValueValidator(1)])
    sync_grace_hours = models.PositiveSmallIntegerField(
        default=24,
        help_text=_("Wait this long after a window for the cuff to upload before any reminder."),
    )
    relink_reminders = models.BooleanField(default=True)
    low_battery_reminders = models.BooleanField(default=True)
    quiet_start = models.TimeField(default=default_quiet_start)
    quiet_end = models.TimeField(default=default_quiet_end)
    max_per_day = models.PositiveSmallIntegerField(default=3, validators=[MaxValueValidator(20)])
    max_per_week = models.PositiveSmallIntegerField(default=21, validators=[MaxValueValidator(100)])
    updated_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name = "reminder rules"
        verbose_name_plural = "reminder rules"

    def __str__(self) -> str:
        return f"Reminder rules of {self.study}"


class MessageTemplate(models.Model):
    """One approved wording. Saving a change adds a version (an IRB approves wording); messages
    point at the version they were rendered from."""

    TENANT_PATHS = ("study", None)

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="message_templates")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    language = models.CharField(max_length=8, default="en")
    version = models.PositiveIntegerField(editable=False)
    subject = models.CharField(max_length=200, blank=True, help_text=_("E-mail only."))
    body = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["study", "reason", "channel", "language", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "reason", "channel", "language", "version"],
                name="message_template_version_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} ({self.channel}, {self.language}) v{self.version}"


class Message(models.Model):
    """The delivery log: one row per message to one participant."""

    TENANT_PATHS = ("study", "participant__site")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")  # claimed by one worker (messaging.dispatch)
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")
        BOUNCED = "bounced", _("Bounced")
        OPTED_OUT = "opted_out", _("Not sent: opted out")
        EXPIRED = "expired", _("Not sent: too late")  # a reminder past its time (messaging.dispatch)

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="messages")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    dedupe_key = models.CharField(
        max_length=120, help_text=_("Reason and window, e.g. prompt:2026-03-02:morning.")
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    subject = models.CharField(max_length=200, blank=True)
    # The rendered text can hold the participant's private link: encrypted, and erased on withdrawal.
    body = EncryptedTextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    provider_id = models.CharField(max_length=64, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=255, blank=True, help_text=_("Never holds contact details."))
    local_day = models.DateField(help_text=_("Participant-local day it is due (daily/weekly caps)."))
    due_at = models.DateTimeField(default=now, help_text=_("Not sent before (quiet hours)."))
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "dedupe_key"], name="message_once_per_reason"),
        ]
        indexes = [
            models.Index(fields=["participant", "local_day"], name="message_participant_day"),
            models.Index(fields=["study", "-created_at"], name="message_study_created"),
            models.Index(fields=["due_at"], condition=models.Q(status="queued"), name="message_queued_due"),
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} to {self.participant_id} ({self.status})"


class InboundMessage(models.Model):
    """A text a participant sent (STOP / START / HELP or free text), as received."""

    TENANT_PATHS = ("study", "participant__site")

    study = models.ForeignKey(Study, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, null=True, blank=True, related_name="inbound_messages"
    )
    provider_id = models.CharField(max_length=64, unique=True)
    keyword = models.CharField(max_length=8, blank=True, help_text=_("STOP, START or HELP; empty if none."))
    body = EncryptedTextField(blank=True)
    received_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"Inbound {self.keyword or 'text'} from {self.participant_id}"


class PendingReceipt(models.Model):
    """A Twilio delivery receipt for a MessageSid not in the log yet: Twilio can call back before the
    portal has read the answer to its send request (which holds the sid). Applied as soon as the sid
    is recorded (``messaging.receipts``); one never matched is dropped after a day. Holds no contact
    details: a sid, a status, an error code."""

    provider_id = models.CharField(max_length=64, db_index=True)
    provider_status = models.CharField(max_length=16)
    error_code = models.CharField(max_length=10, blank=True)
    received_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["received_at", "pk"]

    def __str__(self) -> str:
        return f"Receipt {self.provider_status} for {self.provider_id}"
