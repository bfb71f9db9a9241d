"""Enrollment writes: open-link self-enrollment, invitations, e-consent, private status links,
withdrawal. Views stay thin; everything that changes data is here and audited."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.timezone import now
from django.utils.translation import gettext

from . import hooks
from .contacts import ContactDetails, contact_save
from .models import (
    LANGUAGES,
    ConsentDocument,
    ConsentRecord,
    ConsentText,
    Invitation,
    Participant,
    ParticipantContact,
    Study,
)
from .services import audit_record, participant_create, token_hash
from .services import participant_reissue_status_link as participant_reissue_status_link

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes get read over the phone
INVITATION_DAYS = 14  # how long a new invitation stays valid unless staff say otherwise


class EnrollmentError(Exception):
    """Something the participant must be told in plain words (the message is safe to show)."""


class CollectionRefused(Exception):
    """No readings may be stored for this participant (the message says why; it names the code)."""


def current_consent(study: Study) -> ConsentDocument | None:
    return study.consent_documents.order_by("-version").first()


def consent_document_publish(
    *, actor, study: Study, title: str, body: str, statements: str
) -> ConsentDocument:
    """A new version of the study's consent text (versions are never edited in place)."""
    with transaction.atomic():
        Study.objects.select_for_update().filter(pk=study.pk).first()  # serialise version numbers
        latest = current_consent(study)
        document = ConsentDocument.objects.create(
            study=study,
            version=(latest.version + 1) if latest else 1,
            title=title,
            body=body,
            statements=statements,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit_record(actor=actor, action="consent.published", study=study, target=f"v{document.version}")
    return document


def is_eligible(study: Study, answers: dict[int, bool]) -> bool:
    return all(answers.get(q.pk) is q.required_answer for q in study.eligibility_questions.all())


def new_participant_code(study: Study) -> str:
    prefix = "".join(ch for ch in study.slug.upper() if ch.isalnum())[:2] or "P"
    for _ in range(20):
        code = f"{prefix}-{''.join(secrets.choice(CODE_ALPHABET) for _ in range(6))}"
        if not Participant.objects.filter(study=study, code=code).exists():
            return code
    raise EnrollmentError(gettext("Could not create a participant code; please try again."))


def participant_self_enroll(*, study: Study, language: str = "en") -> Participant:
    """Open-link enrollment after the eligibility check: a pseudonymous participant, no consent yet."""
    if study.enrollment_mode != Study.EnrollmentMode.OPEN or study.status != Study.Status.ACTIVE:
        raise EnrollmentError(gettext("This study is not open for enrollment."))
    with transaction.atomic():
        participant = Participant(
            study=study, code=new_participant_code(study), status=Participant.Status.INVITED,
            timezone=study.default_timezone, language=language,
        )  # fmt: skip
        participant.full_clean()
        participant.save()
        audit_record(action="participant.self_enrolled", participant=participant, target=participant.code)
    return participant


def invitation_for_token(token: str) -> Invitation:
    """The usable invitation for a token, or EnrollmentError saying why not."""
    invitation = (
        Invitation.objects.select_related("participant", "study").filter(token=token).first()
        if token
        else None
    )
    if invitation is None:
        raise EnrollmentError(
            gettext("This invitation link is not valid. Please check the link you received.")
        )
    if invitation.used_at is not None:
        raise EnrollmentError(gettext("This invitation link has already been used."))
    if invitation.expires_at <= now():
        raise EnrollmentError(gettext("This invitation link has expired."))
    if invitation.participant.status == Participant.Status.WITHDRAWN:
        raise EnrollmentError(gettext("This invitation link is no longer valid."))
    return invitation


@dataclass
class ConsentOutcome:
    record: ConsentRecord
    status_token: str  # shown to the participant once: their private status link


def render_consent_text(document: ConsentDocument, language: str = "en") -> str:
    """The exact text shown to the participant in ``language`` (what the hash covers and the copy
    contains). EnrollmentError when the version has no text in that language."""
    text = document.text_for(language)
    if text is None:
        raise EnrollmentError(gettext("The consent form is not available in this language."))
    with translation.override(language):
        version = gettext("Version %(version)s") % {"version": document.version}
    return "\n\n".join([text.title, version, *text.paragraphs, *text.statement_list])


def consent_language(study: Study, document: ConsentDocument, wanted: str) -> str:
    """The language the consent is offered in: ``wanted`` when the study enrolls in it and the version
    has its text; else the study's first language that has one; else English (always there)."""
    have = document.languages
    candidates = [wanted] if wanted in study.language_codes else []
    candidates += study.language_codes
    return next((code for code in candidates if code in have), "en")


def consent_text_add(
    *, actor, document: ConsentDocument, language: str, title: str, body: str, statements: str
) -> ConsentText:
    """A consent version's text in another language (validated: the same number of statements)."""
    text = ConsentText(document=document, language=language, title=title, body=body, statements=statements)
    if getattr(actor, "is_authenticated", False):
        text.created_by = actor
    text.full_clean()
    with transaction.atomic():
        text.save()
        audit_record(
            actor=actor,
            action="consent.translation_added",
            study=document.study,
            target=f"v{document.version}/{language}",
            detail={"sha256": hashlib.sha256(render_consent_text(document, language).encode()).hexdigest()},
        )
    return text


def participant_give_consent(
    *,
    participant: Participant,
    document: ConsentDocument,
    shown_text_sha256: str,
    signature: str,
    keep_data_on_withdrawal: bool,
    invitation: Invitation | None = None,
    contact: ContactDetails | None = None,
    language: str | None = None,
    consent_language: str = "en",
) -> ConsentOutcome:
    """Record the consent in the language it was shown in (and the contact details and reminders
    opt-in given with it); the new private link is handed to ``hooks.status_link_handlers`` after
    commit (messaging sends it). ``language`` is the participant's language from now on."""
    if document.study_id != participant.study_id or document != current_consent(participant.study):
        raise EnrollmentError(gettext("The consent form has changed. Please read the new version."))
    text = render_consent_text(document, consent_language)
    digest = hashlib.sha256(text.encode()).hexdigest()
    if not secrets.compare_digest(digest, shown_text_sha256):
        raise EnrollmentError(gettext("The consent form has changed. Please read the new version."))
    if not signature.strip():
        raise EnrollmentError(gettext("Please type your name to sign."))
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        if locked.status == Participant.Status.WITHDRAWN:
            raise EnrollmentError(gettext("You have left this study."))
        if invitation is not None:
            used = Invitation.objects.filter(pk=invitation.pk, used_at__isnull=True).update(used_at=now())
            if not used:
                raise EnrollmentError(gettext("This invitation link has already been used."))
        record = ConsentRecord.objects.create(
            participant=locked,
            document=document,
            version=document.version,
            language=consent_language,
            text_sha256=digest,
            rendered_text=text,
            signature=signature.strip()[:200],
            keep_data_on_withdrawal=keep_data_on_withdrawal,
            choices={
                "keep_data_on_withdrawal": keep_data_on_withdrawal,
                "reminders_opt_in": bool(contact and contact.reminders_opt_in),
            },
        )
        locked.status = Participant.Status.CONSENTED
        locked.enrolled_at = locked.enrolled_at or now()
        locked.start_date = locked.start_date or now().date()
        locked.status_token_hash = token_hash(token)
        locked.language = language or locked.language
        locked.save(update_fields=["status", "enrolled_at", "start_date", "status_token_hash", "language"])
        audit_record(
            action="participant.consented",
            participant=locked,
            target=locked.code,
            detail={
                "version": document.version,
                "language": consent_language,
                "sha256": digest,
                "keep_data_on_withdrawal": keep_data_on_withdrawal,
                "reminders_opt_in": bool(contact and contact.reminders_opt_in),
            },
        )
        if contact is not None and (contact.email or contact.phone):
            contact_save(actor=None, participant=locked, details=contact, via="enrollment")
        hooks.status_link_issued(locked.pk, token)
    return ConsentOutcome(record, token)


def participant_self_enroll_with_consent(
    *,
    study: Study,
    document: ConsentDocument,
    shown_text_sha256: str,
    signature: str,
    keep_data_on_withdrawal: bool,
    contact: ContactDetails | None = None,
    language: str = "en",
    consent_language: str = "en",
) -> ConsentOutcome:
    """Open-link enrollment: the participant is created together with their consent, or not at all
    (a refused consent — a stale form, no signature — leaves nothing behind)."""
    with transaction.atomic():
        participant = participant_self_enroll(study=study, language=language)
        return participant_give_consent(
            language=language,
            consent_language=consent_language,
            participant=participant,
            document=document,
            shown_text_sha256=shown_text_sha256,
            signature=signature,
            keep_data_on_withdrawal=keep_data_on_withdrawal,
            contact=contact,
        )


class InvitationRefused(ValidationError):
    """No invitation for this participant (the message says why and what to do instead)."""


def invitation_refusal(participant: Participant) -> str | None:
    """Why `participant` cannot be invited, or None: only a participant not yet enrolled can be."""
    if participant.status == Participant.Status.INVITED:
        return None
    if participant.status in (Participant.Status.WITHDRAWN, Participant.Status.COMPLETED):
        return (
            f"{participant.code} has left the study ({participant.get_status_display().lower()}): "
            "no invitation was created."
        )
    return (
        f"{participant.code} is already enrolled ({participant.get_status_display().lower()}): no "
        "invitation was created. To give them a way back to their page, use “Re-link help” "
        "(a fresh private link)."
    )


def invitation_create(*, actor, invitation: Invitation) -> Invitation:
    """Save a new invitation (validated by the caller's form), made by `actor`. Refused
    (InvitationRefused, nothing saved) for a participant who is already enrolled or has left."""
    if getattr(actor, "is_authenticated", False):
        invitation.created_by = actor
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=invitation.participant_id)
        if refusal := invitation_refusal(participant):
            raise InvitationRefused({"participant": refusal})
        return _invitation_save(actor=actor, invitation=invitation, action="invitation.created")


