"""Bulk participant import (django-import-export's preview and confirm): one row per participant with
code, site, time zone, start date and, if given, contact details (encrypted, opt-in); each participant
gets an invitation. All or nothing: one bad row and nothing is imported, the row named.

The sheet is read as CSV only (no XLSX: its parser has no size guard), at most `MAX_ROWS` rows and
`MAX_BYTES`. Between preview and confirm the file waits in the cache, encrypted (it may hold e-mail
addresses and phone numbers), and is removed once imported. The preview never shows contact values.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from import_export import fields, resources, widgets
from import_export.tmp_storages import CacheStorage

from core.crypto import decrypt_str, encrypt_str

from .contacts import ContactDetails, contact_save, phone_normalise, study_region
from .enrollment import INVITATION_DAYS, new_participant_code, participant_create_with_invitation
from .models import LANGUAGES, Participant, Role, Site, Study

MAX_ROWS = 2000
MAX_BYTES = 1024 * 1024
MAX_INVITATION_DAYS = 90
YES = {"yes", "y", "true", "1", "oui", "si", "sí"}
NO = {"no", "n", "false", "0", "non", ""}
COLUMNS = ("code", "site", "timezone", "start_date", "email", "phone", "reminders_opt_in", "language",
           "invitation_days")  # fmt: skip


class EncryptedCacheStorage(CacheStorage):
    """The uploaded sheet between preview and confirm: in the cache (shared by every web process),
    encrypted with FIELD_ENCRYPTION_KEYS, for an hour at most."""

    CACHE_LIFETIME = 3600
    CACHE_PREFIX = "portal-participant-import-"

    def save(self, data):
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        super().save(encrypt_str(text))

    def read(self):
        stored = super().read()
        if stored is None:
            raise ValidationError("The uploaded sheet has expired: upload it again.")
        return decrypt_str(stored)


def _flag(value) -> bool:
    text = str(value or "").strip().lower()
    if text in YES:
        return True
    if text in NO:
        return False
    raise ValidationError({"reminders_opt_in": f"“{value}” is not yes or no."})


class _Given(fields.Field):
    """A contact column: imported, but the preview and any export show only whether it was given."""

    def export(self, instance, **kwargs):
        return "given" if getattr(instance, f"_import_{self.column_name}", "") else ""


class _Shown(fields.Field):
    """A column the preview shows through one of the resource's methods: django-import-export's
    preview (its ``Diff``) calls ``Field.export`` and never a ``dehydrate_method``."""

    def __init__(self, show, **kwargs):
        super().__init__(readonly=True, **kwargs)
        self.show = show

    def export(self, instance, **kwargs):
        return self.show(instance)


def _site_code(instance) -> str:
    return instance.site.code if instance.site_id else ""


def _opt_in(instance) -> str:
    details = getattr(instance, "_import_details", None)
    return "yes" if details and details.reminders_opt_in else "no"


def _language(instance) -> str:
    details = getattr(instance, "_import_details", None)
    return str(dict(LANGUAGES).get(details.language, "")) if details else ""


def _days(instance) -> str:
    return str(getattr(instance, "_import_days", ""))


class ParticipantImportResource(resources.ModelResource):
    code = fields.Field(attribute="code", column_name="code")
    site = _Shown(_site_code, column_name="site")
    timezone = fields.Field(attribute="timezone", column_name="timezone")
    start_date = fields.Field(
        attribute="start_date", column_name="start_date", widget=widgets.DateWidget("%Y-%m-%d")
    )
    email = _Given(column_name="email", readonly=True)
    phone = _Given(column_name="phone", readonly=True)
    reminders_opt_in = _Shown(_opt_in, column_name="reminders_opt_in")
    language = _Shown(_language, column_name="language")
    invitation_days = _Shown(_days, column_name="invitation_days")

    class Meta:
        model = Participant
        fields = COLUMNS
        use_transactions = True
        skip_unchanged = False
        clean_model_instances = False  # participant_create_with_invitation validates (full_clean)

    def __init__(self, *, actor=None, study: Study | None = None, memberships=(), **kwargs):
        super().__init__(**kwargs)
        self.actor = actor
        self.study = study
        # (study_id, site_id, role) of the actor, for the per-row site check.
        self.memberships = list(memberships)
        self.sites: dict[str, Site] = {}
        self.region: str | None = None

    # -- the whole sheet --------------------------------------------------------------------------

    def before_import(self, dataset, **kwargs):
        if self.study is None:
            raise ValidationError("Choose the study to import into.")
        if not self._may_import_somewhere():
            raise ValidationError("You cannot add participants to this study: your role does not allow it.")
        headers = [h.strip().lower() for h in (dataset.headers or [])]
        unknown = sorted(set(headers) - set(COLUMNS))
        if unknown:
            raise ValidationError(
                f"Unknown column(s): {', '.join(unknown)}. The columns are: {', '.join(COLUMNS)}."
            )
        if len(dataset) > MAX_ROWS:
            raise ValidationError(f"The sheet has {len(dataset)} rows: import at most {MAX_ROWS} at a time.")
        dataset.headers = headers
        self.sites = {site.code: site for site in Site.objects.filter(study=self.study)}
        self.region = study_region(self.study)

    def _may_import_somewhere(self) -> bool:
        if getattr(self.actor, "is_superuser", False):
            return True
        assert self.study is not None
        return any(s == self.study.pk and role == Role.COORDINATOR for s, _site, role in self.memberships)

    def _may_import_at(self, site: Site | None) -> bool:
        if getattr(self.actor, "is_superuser", False):
            return True
        assert self.study is not None
        site_id = site.pk if site else None
        return any(
            s == self.study.pk and role == Role.COORDINATOR and (m_site is None or m_site == site_id)
            for s, m_site, role in self.memberships
        )

    # -- one row --------------------------------------------------------------------------------

    def get_instance(self, instance_loader, row):  # noqa: ARG002 — the library's signature
        return None  # always a new participant: an existing code is refused, never updated

    def import_instance(self, instance, row, **kwargs):
        super().import_instance(instance, row, **kwargs)
        assert self.study is not None
        errors: dict[str, str] = {}
        instance.study = self.study
        instance.code = (instance.code or "").strip() or new_participant_code(self.study)
        instance.timezone = (instance.timezone or "").strip() or self.study.default_timezone
        site_code = str(row.get("site") or "").strip()
        site = None
        if site_code:
            site = self.sites.get(site_code)
            if site is None:
                known = ", ".join(sorted(self.sites)) or "none"
                errors["site"] = f"The study has no site “{site_code}” (its sites: {known})."
        if not errors.get("site") and not self._may_import_at(site):
            errors["site"] = (
                "You can only add participants at your own site: give its code."
                if site is None
                else f"You cannot add participants at the site “{site_code}”."
            )
        instance.site = site
        email = str(row.get("email") or "").strip()
        try:
            phone = phone_normalise(str(row.get("phone") or ""), region=self.region)
        except ValidationError as exc:
            errors["phone"] = " ".join(exc.messages)
            phone = ""
        language = str(row.get("language") or "").strip().lower() or "en"
        try:
            opt_in = _flag(row.get("reminders_opt_in"))
        except ValidationError as exc:
            errors.update({k: " ".join(v) for k, v in exc.message_dict.items()})
            opt_in = False
        details = ContactDetails(
            email=email, phone=phone, language=language, reminders_opt_in=opt_in,
            preferred_channel="sms" if phone else "email",
        )  # fmt: skip
        try:
            details.clean()
        except ValidationError as exc:
            errors.update({k: " ".join(v) for k, v in exc.message_dict.items()})
        raw_days = str(row.get("invitation_days") or "").strip()
        days = INVITATION_DAYS
        if raw_days:
            if not raw_days.isdigit() or not 1 <= int(raw_days) <= MAX_INVITATION_DAYS:
                errors["invitation_days"] = f"Give a number of days from 1 to {MAX_INVITATION_DAYS}."
            else:
                days = int(raw_days)
        if errors:
            raise ValidationError(errors)
        instance._import_email = email
        instance._import_phone = phone
        instance._import_details = details if (email or phone) else None
        instance._import_days = days

    def save_instance(self, instance, is_create, row, **kwargs):  # noqa: ARG002 — the library's signature
        _participant, invitation = participant_create_with_invitation(
            actor=self.actor, participant=instance, invitation_days=instance._import_days
        )
        instance._import_invitation = invitation
        if instance._import_details is not None:
            contact_save(
                actor=self.actor, participant=instance, details=instance._import_details, via="import"
            )
