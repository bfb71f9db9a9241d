"""Synthetic demo data: a `demo` study (open enrollment) and a `pilot` study, staff for each role.

Everything here is made up. Staff get a known password and a known TOTP secret so a newcomer can
sign in to the admin at once (`manage.py demo_totp EMAIL` prints the current code).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import date, timedelta

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.db import transaction
from django.utils import timezone

from cohorts.enrollment import consent_text_add, render_consent_text
from cohorts.models import (
    ConsentDocument,
    ConsentRecord,
    EligibilityQuestion,
    Invitation,
    Participant,
    Role,
    Site,
    Study,
    StudyMembership,
    User,
    language_codes,
)
from cohorts.services import audit_record

from .consent_texts import CONSENT_TEXTS

CONSENT_BODY = """This study looks at blood pressure measured at home.

If you take part, you measure your blood pressure with your Withings monitor twice in the morning
and twice in the evening, for the length of the study. Your readings (blood pressure, pulse, the
time of each reading and which monitor took it) are sent to the study team automatically.

The study team sees a study code, not your name. You can leave at any time, without giving a
reason, from your private page or by contacting the study team.

This is demonstration text: the demo study is not a real study."""

CONSENT_STATEMENTS = """I have read and understood the information above.
I agree that my blood pressure readings are sent to the study team.
I know that I can leave the study at any time."""

ELIGIBILITY = (
    ("Are you 18 years old or older?", True),
    ("Do you have a Withings blood pressure monitor (BPM Connect)?", True),
    ("Are you pregnant?", False),
)

DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "demo-portal-2026")


@dataclass(frozen=True)
class DemoStaff:
    email: str
    study: str | None
    role: str | None
    site: str | None = None


DEMO_STAFF = (
    DemoStaff("operator@demo.example", None, None),
    DemoStaff("coordinator@demo.example", "demo", Role.COORDINATOR),
    DemoStaff("north.coordinator@demo.example", "demo", Role.COORDINATOR, "north"),
    DemoStaff("datamanager@demo.example", "demo", Role.DATA_MANAGER),
    DemoStaff("investigator@demo.example", "demo", Role.INVESTIGATOR),
    DemoStaff("coordinator@pilot.example", "pilot", Role.COORDINATOR),
)

STUDIES = {
    "demo": {
        "name": "Home BP demo study",
        "enrollment_mode": Study.EnrollmentMode.OPEN,
        "default_timezone": "Europe/Paris",
        "sites": {"north": "North clinic", "south": "South clinic"},
        "participants": 12,
        "languages": "en, es, fr",
    },
    "pilot": {
        "name": "Pilot (CSV import) study",
        "enrollment_mode": Study.EnrollmentMode.INVITE_ONLY,
        "default_timezone": "Australia/Perth",
        "sites": {"perth": "Perth"},
        "participants": 4,
    },
}


def demo_totp_secret(email: str) -> str:
    """A stable base32 TOTP secret per demo account (demo only, never for real accounts)."""
    digest = hashlib.sha256(f"cohort-portal-demo:{email}".encode()).digest()[:20]
    return base64.b32encode(digest).decode("ascii")


def _ensure_totp(user: User) -> None:
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, demo_totp_secret(user.email))


def _demo_consent(participant: Participant) -> None:
    """The consent a demo participant past enrollment would have signed (no consent, no data)."""
    document = participant.study.consent_documents.order_by("-version").first()
    text = render_consent_text(document)
    ConsentRecord.objects.create(
        participant=participant,
        document=document,
        version=document.version,
        text_sha256=hashlib.sha256(text.encode()).hexdigest(),
        rendered_text=text,
        signature=f"Demo participant {participant.code}",
        keep_data_on_withdrawal=True,
        choices={"keep_data_on_withdrawal": True},
        consented_at=participant.enrolled_at or timezone.now(),
    )


def _demo_consent_texts(study: Study, languages: str) -> None:
    """The current consent version's Spanish and French texts, then the study's languages."""
    document = study.consent_documents.order_by("-version").first()
    for code in (c for c in language_codes(languages) if c != "en"):
        if not document.texts.filter(language=code).exists():
            text = CONSENT_TEXTS[code]
            consent_text_add(
                actor=None, document=document, language=code, title=text["title"].format(name=study.name),
                body=text["body"], statements=text["statements"],
            )  # fmt: skip
    if study.languages == "en" and languages != "en":
        study.languages = languages
        study.full_clean()
        study.save(update_fields=["languages"])


@transaction.atomic
def seed_demo() -> list[DemoStaff]:
    today = timezone.localdate()
    studies: dict[str, Study] = {}
    sites: dict[tuple[str, str], Site] = {}
    for slug, spec in STUDIES.items():
        study, created = Study.objects.get_or_create(
            slug=slug,
            defaults={
                "name": spec["name"],
                "status": Study.Status.ACTIVE,
                "enrollment_mode": spec["enrollment_mode"],
                "default_timezone": spec["default_timezone"],
                "contact_email": f"study-team@{slug}.example",
                "start_date": today - timedelta(days=60),
                "end_date": today + timedelta(days=300),
            },
        )
        if created:
            audit_record(action="study.created", study=study, target=slug, detail={"demo": True})
        studies[slug] = study
        for code, name in spec["sites"].items():
            sites[(slug, code)], _ = Site.objects.get_or_create(
                study=study, code=code, defaults={"name": name}
            )
        if not study.consent_documents.exists():
            ConsentDocument.objects.create(
                study=study, version=1, title=f"Consent to take part in {study.name}",
                body=CONSENT_BODY, statements=CONSENT_STATEMENTS,
            )  # fmt: skip
        _demo_consent_texts(study, spec.get("languages", "en"))
        if spec["enrollment_mode"] == Study.EnrollmentMode.OPEN and not study.eligibility_questions.exists():
            for order, (text, answer) in enumerate(ELIGIBILITY):
                EligibilityQuestion.objects.create(
                    study=study, order=order, text=text, required_answer=answer
                )
        site_list = [sites[(slug, c)] for c in spec["sites"]]
        for i in range(1, spec["participants"] + 1):
            participant, _ = Participant.objects.get_or_create(
                study=study,
                code=f"{slug[:2].upper()}-{i:03d}",
                defaults={
                    "site": site_list[i % len(site_list)],
                    "status": Participant.Status.ACTIVE if i % 4 else Participant.Status.INVITED,
                    "timezone": spec["default_timezone"],
                    "enrolled_at": timezone.now() - timedelta(days=30 - i),
                    "start_date": date.today() - timedelta(days=30 - i),  # noqa: DTZ011
                },
            )
            if participant.status != Participant.Status.INVITED and not participant.consents.exists():
                _demo_consent(participant)
            if participant.status == Participant.Status.INVITED and not participant.invitations.exists():
                Invitation.objects.create(
                    study=study, participant=participant, expires_at=timezone.now() + timedelta(days=30)
                )
    for staff in DEMO_STAFF:
        user = User.objects.filter(email=staff.email).first()
        if user is None:
            if staff.study is None:
                user = User.objects.create_superuser(staff.email, DEMO_PASSWORD)
            else:
                user = User.objects.create_user(staff.email, DEMO_PASSWORD, is_staff=True)
        _ensure_totp(user)
        if staff.study is not None:
            StudyMembership.objects.get_or_create(
                user=user,
                study=studies[staff.study],
                defaults={
                    "role": staff.role,
                    "site": sites[(staff.study, staff.site)] if staff.site else None,
                },
            )
    return list(DEMO_STAFF)
