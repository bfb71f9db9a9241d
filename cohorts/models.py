"""Tenancy: the study (tenant), its sites, staff roles, participants, invitations and the audit log."""

from __future__ import annotations

import functools
import secrets
import zoneinfo

from django.conf import settings
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from core.fields import EncryptedTextField


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A staff account (operators and study staff). Participants have no user account."""

    username = None
    email = models.EmailField(_("e-mail address"), unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


@functools.cache
def known_timezones() -> frozenset[str]:
    """The IANA zone names (read from disk once: ``available_timezones()`` walks the zone files)."""
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    if value not in known_timezones():
        raise ValidationError(_("%(value)s is not a known IANA time zone."), params={"value": value})


slug_validator = RegexValidator(r"^[a-z0-9][a-z0-9-]{1,48}$", _("Lower-case letters, digits, '-'."))


#: The languages participants can read the study in (pages, messages, consent texts).
LANGUAGES = (("en", "English"), ("es", "Español"), ("fr", "Français"))


def language_codes(value: str) -> list[str]:
    """``"en, es"`` → ``["en", "es"]`` (order kept, duplicates and blanks dropped)."""
    codes: list[str] = []
    for code in (part.strip().lower() for part in (value or "").split(",")):
        if code and code not in codes:
            codes.append(code)
    return codes


class Study(models.Model):
    TENANT_PATHS = ("pk", None)

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Closed")

    class EnrollmentMode(models.TextChoices):
        INVITE_ONLY = "invite", _("Invitation only")
        OPEN = "open", _("Open link and invitations")

    slug = models.SlugField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    enrollment_mode = models.CharField(
        max_length=16, choices=EnrollmentMode.choices, default=EnrollmentMode.INVITE_ONLY
    )
    default_timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=40, blank=True)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    languages = models.CharField(
        max_length=32,
        default="en",
        blank=True,
        help_text=_(
            "Languages participants may enroll in, comma-separated: en, es, fr (the first is the "
            "default; empty: en). An active study needs each one's text in its current consent version."
        ),
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True)
                | models.Q(start_date__isnull=True)
                | models.Q(end_date__gte=models.F("start_date")),
                name="study_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def language_codes(self) -> list[str]:
        return language_codes(self.languages) or ["en"]

    @property
    def language_choices(self) -> list[tuple[str, str]]:
        names = dict(LANGUAGES)
        return [(code, names[code]) for code in self.language_codes if code in names]

    def consent_languages_missing(self) -> list[str]:
        """The study's languages its current consent version has no text in ([] without a version)."""
        current = self.consent_documents.order_by("-version").first() if self.pk else None
        if current is None:
            return []
        have = current.languages
        return [code for code in self.language_codes if code not in have]

    def clean(self) -> None:
        codes = language_codes(self.languages) or ["en"]
        unknown = [code for code in codes if code not in dict(LANGUAGES)]
        if unknown:
            raise ValidationError(
                {"languages": _("Use the codes en, es and fr, separated by commas (e.g. “en, es”).")}
            )
        self.languages = ", ".join(codes)
        if self.status == self.Status.ACTIVE and (missing := self.consent_languages_missing()):
            raise ValidationError(
                {
                    "languages": _(
                        "Enrollment cannot open in %(languages)s: the current consent version has no "
                        "text in that language. Add its translation first."
                    )
                    % {"languages": ", ".join(dict(LANGUAGES)[code] for code in missing)}
                }
            )


class Site(models.Model):
    TENANT_PATHS = ("study", "pk")

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="sites")
    code = models.CharField(max_length=32)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["study__name", "code"]
        constraints = [
            models.UniqueConstraint(fields=["study", "code"], name="site_code_unique_per_study"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.study.slug})"


class Role(models.TextChoices):
    COORDINATOR = "coordinator", _("Coordinator")
    DATA_MANAGER = "data_manager", _("Data manager")
    INVESTIGATOR = "investigator", _("Investigator (read-only)")


class ExportRights(models.TextChoices):
    """What a member's exports may hold (like REDCap's export rights)."""

    FULL = "full", _("Full data")
    DEIDENTIFIED = "deidentified", _("De-identified only")