def participant_create_with_invitation(
    *, actor, participant: Participant, invitation_days: int | None = INVITATION_DAYS
) -> tuple[Participant, Invitation | None]:
    """One step for staff: the participant (code generated when empty, the study's time zone when
    none given) and, unless `invitation_days` is None, an invitation valid that many days. Both or
    neither are saved."""
    if not participant.code:
        participant.code = new_participant_code(participant.study)
    if not participant.timezone:
        participant.timezone = participant.study.default_timezone
    with transaction.atomic():
        participant_create(actor=actor, participant=participant)
        if invitation_days is None:
            return participant, None
        invitation = Invitation(
            study=participant.study,
            participant=participant,
            expires_at=now() + dt.timedelta(days=invitation_days),
        )
        return participant, invitation_create(actor=actor, invitation=invitation)


def invitation_update(*, actor, invitation: Invitation) -> Invitation:
    return _invitation_save(actor=actor, invitation=invitation, action="invitation.changed")


def _invitation_save(*, actor, invitation: Invitation, action: str) -> Invitation:
    with transaction.atomic():
        invitation.save()
        audit_record(
            actor=actor,
            action=action,
            participant=invitation.participant,
            target=invitation.participant.code,
            detail={"expires_at": invitation.expires_at.isoformat()},
        )
    return invitation


