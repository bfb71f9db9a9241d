"""Demo clinical safety: the `demo` study's safety plan (version 1, 4 h around the clock, then the
clinician for 2 h, then the operators) and a designated clinician with a fictional mobile number, so
`make run` shows the whole loop — a 192/124 reading, the participant's message in the SMS sandbox, the
coordinators' e-mail naming the deadline, and `tick --at <deadline + 1 min>` reaching the clinician.
Idempotent: an existing plan or clinician is left alone."""

from __future__ import annotations

from django.db import transaction

from cohorts.models import Role, Study, StudyMembership, User
from measurements.models import SafetyPlan
from measurements.monitoring.safety import safety_plan_save

from .studies import DEMO_PASSWORD, _ensure_totp

DEMO_STUDY = "demo"
CLINICIAN = "clinician@demo.example"
#: Ofcom's range for drama (+44 7700 900000–900999): a number that reaches nobody.
CLINICIAN_MOBILE = "+447700900999"


@transaction.atomic
def seed_safety() -> dict[str, object]:
    study = Study.objects.filter(slug=DEMO_STUDY).first()
    if study is None:
        return {}
    if not SafetyPlan.objects.filter(study=study).exists():
        safety_plan_save(actor=None, study=study, values={"approval_reference": "DEMO-IRB-001 (fictional)"})
    user = User.objects.filter(email=CLINICIAN).first() or User.objects.create_user(
        CLINICIAN, DEMO_PASSWORD, is_staff=True
    )
    _ensure_totp(user)
    membership, created = StudyMembership.objects.get_or_create(
        user=user, study=study, defaults={"role": Role.INVESTIGATOR}
    )
    if created or not membership.safety_clinician:
        # Set directly: phone_normalise rightly calls the drama range invalid.
        StudyMembership.objects.filter(pk=membership.pk).update(safety_clinician=True, phone=CLINICIAN_MOBILE)
    return {"clinician": CLINICIAN, "phone": CLINICIAN_MOBILE}