class StudyMembership(models.Model):
    TENANT_PATHS = ("study", "site")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    site = models.ForeignKey(
        Site,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="memberships",
        help_text=_("Limit this person to one site of the study. Empty: all sites."),
    )
    # Clinical safety: the study's designated clinician or PI receives escalated severe-reading
    # alerts; a mobile number (encrypted, identifying) lets an escalation reach them by SMS.
    safety_clinician = models.BooleanField(
        default=False,
        help_text=_("The study's designated clinician or PI: receives safety alerts nobody acknowledged."),
    )
    phone = EncryptedTextField(
        blank=True, help_text=_("Mobile number (E.164) for safety escalations by SMS. Optional.")
    )
    export_rights = models.CharField(
        max_length=16,
        choices=ExportRights.choices,
        default=ExportRights.FULL,
        help_text=_(
            "De-identified only: every export and API download of this person has shifted dates, "
            "hashed device ids and no free text."
        ),
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["study__name", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "study"], name="one_membership_per_study"),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} — {self.study.slug}"

    def clean(self) -> None:
        if self.site_id and self.study_id and self.site.study_id != self.study_id:
            raise ValidationError({"site": _("This site belongs to another study.")})


class Participant(models.Model):
    TENANT_PATHS = ("study", "site")

    class Status(models.TextChoices):
        INVITED = "invited", _("Invited")
        CONSENTED = "consented", _("Consented")
        LINKED = "linked", _("Linked")
        ACTIVE = "active", _("Active")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        COMPLETED = "completed", _("Completed")

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="participants")
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="participants"
    )
    code = models.CharField(
        max_length=32,
        validators=[RegexValidator(r"^[A-Za-z0-9-]{2,32}$", _("Letters, digits and '-' only."))],
        help_text=_("Pseudonymous study code. Never a name."),
    )

    class LinkStatus(models.TextChoices):
        NOT_LINKED = "not_linked", _("Not linked")
        ACTIVE = "active", _("Linked")
        REFRESH_FAILED = "refresh_failed", _("Refresh failing (retrying)")
        NEEDS_REAUTH = "needs_reauth", _("Needs to link again")
        REVOKED = "revoked", _("Revoked")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INVITED)
    # Denormalised from the Withings connection (withings records it through cohorts' services)
    # so lists and filters need no join into the withings app.
    link_status = models.CharField(
        max_length=16, choices=LinkStatus.choices, default=LinkStatus.NOT_LINKED, db_index=True
    )
    link_status_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    language = models.CharField(
        max_length=8,
        choices=LANGUAGES,
        default="en",
        help_text=_("The language the participant reads the study in (pages and messages)."),
    )
    enrolled_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # SHA-256 of the participant's private status-page token (the token itself is never stored).
    status_token_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["study__name", "code"]
        constraints = [
            models.UniqueConstraint(fields=["study", "code"], name="participant_code_unique"),
        ]
        indexes = [models.Index(fields=["study", "status"])]

    def __str__(self) -> str:
        return f"{self.code} ({self.study.slug})"

    def clean(self) -> None:
        if self.site_id and self.study_id and self.site.study_id != self.study_id:
            raise ValidationError({"site": _("This site belongs to another study.")})


def new_invitation_token() -> str:
    return secrets.token_urlsafe(32)


class Invitation(models.Model):
    TENANT_PATHS = ("study", "participant__site")

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="invitations")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="invitations")
    token = models.CharField(max_length=64, unique=True, default=new_invitation_token, editable=False)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation for {self.participant.code}"

    @property
    def is_usable(self) -> bool:
        return self.used_at is None and self.expires_at > now()

    def clean(self) -> None:
        if self.participant_id and self.study_id and self.participant.study_id != self.study_id:
            raise ValidationError({"participant": _("This participant belongs to another study.")})


class AuditEvent(models.Model):
    """Append-only: the database refuses UPDATE and DELETE on PostgreSQL (see migration 0002)."""

    TENANT_PATHS = ("study", "participant__site")

    study = models.ForeignKey(Study, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["study", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label or 'system'} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("Audit events are append-only.")
        super().save(*args, **kwargs)


class EligibilityQuestion(models.Model):
    """A yes/no question asked before open-link self-enrollment."""

    TENANT_PATHS = ("study", None)

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="eligibility_questions")
    order = models.PositiveSmallIntegerField(default=0)
    text = models.CharField(max_length=300)
    required_answer = models.BooleanField(
        default=True, help_text=_("The answer a person must give to be eligible (ticked = yes).")
    )

    class Meta:
        ordering = ["study", "order", "pk"]

    def __str__(self) -> str:
        return self.text


class ConsentTextMixin:
    """Reading a consent text (the English one of a version, or one of its translations)."""

    statements: str
    body: str

    @property
    def statement_list(self) -> list[str]:
        return [line.strip() for line in self.statements.splitlines() if line.strip()]

    @property
    def paragraphs(self) -> list[str]:
        return [p.strip() for p in self.body.replace("\r\n", "\n").split("\n\n") if p.strip()]


