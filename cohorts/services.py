"""Writes for studies, staff roles and participants. Every change that matters is audited."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from allauth.account.forms import ResetPasswordForm
from allauth.core import context as allauth_context
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils.timezone import now

from . import hooks
from .models import AuditEvent, ExportRights, Participant, Role, Site, Study, StudyMembership


def audit_record(
    *,
    actor=None,
    action: str,
    study: Study | None = None,
    participant: Participant | None = None,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    if participant is not None and study is None:
        study = participant.study
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=actor_obj,
        actor_label=actor_obj.email if actor_obj else "system",
        action=action,
        study=study,
        participant=participant,
        target=target[:200],
        detail=detail or {},
    )


def _changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}


@transaction.atomic
def study_create(*, actor, study: Study, fields: list[str]) -> Study:
    """Save a new study (validated by the caller's form); `fields`: the names the form filled in."""
    study.save()
    audit_record(
        actor=actor, action="study.created", study=study, target=study.slug, detail={"fields": fields}
    )
    return study


@transaction.atomic
def study_update(*, actor, study: Study, fields: list[str]) -> Study:
    """Save a study's settings (validated by the caller's form); `fields`: the names that changed."""
    study.save()
    audit_record(
        actor=actor, action="study.changed", study=study, target=study.slug, detail={"fields": fields}
    )
    return study


@transaction.atomic
def membership_grant(
    *,
    actor,
    study: Study,
    email: str,
    role: str,
    site: Site | None = None,
    export_rights: str = ExportRights.FULL,
) -> tuple[StudyMembership, bool]:
    """Give `email` a role in `study`, creating a staff account (no password yet) if needed.

    Returns the membership and whether a new account was created (the caller sends the
    set-your-password e-mail, or `membership_notify_granted`, after commit). Whether the account
    existed is not recorded where study staff can read it. Operator (superuser) accounts are never
    given a study role.
    """
    User = get_user_model()
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is not None and user.is_superuser:
        raise ValidationError({"email": OPERATOR_REFUSED})
    created_user = user is None
    if created_user:
        user = User.objects.create_user(email=email, password=None, is_staff=True)
    elif not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    membership = StudyMembership(user=user, study=study, role=role, site=site, export_rights=export_rights)
    membership.full_clean()
    membership.save()
    audit_record(
        actor=actor,
        action="membership.granted",
        study=study,
        target=email,
        detail={
            "role": role,
            "site": site.code if site else None,
            **({"export_rights": export_rights} if export_rights != ExportRights.FULL else {}),
        },
    )
    return membership, created_user


OPERATOR_REFUSED = "Operator accounts cannot be given a study role: they already see every study."


def membership_notify_granted(*, membership_id: int) -> None:
    """Tell an existing account about its new study role (a new account gets the set-password
    e-mail instead; the coordinator is told the same in both cases)."""
    membership = StudyMembership.objects.select_related("user", "study", "site").get(pk=membership_id)
    where = f" (site {membership.site.code})" if membership.site else ""
    send_mail(
        "[Cohort portal] You have a new study role",
        f"You now have the role {membership.get_role_display()} in the study {membership.study.name}"
        f"{where}.\nSign in with your existing account at {settings.PORTAL_BASE_URL}/admin/.\n\n"
        "If you did not expect this, tell the study's coordinators or the portal's operators.",
        None,
        [membership.user.email],
        fail_silently=False,
    )


def membership_welcome(*, request, membership: StudyMembership, new_account: bool) -> None:
    """After commit, e-mail the person of a new membership: a new account is asked to set its
    password (allauth's reset e-mail, which needs the request), an existing one is told of the role
    (`membership_notify_granted`)."""
    if new_account:
        email = membership.user.email
        transaction.on_commit(lambda: _send_set_password_email(request, email))
    else:
        membership_id = membership.pk
        transaction.on_commit(lambda: membership_notify_granted(membership_id=membership_id))


def _send_set_password_email(request, email: str) -> None:
    form = ResetPasswordForm(data={"email": email})
    if form.is_valid():
        with allauth_context.request_context(request):  # also when run after the response
            form.save(request)


@transaction.atomic
def membership_update(
    *, actor, membership: StudyMembership, role: str, site: Site | None, export_rights: str | None = None
):
    locked = StudyMembership.objects.select_for_update(of=("self",)).select_related("site")
    before = locked.get(pk=membership.pk)
    old = {
        "role": before.role,
        "site": before.site.code if before.site else None,
        "export_rights": before.export_rights,
    }
    membership.role = role
    membership.site = site
    membership.export_rights = export_rights or before.export_rights
    membership.full_clean()
    membership.save(update_fields=["role", "site", "export_rights"])
    new = {"role": role, "site": site.code if site else None, "export_rights": membership.export_rights}
    if changes := _changes(old, new):
        audit_record(
            actor=actor,
            action="membership.changed",
            study=membership.study,
            target=membership.user.email,
            detail=changes,
        )
    return membership


@transaction.atomic
def membership_revoke(*, actor, membership: StudyMembership) -> None:
    audit_record(
        actor=actor,
        action="membership.revoked",
        study=membership.study,
        target=membership.user.email,
        detail={"role": membership.role},
    )
    membership.delete()


PARTICIPANT_AUDITED_FIELDS = ("code", "site_id", "status", "timezone", "start_date", "end_date")


def _participant_snapshot(participant: Participant) -> dict[str, Any]:
    return {f: _jsonable(getattr(participant, f)) for f in PARTICIPANT_AUDITED_FIELDS}


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


@transaction.atomic
def participant_create(*, actor, participant: Participant) -> Participant:
    participant.full_clean()
    participant.save()
    audit_record(
        actor=actor,
        action="participant.created",
        participant=participant,
        target=participant.code,
        detail=_participant_snapshot(participant),
    )
    return participant


@transaction.atomic
def participant_update(*, actor, participant: Participant) -> Participant:
    before = Participant.objects.select_for_update().get(pk=participant.pk)
    participant.full_clean()
    participant.save()
    if changes := _changes(_participant_snapshot(before), _participant_snapshot(participant)):
        audit_record(
            actor=actor,
            action="participant.changed",
            participant=participant,
            target=participant.code,
            detail=changes,
        )
    return participant


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def status_link_url(token: str) -> str:
    """The participant's private status page (and the way back to re-linking Withings)."""
    return f"{settings.PORTAL_BASE_URL}/p/{token}/"


class RelinkRefused(ValidationError):
    """The participant cannot be given a private link (the message says why, naming the code)."""


def participant_reissue_status_link(*, actor, participant: Participant, via: str = "") -> str:
    """A new private status-link token for the participant; the previous link stops working at once.
    Returns the token (shown once, never stored: only its hash is)."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        if locked.status == Participant.Status.WITHDRAWN:
            raise RelinkRefused(f"{locked.code} has withdrawn from the study: no new link is given.")
        had_link = bool(locked.status_token_hash)
        locked.status_token_hash = token_hash(token)
        locked.save(update_fields=["status_token_hash"])
        audit_record(
            actor=actor,
            action="participant.status_link_reissued",
            participant=locked,
            target=locked.code,
            detail={"old_link_revoked": had_link, **({"via": via} if via else {})},
        )
        hooks.status_link_issued(locked.pk, token)  # messaging sends the new link, if it can
    return token


def participant_relink(*, actor, participant: Participant, via: str = "") -> str:
    """Give the participant a fresh private link (status page, re-linking Withings) and return its
    URL; the old link stops working. Callers ask before calling this (staff confirm in the admin).
    Raises RelinkRefused for a withdrawn participant."""
    return status_link_url(participant_reissue_status_link(actor=actor, participant=participant, via=via))


def participant_record_link_status(*, participant_id: int, link_status: str, reason: str = "") -> bool:
    """Record the Withings link state on the participant; audited when it changes.

    Coordinators hear of a broken link through measurements' alerts (the withings app evaluates
    them after calling this), not from here.

    Returns True when the status changed. Safe to call repeatedly (a no-op when unchanged).
    """
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=participant_id)
        if participant.link_status == link_status:
            return False
        old = participant.link_status
        participant.link_status = link_status
        participant.link_status_changed_at = now()
        fields = ["link_status", "link_status_changed_at"]
        if link_status == Participant.LinkStatus.ACTIVE and participant.status in (
            Participant.Status.INVITED,
            Participant.Status.CONSENTED,
        ):
            participant.status = Participant.Status.LINKED
            fields.append("status")
        participant.save(update_fields=fields)
        audit_record(
            action="participant.link_status",
            participant=participant,
            target=participant.code,
            detail={"from": old, "to": link_status, "reason": reason[:200]},
        )
    return True


def coordinators_notify(*, study_id: int, subject: str, message: str) -> int:
    """E-mail the study's coordinators (pseudonymous content only: codes, never names)."""
    recipients = list(
        StudyMembership.objects.filter(study_id=study_id, role=Role.COORDINATOR, user__is_active=True)
        .values_list("user__email", flat=True)
        .distinct()
    )
    if not recipients:
        return 0
    send_mail(f"[Cohort portal] {subject}", message, None, recipients, fail_silently=False)
    return len(recipients)


def participant_mark_active(*, participant_id: int) -> bool:
    """The first readings arrived: a linked participant becomes active."""
    return bool(
        Participant.objects.filter(pk=participant_id, status=Participant.Status.LINKED).update(
            status=Participant.Status.ACTIVE
        )
    )