def invitation_delete(*, actor, invitation: Invitation) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="invitation.deleted",
            participant=invitation.participant,
            target=invitation.participant.code,
            detail={
                "expires_at": invitation.expires_at.isoformat(),
                "used": invitation.used_at is not None,
            },
        )
        invitation.delete()


def participant_language_set(*, participant: Participant, language: str, actor=None) -> bool:
    """The participant reads the study (pages and messages) in ``language`` from now on. Returns
    False, and changes nothing, when ``language`` is not one of the portal's languages."""
    if language not in dict(LANGUAGES):
        return False
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        if locked.language == language:
            return True
        before, locked.language = locked.language, language
        locked.save(update_fields=["language"])
        ParticipantContact.objects.filter(participant_id=locked.pk).update(language=language)
        audit_record(
            actor=actor, action="participant.language_changed", participant=locked, target=locked.code,
            detail={"from": before, "to": language},
        )  # fmt: skip
    participant.language = language
    return True


def participant_for_status_token(token: str) -> Participant | None:
    if not token or len(token) > 100:
        return None
    return (
        Participant.objects.select_related("study", "site")
        .filter(status_token_hash=token_hash(token))
        .first()
    )


def participant_withdraw(*, participant: Participant, actor=None, reason: str = "") -> bool:
    """Stop collection now; revoking at Withings and purging readings follow after commit
    (``hooks.withdrawal_handlers``). Returns False if already withdrawn."""
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        if locked.status == Participant.Status.WITHDRAWN:
            return False
        locked.status = Participant.Status.WITHDRAWN
        locked.withdrawn_at = now()
        locked.save(update_fields=["status", "withdrawn_at"])
        consent = locked.consents.order_by("-consented_at").first()
        audit_record(
            actor=actor,
            action="participant.withdrawn",
            participant=locked,
            target=locked.code,
            detail={
                "by": "coordinator" if getattr(actor, "is_authenticated", False) else "participant",
                "reason": reason[:200],
                "keep_data": consent.keep_data_on_withdrawal if consent else True,
            },
        )
        participant_id = locked.pk
        for handler in hooks.withdrawal_handlers:
            transaction.on_commit(lambda h=handler: h(participant_id))
    return True


def participant_collection_refusal(participant: Participant) -> str | None:
    """Why no reading may be stored for the participant, or None. No consent, no data: only a
    participant with a consent record who has not withdrawn contributes readings, by any path."""
    if participant.status == Participant.Status.WITHDRAWN:
        return f"Participant {participant.code} has withdrawn from the study: no readings are stored."
    if not ConsentRecord.objects.filter(participant_id=participant.pk).exists():
        return f"Participant {participant.code} has not given consent: no readings are stored."
    return None


def keeps_data_on_withdrawal(participant: Participant) -> bool:
    consent = participant.consents.order_by("-consented_at").first()
    return consent.keep_data_on_withdrawal if consent else True
