"""A participant's contact details: normalising, saving, revealing to staff and erasing — each audited
without the values themselves (an audit row says *that* the e-mail changed, never what it is)."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.crypto import salted_hmac
from django.utils.timezone import now
from django.utils.translation import gettext as _

from .models import LANGUAGES, Participant, ParticipantContact, Study, StudyMembership
from .services import audit_record


def study_region(study: Study) -> str | None:
    """The study's country (ISO 3166 alpha-2) when its own phone number tells it, else None."""
    if not study.contact_phone.strip().startswith("+"):
        return None
    try:
        number = phonenumbers.parse(study.contact_phone, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(number)


def phone_normalise(raw: str, *, region: str | None) -> str:
    """The E.164 form of a mobile number, or ValidationError saying what is wrong. A national number
    is read in ``region`` (the study's country) when it is known; otherwise +country is required."""
    raw = raw.strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        if not raw.startswith("+") and region is None:
            raise ValidationError(
                _("Please write the number with its country code, e.g. +44 7700 900123."), code="no_country"
            ) from exc
        raise ValidationError(_("This is not a phone number."), code="invalid_phone") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("This number is not valid. Please check it (with its country code, e.g. +44 7700 900123)."),
            code="invalid_phone",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_lookup(e164: str) -> str:
    """A keyed hash of an E.164 number: finds the participant of an inbound text without the number."""
    if not e164:
        return ""
    secret = settings.CONTACT_LOOKUP_KEY or settings.SECRET_KEY
    return salted_hmac("cohorts.contact.phone", e164, secret=secret, algorithm="sha256").hexdigest()


@dataclass(frozen=True)
class ContactDetails:
    email: str = ""
    phone: str = ""  # E.164 (phone_normalise) or empty
    preferred_channel: str = ParticipantContact.Channel.SMS
    language: str = "en"
    reminders_opt_in: bool = False

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.email:
            try:
                validate_email(self.email)
            except ValidationError:
                errors["email"] = _("This is not an e-mail address.")
        if self.preferred_channel == ParticipantContact.Channel.SMS and self.email and not self.phone:
            errors["preferred_channel"] = _("Give a mobile number to receive text messages.")
        if self.preferred_channel == ParticipantContact.Channel.EMAIL and self.phone and not self.email:
            errors["preferred_channel"] = _("Give an e-mail address to receive e-mails.")
        if self.reminders_opt_in and not (self.email or self.phone):
            errors["reminders_opt_in"] = _("Give an e-mail address or a mobile number to receive reminders.")
        if self.language not in dict(LANGUAGES):
            errors["language"] = _("Choose a language from the list.")
        if errors:
            raise ValidationError(errors)

    def effective_channel(self) -> str:
        """The channel messages use: the preferred one, or the only one given."""
        if self.preferred_channel == ParticipantContact.Channel.SMS and not self.phone and self.email:
            return ParticipantContact.Channel.EMAIL
        if self.preferred_channel == ParticipantContact.Channel.EMAIL and not self.email and self.phone:
            return ParticipantContact.Channel.SMS
        return self.preferred_channel


def contact_of(participant: Participant) -> ParticipantContact | None:
    return ParticipantContact.objects.filter(participant_id=participant.pk).first()


def contact_save(*, actor, participant: Participant, details: ContactDetails, via: str) -> ParticipantContact:
    """Create or change the participant's contact details (validated here). The audit row names the
    fields that changed and who changed them (``via``: enrollment, participant, coordinator)."""
    details.clean()
    with transaction.atomic():
        contact = ParticipantContact.objects.select_for_update().filter(participant_id=participant.pk).first()
        created = contact is None
        if contact is None:
            contact = ParticipantContact(participant=participant)
        before = {
            "email": contact.email,
            "phone": contact.phone,
            "preferred_channel": contact.preferred_channel,
            "language": contact.language,
            "reminders_opt_in": contact.reminders_opt_in,
        }
        if details.phone != contact.phone:
            contact.sms_failures = 0  # a new number starts with a clean record
        if details.email != contact.email:
            contact.email_failures = 0
        contact.email = details.email
        contact.phone = details.phone
        contact.phone_lookup = phone_lookup(details.phone)
        contact.preferred_channel = details.effective_channel()
        contact.language = details.language
        # One language per participant: the messages' language is the pages' language too.
        Participant.objects.filter(pk=participant.pk).update(language=details.language)
        if details.reminders_opt_in and not contact.reminders_opt_in:
            contact.opted_in_at = now()
        contact.reminders_opt_in = details.reminders_opt_in
        contact.updated_at = now()
        contact.save()
        after = {
            "email": contact.email,
            "phone": contact.phone,
            "preferred_channel": contact.preferred_channel,
            "language": contact.language,
            "reminders_opt_in": contact.reminders_opt_in,
        }
        changed = sorted(name for name in after if after[name] != before[name])
        if created or changed:
            audit_record(
                actor=actor,
                action="contact.created" if created else "contact.changed",
                participant=participant,
                target=participant.code,
                detail={
                    "via": via,
                    "fields": changed,
                    # Whether there is an e-mail / a number, never what it is.
                    "has_email": bool(contact.email),
                    "has_phone": bool(contact.phone),
                    "preferred_channel": contact.preferred_channel,
                    "language": contact.language,
                    "reminders_opt_in": contact.reminders_opt_in,
                },
            )
    return contact


def contact_reveal(*, actor, participant: Participant) -> ParticipantContact | None:
    """The contact details for a member of staff who asked to see them: the view is audited."""
    contact = contact_of(participant)
    audit_record(
        actor=actor,
        action="contact.viewed",
        participant=participant,
        target=participant.code,
        detail={"found": contact is not None},
    )
    return contact


def contact_erase(*, participant_id: int) -> bool:
    """Erase the e-mail and number of a participant (withdrawal). Returns whether there was any."""
    with transaction.atomic():
        contact = ParticipantContact.objects.select_for_update().filter(participant_id=participant_id).first()
        if contact is None or not (contact.email or contact.phone):
            return False
        contact.email = ""
        contact.phone = ""
        contact.phone_lookup = ""
        contact.reminders_opt_in = False
        contact.updated_at = now()
        contact.save()
        participant = Participant.objects.select_related("study").get(pk=participant_id)
        audit_record(action="contact.erased", participant=participant, target=participant.code)
    return True


def staff_phone_masked(phone: str) -> str:
    """ "•••• 456": enough for a coordinator to recognise a number, never the number."""
    return f"•••• {phone[-3:]}" if phone else "none"


def staff_safety_save(
    *, actor, membership: StudyMembership, safety_clinician: bool, phone: str | None
) -> None:
    """Set whether the member is the study's designated clinician/PI for safety escalations, and
    their mobile number for escalation texts (``phone``: None keeps it, "" removes it; normalised to
    E.164, encrypted at rest). Audited without the number."""
    e164 = None if phone is None else phone_normalise(phone, region=study_region(membership.study))
    with transaction.atomic():
        locked = StudyMembership.objects.select_for_update().get(pk=membership.pk)
        changed = []
        if locked.safety_clinician != safety_clinician:
            locked.safety_clinician = safety_clinician
            changed.append("safety_clinician")
        if e164 is not None and e164 != locked.phone:
            locked.phone = e164
            changed.append("phone")
        if not changed:
            return
        locked.save(update_fields=changed)
        audit_record(
            actor=actor,
            action="membership.safety_contact_changed",
            study=locked.study,
            target=locked.user.email,
            detail={
                "safety_clinician": locked.safety_clinician,
                "phone": ("removed" if not locked.phone else "set") if "phone" in changed else "unchanged",
            },
        )
    membership.safety_clinician, membership.phone = locked.safety_clinician, locked.phone
