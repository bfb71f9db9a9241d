from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

import factory
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.utils import timezone

from cohorts.models import (
    AuditEvent,
    ConsentDocument,
    ConsentRecord,
    Invitation,
    Participant,
    Role,
    Site,
    Study,
    StudyMembership,
    User,
)
from measurements.quality import flags_of

STAFF_PASSWORD = "correct horse battery staple"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"staff{n}@example.org")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", STAFF_PASSWORD)

    @factory.post_generation
    def totp(self, create, extracted, **kwargs):
        self.save()
        if create and extracted is not False:
            TOTP.activate(self, TOTP_SECRET)


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    slug = factory.Sequence(lambda n: f"study-{n}")
    name = factory.Sequence(lambda n: f"Study number {n}")
    status = Study.Status.ACTIVE


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    study = factory.SubFactory(StudyFactory)
    code = factory.Sequence(lambda n: f"site{n}")
    name = factory.Sequence(lambda n: f"Clinic {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StudyMembership

    user = factory.SubFactory(UserFactory)
    study = factory.SubFactory(StudyFactory)
    role = Role.COORDINATOR
    site = None


class ParticipantFactory(factory.django.DjangoModelFactory):
    """A participant past consent has a consent record (no consent, no data), unless `consented=False`."""

    class Meta:
        model = Participant
        skip_postgeneration_save = True

    study = factory.SubFactory(StudyFactory)
    site = factory.LazyAttribute(lambda o: SiteFactory(study=o.study))
    code = factory.Sequence(lambda n: f"P-{n:04d}")
    status = Participant.Status.ACTIVE
    timezone = "Europe/Paris"

    @factory.post_generation
    def consented(self, create, extracted, **kwargs):
        if create and (extracted if extracted is not None else self.status != Participant.Status.INVITED):
            record_consent(self, **kwargs)


def record_consent(participant: Participant, *, keep_data_on_withdrawal: bool = True) -> ConsentRecord:
    """A consent record as the enrollment leaves it, against a version-0 document of the test's own
    (so a test's `ConsentDocumentFactory(version=1)` stays the study's current version)."""
    document, _ = ConsentDocument.objects.get_or_create(
        study=participant.study,
        version=0,
        defaults={"title": "Consent (test set-up)", "body": "Set-up.", "statements": "I agree."},
    )
    return ConsentRecord.objects.create(
        participant=participant,
        document=document,
        version=0,
        text_sha256="0" * 64,
        rendered_text="Set-up.",
        signature="Test Signature",
        keep_data_on_withdrawal=keep_data_on_withdrawal,
    )


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invitation

    participant = factory.SubFactory(ParticipantFactory)
    study = factory.LazyAttribute(lambda o: o.participant.study)
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=7))


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    participant = factory.SubFactory(ParticipantFactory)
    study = factory.LazyAttribute(lambda o: o.participant.study)
    action = "participant.viewed"
    target = factory.LazyAttribute(lambda o: o.participant.code)


def has_totp(user: User) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


class WithingsAppFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "withings.WithingsApp"

    study = factory.SubFactory(StudyFactory)
    client_id = factory.Sequence(lambda n: f"study-app-{n}")
    client_secret = factory.Sequence(lambda n: f"study-app-secret-{n}")


class WithingsConnectionFactory(factory.django.DjangoModelFactory):
    """Tokens are random unless given; with a sandbox, pass the tokens it issued."""

    class Meta:
        model = "withings.WithingsConnection"

    participant = factory.SubFactory(ParticipantFactory)
    app = None
    app_client_id = "test-client"
    withings_userid = factory.Sequence(lambda n: str(20_000_000 + n))
    access_token = factory.LazyFunction(lambda: secrets.token_hex(20))
    refresh_token = factory.LazyFunction(lambda: secrets.token_hex(20))
    scope = "user.info,user.metrics"
    token_issued_at = factory.LazyFunction(timezone.now)
    access_expires_at = factory.LazyAttribute(lambda o: o.token_issued_at + dt.timedelta(hours=3))
    refresh_due_at = factory.LazyAttribute(lambda o: o.token_issued_at + dt.timedelta(hours=1.5))


class ReadingFactory(factory.django.DjangoModelFactory):
    """A blood-pressure reading from the API (BPM Connect) unless told otherwise."""

    class Meta:
        model = "measurements.BloodPressureReading"

    participant = factory.SubFactory(ParticipantFactory)
    measured_at = factory.Sequence(
        lambda n: dt.datetime(2024, 3, 1, 7, 0, tzinfo=dt.UTC) + dt.timedelta(hours=n)
    )
    source_timezone = factory.LazyAttribute(lambda o: o.participant.timezone)
    systolic = Decimal("123")
    diastolic = Decimal("79")
    pulse = Decimal("64")
    source = "api"
    grpid = factory.Sequence(lambda n: 900000 + n)
    attrib = 0
    device_id = "a" * 40
    device_model = "BPM Connect"
    device_model_id = 45
    # As every ingestion path does (measurements.quality).
    quality_flags = factory.LazyAttribute(lambda o: flags_of(o.systolic, o.diastolic, o.pulse))


class ConsentDocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "cohorts.ConsentDocument"

    study = factory.SubFactory(StudyFactory)
    version = factory.Sequence(lambda n: n + 1)
    title = "Consent to take part"
    body = "We collect your home blood pressure readings.\n\nYou can leave at any time."
    statements = "I have read the information.\nI agree to share my readings."