class ConsentDocument(ConsentTextMixin, models.Model):
    """A version of a study's consent text (its English text; other languages are `ConsentText`s).
    Never edited in place: a change is a new version."""

    TENANT_PATHS = ("study", None)

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="consent_documents")
    version = models.PositiveIntegerField(editable=False)
    title = models.CharField(max_length=200)
    body = models.TextField(help_text=_("Plain text; blank lines separate paragraphs."))
    statements = models.TextField(
        help_text=_("One statement per line; the participant must tick each one to consent.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["study", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["study", "version"], name="consent_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"

    @property
    def languages(self) -> list[str]:
        """The languages this version has a text in (English always)."""
        return ["en", *sorted(self.texts.values_list("language", flat=True))]

    def text_for(self, language: str) -> ConsentTextMixin | None:
        """This version's text in ``language``, or None when it has none."""
        if language == "en":
            return self
        return self.texts.filter(language=language).first()


class ConsentText(ConsentTextMixin, models.Model):
    """A consent version's text in another language: the same statements, in the same order.
    Never edited in place either: a corrected translation belongs to a new version."""

    TENANT_PATHS = ("document__study", None)

    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="texts")
    language = models.CharField(max_length=8, choices=[c for c in LANGUAGES if c[0] != "en"])
    title = models.CharField(max_length=200)
    body = models.TextField(help_text=_("Plain text; blank lines separate paragraphs."))
    statements = models.TextField(
        help_text=_("One statement per line, the same ones in the same order as the English text.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["document", "language"]
        constraints = [
            models.UniqueConstraint(fields=["document", "language"], name="consent_text_language_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.title} (v{self.document.version}, {self.language})"

    def clean(self) -> None:
        if self.document_id and len(self.statement_list) != len(self.document.statement_list):
            raise ValidationError(
                {
                    "statements": _(
                        "The English text of this version has %(count)s statements: give the same "
                        "number, one per line, in the same order."
                    )
                    % {"count": len(self.document.statement_list)}
                }
            )


class ConsentRecord(models.Model):
    """What exactly a participant agreed to, and when."""

    TENANT_PATHS = ("participant__study", "participant__site")

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="consents")
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="records")
    version = models.PositiveIntegerField()
    language = models.CharField(
        max_length=8, choices=LANGUAGES, default="en", help_text=_("The language of the text shown.")
    )
    text_sha256 = models.CharField(max_length=64, help_text=_("SHA-256 of the exact text shown."))
    rendered_text = models.TextField(help_text=_("The exact text shown, as hashed."))
    # The typed signature is the one identifying value we keep: encrypted at rest, never exported.
    signature = EncryptedTextField()
    keep_data_on_withdrawal = models.BooleanField(
        help_text=_("The participant's choice: keep readings collected so far if they withdraw.")
    )
    choices = models.JSONField(default=dict, blank=True)
    consented_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-consented_at"]

    def __str__(self) -> str:
        return f"Consent v{self.version} of {self.participant.code}"


class ParticipantContact(models.Model):
    """How the study may reach a participant: identifying, so encrypted at rest, shown only to the
    coordinators of the participant's study/site, never exported or logged, erased on withdrawal,
    and every view or change audited. Messaging reads it; cohorts owns it with the participant."""

    TENANT_PATHS = ("participant__study", "participant__site")

    class Channel(models.TextChoices):
        SMS = "sms", _("Text message (SMS)")
        EMAIL = "email", _("E-mail")

    participant = models.OneToOneField(Participant, on_delete=models.CASCADE, related_name="contact")
    email = EncryptedTextField(blank=True)
    phone = EncryptedTextField(blank=True, help_text=_("Mobile number in E.164 form, e.g. +447700900123."))
    # Keyed hash of the E.164 number, so an inbound SMS (STOP/START/HELP) finds its participant
    # without decrypting every row. Never the number itself.
    phone_lookup = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    preferred_channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.SMS)
    language = models.CharField(max_length=8, default="en")
    reminders_opt_in = models.BooleanField(
        default=False, help_text=_("The participant agreed to receive reminders.")
    )
    opted_in_at = models.DateTimeField(null=True, blank=True)
    sms_opted_out_at = models.DateTimeField(null=True, blank=True, help_text=_("Replied STOP."))
    email_opted_out_at = models.DateTimeField(null=True, blank=True, help_text=_("Unsubscribed."))
    # A number or address that keeps failing is flagged for the coordinator.
    sms_failures = models.PositiveSmallIntegerField(default=0)
    email_failures = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name = "participant contact details"
        verbose_name_plural = "participant contact details"

    def __str__(self) -> str:
        return f"Contact details of {self.participant_id}"
