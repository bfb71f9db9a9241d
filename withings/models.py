"""Withings link records: per-study app credentials and one token record per participant."""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from cohorts.models import Participant, Study
from core.fields import EncryptedTextField


class WithingsApp(models.Model):
    """A study's own Withings developer app (optional: without one the env-configured app is used),
    so several institutions can share one installation with their own apps."""

    TENANT_PATHS = ("study", None)

    study = models.OneToOneField(Study, on_delete=models.PROTECT, related_name="withings_app")
    client_id = models.CharField(max_length=128)
    client_secret = EncryptedTextField(help_text=_("Stored encrypted; never shown again."))
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Withings app"

    def __str__(self) -> str:
        return f"Withings app {self.client_id} ({self.study.slug})"


class WithingsConnection(models.Model):
    """A participant's link to Withings. Tokens are encrypted at rest and never filtered on.

    Identity: ``(app_client_id, withings_userid)`` is unique — a Withings userid is unique per
    Withings application. ``app`` is None when the env-configured app was used.
    """

    TENANT_PATHS = ("participant__study", "participant__site")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REFRESH_FAILED = "refresh_failed", _("Refresh failing (retrying)")
        NEEDS_REAUTH = "needs_reauth", _("Needs to link again")
        REVOKED = "revoked", _("Revoked")

    class SubscriptionState(models.TextChoices):
        UNKNOWN = "unknown", _("Unknown")
        SUBSCRIBED = "subscribed", _("Subscribed")
        MISSING = "missing", _("Missing")
        FAILED = "failed", _("Failed")

    participant = models.OneToOneField(
        Participant, on_delete=models.PROTECT, related_name="withings_connection"
    )
    app = models.ForeignKey(
        WithingsApp, on_delete=models.PROTECT, null=True, blank=True, related_name="connections"
    )
    app_client_id = models.CharField(max_length=128)
    withings_userid = models.CharField(max_length=64)
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    scope = models.CharField(max_length=200, blank=True)
    token_issued_at = models.DateTimeField(null=True, blank=True)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    #: half the access token's life: the beat queues a refresh from then on.
    refresh_due_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    last_refresh_at = models.DateTimeField(null=True, blank=True)
    refresh_failures = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True, help_text=_("Never holds a token."))
    last_error_at = models.DateTimeField(null=True, blank=True)
    # For ingestion (sync, notifications, subscriptions):
    sync_watermark = models.BigIntegerField(null=True, blank=True, help_text=_("Unix seconds."))
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_notification_at = models.DateTimeField(null=True, blank=True)
    subscription_state = models.CharField(
        max_length=16, choices=SubscriptionState.choices, default=SubscriptionState.UNKNOWN
    )
    subscribed_at = models.DateTimeField(null=True, blank=True)
    # History back-fill: where the next page starts ({"lastupdate", "offset"}), null when done.
    backfill_cursor = models.JSONField(null=True, blank=True)
    backfill_completed_at = models.DateTimeField(null=True, blank=True)
    #: the back-fill's chain of steps: each queued step carries it. The scanner starts a new chain
    #: when it re-queues a stalled back-fill, so a chain that was only slow stops at its next step
    #: instead of both fetching every page; a redelivered step of the current chain goes on.
    backfill_chain = models.PositiveIntegerField(default=0)
    #: when a back-fill step last stored a page (or was re-queued by the scanner): a stall detector.
    backfill_progress_at = models.DateTimeField(null=True, blank=True)
    linked_at = models.DateTimeField(default=now)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["participant__study__name", "participant__code"]
        constraints = [
            models.UniqueConstraint(
                fields=["app_client_id", "withings_userid"], name="withings_userid_unique_per_app"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "refresh_due_at"], name="withings_refresh_due"),
            # The webhook looks a delivery's userid up without knowing the app.
            models.Index(fields=["withings_userid"], name="withings_userid_lookup"),
        ]

    def __str__(self) -> str:
        return f"Withings link of {self.participant}"

    def set_tokens(self, *, access_token: str, refresh_token: str, expires_in: int, scope: str) -> None:
        issued = now()
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.scope = scope[:200]
        self.token_issued_at = issued
        self.access_expires_at = issued + dt.timedelta(seconds=expires_in)
        self.refresh_due_at = issued + dt.timedelta(seconds=expires_in / 2)

    TOKEN_FIELDS = ("access_token", "refresh_token", "scope", "token_issued_at", "access_expires_at",
                    "refresh_due_at")  # fmt: skip


class Notification(models.Model):
    """Every webhook delivery as received (the inbox). Work is queued after commit; a sweeper
    re-queues anything still pending, so a lost Redis message never loses a notification."""

    TENANT_PATHS = ("connection__participant__study", "connection__participant__site")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored (unknown user)")
        FAILED = "failed", _("Failed")

    dedupe_key = models.CharField(max_length=64, db_index=True)
    userid = models.CharField(max_length=64, db_index=True)
    appli = models.IntegerField(null=True, blank=True)
    startdate = models.BigIntegerField(null=True, blank=True)
    enddate = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=32, blank=True)
    payload = models.JSONField(default=dict)
    connection = models.ForeignKey(
        WithingsConnection, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    received_at = models.DateTimeField(default=now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["connection", "status", "received_at"], name="notification_pending"),
        ]
        constraints = [
            # A retried delivery is dropped while an identical one waits; once that one is processed,
            # the same payload is stored again (it may announce a new change in the same window).
            models.UniqueConstraint(
                fields=["dedupe_key"], condition=models.Q(status="pending"), name="notification_pending_once"
            ),
        ]

    def __str__(self) -> str:
        return f"appli {self.appli} for user {self.userid} at {self.received_at:%Y-%m-%d %H:%M:%S}"
